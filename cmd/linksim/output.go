package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
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
	for _, out := range []struct {
		kind, path string
		sink       func(io.Writer) eventSink
	}{
		{"json", o.json, func(w io.Writer) eventSink { return reports.NewNDJSONSink(w) }},
		{"csv", o.csv, func(w io.Writer) eventSink { return newCSVEvents(w) }},
	} {
		if out.path == "" {
			continue
		}
		f, err := os.Create(out.path)
		if err != nil {
			errs = append(errs, fmt.Errorf("--out %s=%s: %w", out.kind, out.path, err))
			continue
		}
		s.files = append(s.files, f)
		s.sinks = append(s.sinks, out.sink(f))
	}
	if len(errs) > 0 {
		s.Close()
		return nil, errors.Join(errs...)
	}
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

// eventSink is a buffered event stream: Close flushes it.
type eventSink interface {
	reports.Sink
	Close() error
}

// eventStreams are the --out json and csv files, each fed every event as
// the run records it.
type eventStreams struct {
	files     []*os.File
	sinks     []eventSink
	closeOnce sync.Once
	err       error
}

// Record hands e to every stream; it is the run recorder's sink.
func (s *eventStreams) Record(e reports.Event) {
	for _, k := range s.sinks {
		k.Record(e)
	}
}

// Close flushes and closes the files and returns the first error any write
// met. Later calls return the same; events recorded after it are dropped.
func (s *eventStreams) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		for _, k := range s.sinks {
			errs = append(errs, k.Close())
		}
		for _, f := range s.files {
			errs = append(errs, f.Close())
		}
		if err := errors.Join(errs...); err != nil {
			s.err = fmt.Errorf("--out: %w", err)
		}
	})
	return s.err
}

// csvEvents writes events as CSV rows under csvHeader, flushing at least
// every csvFlushEvery while events arrive. (reports gains a CSV event sink
// on another branch; this one goes once it is merged.)
type csvEvents struct {
	mu        sync.Mutex
	w         *csv.Writer
	lastFlush time.Time
	closed    bool
}

const csvFlushEvery = 250 * time.Millisecond

var csvHeader = []string{"at_ns", "kind", "device", "msg", "stream", "to", "digest", "name", "value_ns", "receipt", "detail", "id"}

func newCSVEvents(w io.Writer) *csvEvents {
	c := &csvEvents{w: csv.NewWriter(w), lastFlush: time.Now()}
	c.w.Write(csvHeader)
	return c
}

func (c *csvEvents) Record(e reports.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.w.Write(csvRow(e))
	if time.Since(c.lastFlush) >= csvFlushEvery {
		c.w.Flush()
		c.lastFlush = time.Now()
	}
}

func (c *csvEvents) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.w.Flush()
	return c.w.Error()
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

// abs is path made absolute for printing, or path as given.
func abs(path string) string {
	if a, err := filepath.Abs(path); err == nil {
		return a
	}
	return path
}
