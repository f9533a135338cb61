package reports

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// ndjsonFlushEvery bounds how far the file lags behind the run while events
// flow: a person tailing it, or a run killed hard, loses at most this much.
const ndjsonFlushEvery = 100 * time.Millisecond

// NDJSONSink writes each event it receives as one JSON object per line (the
// fields of report.json's timeline events; see docs/reports.md), as the run
// records it. Add it with Recorder.AddSink and Close it when the run ends:
//
//	sink := reports.NewNDJSONSink(f)
//	rec.AddSink(sink)
//	... run ...
//	err := sink.Close() // flushes; f stays open
//
// Writes are buffered and flushed at least every 100ms while events arrive.
// The first write error stops the stream; Err and Close report it.
type NDJSONSink struct {
	mu        sync.Mutex
	w         *bufio.Writer
	enc       *json.Encoder
	lastFlush time.Time
	err       error
	closed    bool
}

// NewNDJSONSink returns a sink writing to w.
func NewNDJSONSink(w io.Writer) *NDJSONSink {
	bw := bufio.NewWriterSize(w, 64<<10)
	return &NDJSONSink{w: bw, enc: json.NewEncoder(bw), lastFlush: time.Now()}
}

// Record writes e as one line.
func (s *NDJSONSink) Record(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.closed {
		return
	}
	if err := s.enc.Encode(e); err != nil {
		s.err = fmt.Errorf("event stream: %w", err)
		return
	}
	if time.Since(s.lastFlush) >= ndjsonFlushEvery {
		s.flush()
	}
}

// flush writes out the buffer. s.mu must be held.
func (s *NDJSONSink) flush() {
	if s.err == nil {
		if err := s.w.Flush(); err != nil {
			s.err = fmt.Errorf("event stream: %w", err)
		}
	}
	s.lastFlush = time.Now()
}

// Err returns the first write error, if any.
func (s *NDJSONSink) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close flushes what is buffered and returns the first write error. It does
// not close the underlying writer; events recorded afterwards are dropped.
func (s *NDJSONSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flush()
	s.closed = true
	return s.err
}

// ReadEvents reads an event stream written by NDJSONSink, so a run can be
// scored again from it with FromEvents. A malformed line is an error naming
// its line number; a stream cut off mid-line (a killed run) is read up to its
// last whole line.
func ReadEvents(r io.Reader) ([]Event, error) {
	var out []Event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			if !json.Valid(line) && !sc.Scan() {
				break // the last line was cut off: keep what came before
			}
			return out, fmt.Errorf("event stream: line %d: %w", n, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("event stream: %w", err)
	}
	return out, nil
}
