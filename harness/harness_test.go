package harness

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/relay"
)

func TestSessionFailsSkipsAndCleansUpLastFirst(t *testing.T) {
	var order []string
	s := NewSession(nil)
	err := s.Run(func() {
		s.Cleanup(func() { order = append(order, "first") })
		s.Cleanup(func() { order = append(order, "second") })
		s.Fatalf("relay %s did not start", "r1")
		order = append(order, "after Fatalf")
	})
	if err == nil || err.Error() != "relay r1 did not start" || !s.Failed() {
		t.Errorf("Run = %v, Failed = %v; want the Fatalf message and a failed session", err, s.Failed())
	}
	if !slices.Equal(order, []string{"second", "first"}) {
		t.Errorf("ran %v, want the cleanups last first and nothing after Fatalf", order)
	}

	s = NewSession(nil)
	var skip *SkipError
	if err := s.Run(func() { s.Skipf("needs %s", "Docker") }); !errors.As(err, &skip) || skip.Reason != "needs Docker" || s.Failed() {
		t.Errorf("Skipf: Run = %v, Failed = %v; want a SkipError that is no failure", err, s.Failed())
	}

	s = NewSession(nil)
	dir := ""
	err = s.Run(func() {
		dir = s.TempDir()
		panic("a scenario's bug")
	})
	if err == nil || !strings.HasPrefix(err.Error(), "panic: a scenario's bug") {
		t.Errorf("a panicking run returned %v, want the panic as its failure", err)
	}
	if _, statErr := os.Stat(dir); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("the temp dir %s outlived the panicking run: %v", dir, statErr)
	}
}

func TestCheckBackend(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := relay.Serve(relay.Config{DataDir: t.TempDir(), NoSync: true}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	fake := func(healthz int, info string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/healthz" {
				w.WriteHeader(healthz)
				return
			}
			fmt.Fprint(w, info)
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	goodKey := `"noise_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="`

	for _, tc := range []struct {
		backend string
		want    string // "" means no error
	}{
		{Embedded, ""},
		{srv.WSURL(), ""},
		{srv.URL(), ""},
		{"k8s", `relay backend "k8s": want embedded`},
		{"ws" + strings.TrimPrefix(closed.URL, "http") + "/ws", "connection refused"},
		{fake(200, `{"version":2,`+goodKey+`}`), "protocol version 2, this harness speaks 1"},
		{fake(200, `{"version":1,"noise_key":"AAAA"}`), "3 bytes, want a 32-byte X25519 key"},
		{fake(200, `<html>`), "relay info"},
		{fake(503, `{"version":1,`+goodKey+`}`), "/healthz: 503"},
		{fake(200, `{"version":1,`+goodKey+`}`), "Noise handshake: dial"},
	} {
		err := CheckBackend(ctx, tc.backend)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckBackend(%s) = %v, want ok", tc.backend, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckBackend(%s) = %v, want an error saying %q", tc.backend, err, tc.want)
		}
	}
}

func TestStaticLinuxRefusesWhatAnEmptyImageCannotRun(t *testing.T) {
	text := filepath.Join(t.TempDir(), "linksim")
	os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755)
	if err := staticLinux(text); err == nil || !strings.Contains(err.Error(), "not a Linux executable") {
		t.Errorf("a script: %v", err)
	}
	if err := staticLinux("/bin/sh"); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("/bin/sh (dynamically linked on Debian): %v", err)
	}
	if err := runnable(filepath.Dir(text)); err == nil {
		t.Error("a directory counts as a runnable binary")
	}
}

// What an installed linksim needs for the process and container backends:
// LINKSIM_BIN names it, and a binary that cannot run is reported without
// building anything when no module is at hand.
func TestCheckBinaryNamesTheProblem(t *testing.T) {
	t.Setenv("LINKSIM_BIN", "/bin/sh")
	if err := checkBinary(false); err != nil {
		t.Errorf("an executable LINKSIM_BIN for the process backend: %v", err)
	}
	if err := checkBinary(true); err != nil {
		t.Errorf("a dynamic LINKSIM_BIN inside the module (a static one can be built): %v", err)
	}
	t.Chdir(t.TempDir())
	if err := checkBinary(true); err == nil || !strings.Contains(err.Error(), "dynamically linked") || !strings.Contains(err.Error(), "no module") {
		t.Errorf("a dynamic LINKSIM_BIN outside the module: %v, want both problems named", err)
	}
	t.Setenv("LINKSIM_BIN", "")
	if err := checkBinary(false); err == nil || !strings.Contains(err.Error(), "LINKSIM_BIN") {
		t.Errorf("no binary and no module: %v, want the fix (LINKSIM_BIN) named", err)
	}
}

// Two checkouts (worktrees with different code) build to different paths,
// so one's tests never run the other's relay; one checkout keeps its path.
func TestBuiltBinaryPathIsPerCheckout(t *testing.T) {
	a, b := builtBinaryPath("/work/main"), builtBinaryPath("/work/wt/other")
	if a == b {
		t.Errorf("two checkouts share the built binary %s", a)
	}
	if again := builtBinaryPath("/work/main"); again != a {
		t.Errorf("one checkout's binary moved from %s to %s", a, again)
	}
	if !strings.HasPrefix(a, os.TempDir()) || filepath.Base(a) != "linksim" {
		t.Errorf("built binary at %s, want a linksim under %s", a, os.TempDir())
	}
}

func TestRelayFlagsCarryEveryTunedSetting(t *testing.T) {
	got := relayFlags(relay.Config{RefCount: 2, RefFirstTTL: 3 * time.Second, PairTimeout: time.Second, MaxMediaBytes: 1 << 20})
	want := []string{"--pair-refs", "2", "--pair-first-ttl", "3s", "--pair-timeout", "1s", "--max-media-bytes", "1048576"}
	if !slices.Equal(got, want) {
		t.Errorf("relayFlags = %q, want %q", got, want)
	}
	if got := relayFlags(relay.Config{}); len(got) != 0 {
		t.Errorf("default settings gave flags %q", got)
	}
}

// An Env on the embedded relay carries messages between users, keeps its
// address across a restart, and is gone once its session ends.
func TestEnvRunsAndTearsDownAnEmbeddedRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var url string
	s := NewSession(nil)
	err := s.Run(func() {
		env := Start(s, Config{Backend: Embedded})
		url = env.Relay().URL()
		alice, err := env.NewUser(ctx, "alice", 1)
		if err != nil {
			s.Fatalf("%v", err)
		}
		bob, err := env.NewUser(ctx, "bob", 0)
		if err != nil {
			s.Fatalf("%v", err)
		}
		if err := env.RestartRelay(ctx); err != nil {
			s.Fatalf("restart: %v", err)
		}
		if env.Relay().URL() != url {
			s.Fatalf("the relay moved from %s to %s on restart", url, env.Relay().URL())
		}
		if _, err := alice.Phone.SendText(ctx, env.User("bob"), "hi"); err != nil {
			s.Fatalf("send: %v", err)
		}
		if err := Await(ctx, "hi to reach bob's phone and alice's web client", env.Check); err != nil {
			s.Fatalf("%v", err)
		}
		if n := len(bob.Phone.Messages(env.User("alice"))); n != 1 {
			s.Fatalf("bob's phone holds %d messages from alice, want 1", n)
		}
		if l := env.Ledger(); l.Totals.Problems() != 0 {
			s.Fatalf("ledger problems: %+v", l.Problems)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get(url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("the relay at %s still answers after the session ended", url)
	}
}

// An Env does not outlive the end of its TB's context while it starts its
// relay: an interrupted run stops waiting for a relay at once.
func TestStartStopsWhenTheSessionsContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// A relay that never answers /relay.json: only the context ends the wait.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	s := NewSession(nil).WithContext(ctx)
	start := time.Now()
	err := s.Run(func() { Start(s, Config{Backend: hang.URL}) })
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("Start with an ended context: %v, want it to give up with context canceled", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Start took %s to notice its context had ended", took)
	}
}

// A relay that misses the first try's 5 s (a process just started on a
// starved machine) is asked again; its key is read all the same.
func TestRelayInfoOutlastsASlowFirstAnswer(t *testing.T) {
	key := strings.Repeat("k", 32)
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if asked.Add(1) == 1 {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		fmt.Fprintf(w, `{"version":1,"noise_key":%q,"ws":"/ws"}`, base64.StdEncoding.EncodeToString([]byte(key)))
	}))
	defer srv.Close()
	got, err := relayInfo(t.Context(), srv.URL)
	if err != nil || string(got) != key {
		t.Fatalf("relay info after a first try that timed out: %q, %v", got, err)
	}
}

func TestLastLinesOfALog(t *testing.T) {
	for _, c := range []struct {
		log  string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb", 5, "a\nb"},
		{"", 3, ""},
	} {
		if got := string(lastLines([]byte(c.log), c.n)); got != c.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", c.log, c.n, got, c.want)
		}
	}
}
