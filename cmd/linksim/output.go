package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

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
		s.sinks = append(s.sinks, reports.NewNDJSONSink(f))
	}
	if f := create("csv", o.csv); f != nil {
		s.sinks = append(s.sinks, reports.NewCSVSink(f))
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

// eventStreams writes each recorded event to the --out json file and the
// --out csv file, through reports' stream sinks (NDJSON and CSV of
// reports.Event, docs/reports.md), which follow the run within a quarter of
// a second.
type eventStreams struct {
	files []*os.File
	sinks []*reports.StreamSink

	closeOnce sync.Once
	err       error // what Close met; later calls return it again
}

// Write records e in every stream; it is a reports.Recorder watcher.
func (s *eventStreams) Write(e reports.Event) {
	for _, k := range s.sinks {
		k.Record(e)
	}
}

// Close flushes and closes the files, and returns the first error any
// write met. Events recorded afterwards are dropped.
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
			s.err = fmt.Errorf("--out %w", err)
		}
	})
	return s.err
}

// abs is path made absolute for printing, or path as given.
func abs(path string) string {
	if a, err := filepath.Abs(path); err == nil {
		return a
	}
	return path
}
