package reports

import (
	"bufio"
	"fmt"
	"io"
	"sync"
	"time"
)

// streamFlushEvery bounds how far an event stream lags behind the run while
// events flow: a person tailing the file, or a run killed hard, loses at
// most this much.
const streamFlushEvery = 250 * time.Millisecond

// StreamSink writes each event it receives to a file as the run records it,
// one line per event: NewNDJSONSink writes JSON, NewCSVSink CSV (see
// docs/reports.md). Add it with Recorder.AddSink and Close it when the run
// ends:
//
//	sink := reports.NewNDJSONSink(f)
//	rec.AddSink(sink)
//	... run ...
//	err := sink.Close() // flushes; f stays open
//
// Writes are buffered; an event reaches w within a quarter of a second of
// being recorded. The first write error stops the stream; Err and Close
// report it.
type StreamSink struct {
	mu      sync.Mutex
	w       *bufio.Writer
	encode  func(Event) error // writes one line into w
	format  string            // "event stream (NDJSON)", for errors
	pending bool              // a flush is scheduled
	err     error
	closed  bool
}

func newStreamSink(w io.Writer, format string, encoder func(*bufio.Writer) func(Event) error) *StreamSink {
	bw := bufio.NewWriterSize(w, 64<<10)
	return &StreamSink{w: bw, encode: encoder(bw), format: format}
}

// Record writes e as one line.
func (s *StreamSink) Record(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.closed {
		return
	}
	if err := s.encode(e); err != nil {
		s.err = fmt.Errorf("%s: %w", s.format, err)
		return
	}
	// One timer per quarter second with events, rather than a write per
	// event: a load run records hundreds of thousands a second.
	if !s.pending {
		s.pending = true
		time.AfterFunc(streamFlushEvery, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.pending = false
			s.flush()
		})
	}
}

// flush writes out the buffer. s.mu must be held.
func (s *StreamSink) flush() {
	if s.err == nil && !s.closed {
		if err := s.w.Flush(); err != nil {
			s.err = fmt.Errorf("%s: %w", s.format, err)
		}
	}
}

// Err returns the first write error, if any.
func (s *StreamSink) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close flushes what is buffered and returns the first write error. It does
// not close the underlying writer; events recorded afterwards are dropped.
func (s *StreamSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flush()
	s.closed = true
	return s.err
}
