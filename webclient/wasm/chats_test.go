//go:build js && wasm

package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestChatTime(t *testing.T) {
	defer func(l *time.Location) { time.Local = l }(time.Local)
	west := time.FixedZone("", -8*3600)
	time.Local = west
	now := time.Date(2026, 12, 2, 9, 5, 0, 0, west) // a Wednesday
	for _, c := range []struct {
		sent time.Time
		want string
	}{
		{time.Time{}, ""},
		{now, "09:05"},
		{time.Date(2026, 12, 2, 0, 0, 0, 0, west), "00:00"},
		{time.Date(2026, 12, 2, 23, 7, 0, 0, time.UTC), "15:07"}, // shown in local time
		{time.Date(2026, 12, 1, 23, 59, 0, 0, west), "Yesterday"},
		{time.Date(2026, 11, 30, 12, 0, 0, 0, west), "Monday"},
		{time.Date(2026, 11, 26, 0, 0, 0, 0, west), "Thursday"},
		{time.Date(2026, 11, 25, 23, 59, 0, 0, west), "2026-11-25"},
		{time.Date(7, 3, 4, 12, 0, 0, 0, west), "0007-03-04"},
		{earliestSent, "-0001-12-31"}, // sentTime's earliest, west of UTC
	} {
		if got := chatTime(c.sent, now); got != c.want {
			t.Errorf("chatTime(%v, %v) = %q, want %q", c.sent, now, got, c.want)
		}
	}
}

// earliestSent is sim/device's earliest stored time.
var earliestSent = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)

// chatTime writes times as time.Format does with its layouts.
func TestChatTimeMatchesTimeFormat(t *testing.T) {
	defer func(l *time.Location) { time.Local = l }(time.Local)
	r := rand.New(rand.NewPCG(3, 4))
	for _, zone := range []*time.Location{time.UTC, time.FixedZone("", -8*3600), time.FixedZone("", 5*3600+45*60)} {
		time.Local = zone
		now := time.Date(2026, 12, 2, 9, 5, 0, 0, zone)
		for range 3000 {
			sent := now.Add(-time.Duration(r.Int64N(int64(10 * 24 * time.Hour))))
			if r.IntN(4) == 0 {
				sent = time.Date(r.IntN(10000), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC)
			}
			l := sent.Local()
			shown := []string{l.Format("15:04"), "Yesterday", l.Format("Monday"), l.Format("2006-01-02")}
			if got := chatTime(sent, now); !slices.Contains(shown, got) {
				t.Fatalf("chatTime(%v, %v) in %v = %q, not one of %q", sent, now, zone, got, shown)
			}
		}
	}
}
