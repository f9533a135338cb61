package reports

import (
	"encoding/csv"
	"strconv"
	"strings"
	"testing"
)

func TestCSVHasTheRunAndEachScenario(t *testing.T) {
	r := faultAndCleanRun()
	var buf strings.Builder
	if err := r.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(buf.String())).ReadAll()
	if err != nil {
		t.Fatalf("WriteCSV wrote unreadable CSV: %v\n%s", err, buf.String())
	}
	if strings.Join(rows[0], ",") != "scenario,labels,step,count,min_ns,p50_ns,p90_ns,p99_ns,p999_ns,max_ns,mean_ns" {
		t.Errorf("header %q", rows[0])
	}
	want := map[string]string{ // scenario/step -> count
		"/msg.deliver":                               "105",
		"Messaging: delivers/msg.deliver":            "100",
		"Network faults: half-open link/msg.deliver": "5",
	}
	for _, row := range rows[1:] {
		key := row[0] + "/" + row[2]
		if n, ok := want[key]; ok {
			if row[3] != n {
				t.Errorf("%s count = %s, want %s", key, row[3], n)
			}
			delete(want, key)
		}
		if row[0] == "Network faults: half-open link" && row[1] != "reconnect fault" {
			t.Errorf("labels column = %q", row[1])
		}
	}
	if len(want) > 0 {
		t.Errorf("CSV lacks rows %v:\n%s", want, buf.String())
	}
}

func TestCSVSinkWritesEachEventAsARow(t *testing.T) {
	var buf strings.Builder
	run := NewRecorder()
	sink := NewCSVSink(&buf)
	run.AddSink(sink)
	c := run.ChildFor("Messaging: delivers", []string{"messaging", "smoke"})
	d := DigestOf([]byte("hi, bob"))
	c.Send("alice/phone", "m1", "chat", []string{"bob/phone", "bob/web-1"}, d)
	c.Receipt("alice/phone", "m1", Read)
	c.Step("pair.linked", "bob/web-1", 0)
	c.Disconnect("bob/web-1", "ping timeout, giving up")
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(buf.String())).ReadAll()
	if err != nil || len(rows) != 5 {
		t.Fatalf("want a header and 4 rows, got %d rows, %v:\n%s", len(rows), err, buf.String())
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	evs := run.Events()
	for i, want := range map[string]string{"kind": "send", "device": "alice/phone", "to": "bob/phone bob/web-1",
		"digest": d.String(), "scenario": "Messaging: delivers", "labels": "messaging smoke", "value_ns": ""} {
		if got := rows[1][col[i]]; got != want {
			t.Errorf("send row %s = %q, want %q", i, got, want)
		}
	}
	if at := rows[1][col["at_ns"]]; at != strconv.FormatInt(int64(evs[0].At), 10) {
		t.Errorf("at_ns = %s, want %d", at, evs[0].At)
	}
	if r := rows[2]; r[col["receipt"]] != "read" {
		t.Errorf("receipt row %q", r)
	}
	if r := rows[3]; r[col["kind"]] != "step" || r[col["name"]] != "pair.linked" || r[col["value_ns"]] != "0" {
		t.Errorf("a step of 0ns still has its value: %q", r)
	}
	if r := rows[4]; r[col["detail"]] != "ping timeout, giving up" {
		t.Errorf("disconnect row %q", r)
	}
}
