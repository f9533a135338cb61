package reports

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNDJSONStreamReplaysTheRun checks that the stream written while a run
// records holds every event, and that scoring the stream again gives the
// run's own report.
func TestNDJSONStreamReplaysTheRun(t *testing.T) {
	var buf bytes.Buffer
	run := NewRecorder()
	sink := NewNDJSONSink(&buf)
	run.AddSink(sink)
	c := run.ChildFor("Messaging: delivers", []string{"messaging"})
	d := DigestOf([]byte("hi"))
	c.Send("alice/phone", "m1", "chat", []string{"bob/phone", "bob/web-1"}, d)
	c.Ack("alice/phone", "m1")
	c.Decrypted("bob/phone", "m1", d)
	c.Fault("blackhole bob/web-1")()
	c.Step("pair.linked", "bob/web-1", 30*time.Millisecond)
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 6 {
		t.Errorf("stream has %d lines, want one per event (6):\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), `"scenario":"Messaging: delivers"`) {
		t.Errorf("stream lines lack the scenario:\n%s", buf.String())
	}
	evs, err := ReadEvents(&buf)
	if err != nil {
		t.Fatal(err)
	}
	want := run.Events()
	if len(evs) != len(want) {
		t.Fatalf("read %d events, want %d", len(evs), len(want))
	}
	a := FromEvents(evs, run.Start(), time.Second, Config{})
	b := FromEvents(want, run.Start(), time.Second, Config{})
	if a.Ledger.Totals != b.Ledger.Totals || a.Ledger.Totals.Lost != 1 {
		t.Errorf("replayed ledger %+v, run's %+v", a.Ledger.Totals, b.Ledger.Totals)
	}
	run.Connect("late/phone")
	if buf.Len() != 0 {
		t.Error("a closed sink must not write")
	}
}

func TestReadEventsKeepsWhatCameBeforeACutLine(t *testing.T) {
	stream := `{"kind":"connect","at_ns":1,"device":"a"}` + "\n" + `{"kind":"disconn`
	evs, err := ReadEvents(strings.NewReader(stream))
	if err != nil || len(evs) != 1 {
		t.Errorf("cut stream: got %d events, %v; want the whole first line", len(evs), err)
	}
	_, err = ReadEvents(strings.NewReader(`{"kind":"nope"}` + "\n" + `{"kind":"connect"}` + "\n"))
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("a bad line should be an error naming it, got %v", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestNDJSONSinkReportsAWriteError(t *testing.T) {
	sink := NewNDJSONSink(failingWriter{})
	sink.Record(Event{Kind: KindConnect, Device: "a"})
	if err := sink.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Close = %v, want the write error", err)
	}
}

func TestStreamReachesTheFileWhileTheRunIsQuiet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.ndjson")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sink := NewNDJSONSink(f)
	defer sink.Close()
	rec := NewRecorder()
	rec.AddSink(sink)
	rec.Connect("alice/phone") // and then nothing more for a while
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), `"device":"alice/phone"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the last event before a quiet spell never reached the file")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
