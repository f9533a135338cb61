package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/linksim/linksim/reports"
)

// outputs is what the --out flags name: the report folder, and files that
// get every recorded event while the run goes.
type outputs struct {
	dir       string
	json, csv string // "" when not asked for
}

const defaultOutDir = "linksim-report"

// parseOutputs reads --out values: DIR, json=FILE or csv=FILE, each at most
// once.
func parseOutputs(vals []string) (outputs, error) {
	var o outputs
	for _, v := range vals {
		key, file, isFile := strings.Cut(v, "=")
		target := &o.dir
		switch {
		case isFile && key == "json":
			target = &o.json
		case isFile && key == "csv":
			target = &o.csv
		case isFile && !strings.ContainsAny(key, `/\.`):
			return o, fmt.Errorf("--out %q: unknown format %q: want DIR, json=FILE or csv=FILE", v, key)
		default:
			key, file = "DIR", v
		}
		if file == "" {
			return o, fmt.Errorf("--out %q: no file name", v)
		}
		if *target != "" {
			return o, fmt.Errorf("--out %s given twice (%q and %q)", key, *target, file)
		}
		*target = file
	}
	if o.dir == "" {
		o.dir = defaultOutDir
	}
	return o, nil
}

// open checks every output can be written, before anything runs, and opens
// the event streams. Each output that cannot be written is one line of the
// error.
func (o outputs) open() (*eventStreams, error) {
	var errs []error
	if err := checkWritableDir(o.dir); err != nil {
		errs = append(errs, fmt.Errorf("--out %s: report folder not writable: %w", o.dir, err))
	}
	s := &eventStreams{}
	create := func(kind, path string) *os.File {
		if path == "" {
			return nil
		}
		f, err := os.Create(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("--out %s=%s: %w", kind, path, err))
			return nil
		}
		s.files = append(s.files, f)
		return f
	}
	if f := create("json", o.json); f != nil {
		s.json = bufio.NewWriter(f)
	}
	if f := create("csv", o.csv); f != nil {
		s.csv = csv.NewWriter(f)
		s.csv.Write(csvHeader)
	}
	if len(errs) > 0 {
		s.Close()
		return nil, errors.Join(errs...)
	}
	s.startFlushing(250 * time.Millisecond)
	return s, nil
}

// checkWritableDir creates dir if needed and writes a file in it.
func checkWritableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".linksim-check-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// eventStreams writes each recorded event to the --out json file (NDJSON:
// one reports.Event as JSON a line, report.json's event form) and the --out
// csv file (csvHeader's columns). Writes are buffered and flushed a few
// times a second, so the files follow the run closely without a write per
// event.
type eventStreams struct {
	files     []*os.File
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	mu   sync.Mutex
	json *bufio.Writer
	csv  *csv.Writer
	err  error // the first write error; Close returns it
}

var csvHeader = []string{"at_ns", "kind", "device", "msg", "stream", "to", "digest", "name", "value_ns", "receipt", "detail", "id"}

// Write records e in every stream; it is a reports.Recorder watcher.
func (s *eventStreams) Write(e reports.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.json != nil {
		b, err := json.Marshal(e)
		if err == nil {
			s.json.Write(append(b, '\n'))
		}
		s.setErr(err)
	}
	if s.csv != nil {
		s.csv.Write(csvRow(e))
	}
}

func csvRow(e reports.Event) []string {
	opt := func(set bool, v string) string {
		if !set {
			return ""
		}
		return v
	}
	return []string{
		strconv.FormatInt(int64(e.At), 10), e.Kind.String(), e.Device, e.Msg, e.Stream,
		strings.Join(e.To, " "), opt(!e.Digest.IsZero(), e.Digest.String()), e.Name,
		opt(e.Value != 0, strconv.FormatInt(int64(e.Value), 10)), opt(e.Receipt != 0, e.Receipt.String()),
		e.Detail, opt(e.ID != 0, strconv.FormatUint(e.ID, 10)),
	}
}

func (s *eventStreams) setErr(err error) {
	if s.err == nil && err != nil {
		s.err = err
	}
}

func (s *eventStreams) startFlushing(every time.Duration) {
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.mu.Lock()
				s.flush()
				s.mu.Unlock()
			}
		}
	}()
}

// flush pushes buffered events to the files. s.mu must be held.
func (s *eventStreams) flush() {
	if s.json != nil {
		s.setErr(s.json.Flush())
	}
	if s.csv != nil {
		s.csv.Flush()
		s.setErr(s.csv.Error())
	}
}

// Close flushes and closes the files, and returns the first error any
// write met. Later calls only return that error.
func (s *eventStreams) Close() error {
	s.closeOnce.Do(func() {
		if s.stop != nil {
			close(s.stop)
			<-s.done
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.flush()
		for _, f := range s.files {
			s.setErr(f.Close())
		}
		s.json, s.csv = nil, nil // events after Close are dropped, not written to closed files
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return fmt.Errorf("--out event stream: %w", s.err)
	}
	return nil
}

// abs is path made absolute for printing, or path as given.
func abs(path string) string {
	if a, err := filepath.Abs(path); err == nil {
		return a
	}
	return path
}
