package reports

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// NewNDJSONSink returns a sink that writes each event as one JSON object per
// line, in the form of report.json's timeline events (docs/reports.md).
func NewNDJSONSink(w io.Writer) *StreamSink {
	return newStreamSink(w, "event stream (NDJSON)", func(bw *bufio.Writer) func(Event) error {
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false) // streams are read by tools, not pasted into pages: keep "alice/phone>bob" readable
		return func(e Event) error { return enc.Encode(e) }
	})
}

// ReadEvents reads an event stream written by NewNDJSONSink, so a run can be
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
