package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestProfilesAreServedOnTheirOwnAddress(t *testing.T) {
	addr, stop, err := serveProfiles("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("GET goroutine profile: %s\n%.200s", resp.Status, body)
	}
	if _, _, err := serveProfiles(addr); err == nil || !strings.Contains(err.Error(), "--pprof") {
		t.Fatalf("a taken address: err %v, want a --pprof error", err)
	}
}
