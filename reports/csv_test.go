package reports

import (
	"encoding/csv"
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
		if row[0] == "Network faults: half-open link" && row[1] != "reconnect;fault" {
			t.Errorf("labels column = %q", row[1])
		}
	}
	if len(want) > 0 {
		t.Errorf("CSV lacks rows %v:\n%s", want, buf.String())
	}
}
