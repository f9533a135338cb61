package reports

import (
	"testing"
	"time"
)

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 850 * time.Nanosecond: "850ns", 850 * time.Microsecond: "850µs",
		999700 * time.Nanosecond: "1ms", 12340 * time.Microsecond: "12.3ms", 250 * time.Millisecond: "250ms",
		1250 * time.Millisecond: "1.25s", 5 * time.Second: "5s", 123 * time.Second: "2m3s", -3 * time.Millisecond: "-3ms",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", time.Duration(d), got, want)
		}
	}
}

func TestShortID(t *testing.T) {
	for id, want := range map[string]string{"3EB0C431A2B1F017": "3EB0…17", "m1": "m1", "0123456789": "0123456789"} {
		if got := shortID(id); got != want {
			t.Errorf("shortID(%q) = %q, want %q", id, got, want)
		}
	}
}
