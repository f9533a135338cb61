package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/scenarios"
)

// linksimBin is the linksim command built once for these tests, static as
// `make build` builds it, so it can also go into a relay image.
var linksimBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "linksim-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	linksimBin = filepath.Join(dir, "linksim")
	build := exec.Command("go", "build", "-o", linksimBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build linksim: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// linksim runs the built command in dir and returns its exit code and
// output (stdout then stderr).
func linksim(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(linksimBin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("linksim %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

func readReport(t *testing.T, path string) *reports.Report {
	t.Helper()
	r, err := reports.Load(path)
	if err != nil {
		t.Fatalf("read the report: %v", err)
	}
	return r
}

// A run stopped by SIGINT exits 130 at once and still leaves a report that
// says it was interrupted and which scenarios did not run, and the event
// stream written so far.
func TestInterruptWritesPartialReport(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events.ndjson")
	const suite = "!browser && !media"
	flows, err := scenarios.Select(suite)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(linksimBin, "run", "--suite", suite, "--out", filepath.Join(dir, "report"), "--out", "json="+events)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen strings.Builder
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		seen.WriteString(lines.Text() + "\n")
		if strings.HasPrefix(lines.Text(), "[3/") {
			break
		}
	}
	// The stream is written while the run goes, not at its end.
	deadline := time.Now().Add(5 * time.Second)
	for fi, err := os.Stat(events); err != nil || fi.Size() == 0; fi, err = os.Stat(events) {
		if time.Now().After(deadline) {
			t.Fatalf("%s is still empty with the third scenario running", events)
		}
		time.Sleep(50 * time.Millisecond)
	}
	signalled := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stdout)
	seen.Write(rest)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Fatalf("exit code %d after SIGINT, want %d; output:\n%s", code, exitInterrupted, seen.String())
	}
	if took := time.Since(signalled); took > 20*time.Second {
		t.Errorf("linksim took %s to stop after SIGINT", took)
	}
	r := readReport(t, filepath.Join(dir, "report", reports.JSONFile))
	if !r.Interrupted || r.Passed() {
		t.Errorf("report.json: interrupted=%v passed=%v, want an interrupted run that did not pass", r.Interrupted, r.Passed())
	}
	notRun := 0
	for _, s := range r.Scenarios {
		if s.Status == reports.Skipped && strings.Contains(s.Failure, "interrupted") {
			notRun++
		}
	}
	if len(r.Scenarios) != len(flows) || notRun == 0 {
		t.Errorf("report lists %d scenarios, %d of them interrupted; want all %d listed and the ones that did not finish marked", len(r.Scenarios), notRun, len(flows))
	}
	if r.Meta["go"] == "" {
		t.Errorf("report meta %v has no go version", r.Meta)
	}
	if !strings.Contains(seen.String(), "INTERRUPTED") {
		t.Errorf("the console does not say the run was interrupted:\n%s", seen.String())
	}
	checkNDJSON(t, events)
}

// checkNDJSON reads an --out json file back: one event a line.
func checkNDJSON(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		var e reports.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s line %d: %v: %s", path, n+1, err, sc.Text())
		}
		n++
	}
	if n == 0 {
		t.Errorf("%s holds no events", path)
	}
}

// Everything that would fail a run minutes in fails it in the first
// second instead, each problem on its own line, and nothing runs.
func TestChecksBeforeRunning(t *testing.T) {
	dir := t.TempDir()
	aFile := filepath.Join(dir, "file")
	os.WriteFile(aFile, nil, 0o644)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	wrongVersion := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"version":2,"noise_key":"AAAA"}`)
	}))
	defer wrongVersion.Close()

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"unwritable outputs and a relay that is not there",
			[]string{"--out", filepath.Join(aFile, "report"), "--out", "csv=" + filepath.Join(aFile, "e.csv"), "--relay", "ws" + strings.TrimPrefix(closed.URL, "http") + "/ws"},
			[]string{"--out " + filepath.Join(aFile, "report") + ": report folder not writable", "--out csv=", "--relay ws://", "connection refused"}},
		{"a server that is not a relay this harness speaks to",
			[]string{"--out", filepath.Join(dir, "r"), "--relay", wrongVersion.URL},
			[]string{"protocol version 2"}},
		{"an unknown relay backend",
			[]string{"--out", filepath.Join(dir, "r"), "--relay", "kubernetes"},
			[]string{`relay backend "kubernetes"`}},
		{"an unknown output format",
			[]string{"--out", "xml=r.xml"},
			[]string{`unknown format "xml"`}},
		{"an unknown topology",
			[]string{"--topology", "peer-to-peer"},
			[]string{`topology "peer-to-peer"`, "multidevice", "mirror", "both"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(linksimBin, append([]string{"run", "--suite", "smoke"}, tc.args...)...)
			start := time.Now()
			b, _ := cmd.CombinedOutput()
			out := string(b)
			if code := cmd.ProcessState.ExitCode(); code != exitSetup {
				t.Errorf("exit code %d, want %d (setup error); output:\n%s", code, exitSetup, out)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("the checks took %s", took)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not say %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "[1/") {
				t.Errorf("a scenario started despite the failed checks:\n%s", out)
			}
		})
	}
}

// --topology both runs each flow that can on both topologies, named by
// them; mirror leaves out the multi-device ones and says so.
func TestTopologies(t *testing.T) {
	_, both := linksim(t, t.TempDir(), "run", "--suite", "smoke && messaging", "--topology", "both", "--list")
	for _, want := range []string{"Messaging [multidevice]: reaches every device", "Messaging [mirror]: reaches every device"} {
		if !strings.Contains(both, want) {
			t.Errorf("--topology both lists no %q:\n%s", want, both)
		}
	}
	_, mirror := linksim(t, t.TempDir(), "run", "--suite", "smoke", "--topology", "mirror", "--list")
	if !strings.Contains(mirror, "do not run on the mirror topology") || !strings.Contains(mirror, "[mirror]") || strings.Contains(mirror, "[multidevice]") {
		t.Errorf("--topology mirror should leave out and count the multi-device flows:\n%s", mirror)
	}
}

// A run whose scenarios pass but whose latency budget does not hold exits
// 3, not 1: the system works, it is too slow.
func TestThresholdFailureHasItsOwnExitCode(t *testing.T) {
	dir := t.TempDir()
	code, out := linksim(t, dir, "run", "--suite", "messaging && smoke", "--out", dir, "--out", "csv=events.csv", "--threshold", "msg.deliver p50<1ns")
	if code != exitThreshold {
		t.Fatalf("exit code %d, want %d; output:\n%s", code, exitThreshold, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "events.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(string(b)), "\n")
	if !strings.HasPrefix(rows[0], "at_ns,kind,device,") || len(rows) < 10 || !strings.Contains(string(b), ",decrypt,") {
		t.Errorf("events.csv has %d rows, header %q, want the header and the run's events with decryptions", len(rows), rows[0])
	}
}

func TestVersionCommand(t *testing.T) {
	code, out := linksim(t, t.TempDir(), "version")
	if code != 0 || !strings.HasPrefix(out, "linksim ") || !strings.Contains(out, "revision ") || !strings.Contains(out, "go1.") {
		t.Errorf("linksim version: exit %d, output:\n%s", code, out)
	}
}

// An installed linksim runs the container backend from any directory, with
// no Go toolchain and no source tree: the relay image is built around the
// running binary. Without -v testcontainers says nothing.
func TestContainerBackendFromAnInstalledBinary(t *testing.T) {
	if err := exec.Command("docker", "info").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the container backend needs Docker, which does not answer: %v", err)
		}
		t.Skipf("NOT RUN: the container backend needs Docker, which does not answer: %v (start it to run this)", err)
	}
	dir := t.TempDir()
	cmd := exec.Command(linksimBin, "run", "--relay", "container", "--suite", "messaging && smoke", "--out", "report")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+dir, "LINKSIM_BIN=")
	b, _ := cmd.CombinedOutput()
	out := string(b)
	if code := cmd.ProcessState.ExitCode(); code != exitPassed {
		t.Fatalf("exit code %d, want a pass; output:\n%s", code, out)
	}
	if r := readReport(t, filepath.Join(dir, "report", reports.JSONFile)); r.Relay != "container" {
		t.Errorf("report says relay %q, want container", r.Relay)
	}
	if strings.Contains(strings.ToLower(out), "testcontainers") || strings.Contains(out, "Connected to docker") {
		t.Errorf("testcontainers logged without -v:\n%s", out)
	}

	// Ctrl-C in the middle of a container run leaves no container behind.
	// The image tag is this binary's hash, so only this test's containers
	// are counted.
	b, err := os.ReadFile(linksimBin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	image := "linksim-relay:" + hex.EncodeToString(sum[:])[:16]
	cmd = exec.Command(linksimBin, "run", "--relay", "container", "--suite", "smoke && !browser", "--out", "interrupted")
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for lines := bufio.NewScanner(stdout); lines.Scan(); {
		if strings.HasPrefix(lines.Text(), "[2/") {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	io.Copy(io.Discard, stdout)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Errorf("interrupted container run: exit code %d, want %d", code, exitInterrupted)
	}
	left, err := exec.Command("docker", "ps", "-aq", "--filter", "ancestor="+image).Output()
	if err != nil {
		t.Fatal(err)
	}
	if ids := strings.Fields(string(left)); len(ids) > 0 {
		t.Errorf("containers of %s left after Ctrl-C: %v", image, ids)
	}
}

// A browser layout, a mixed fleet or NATS workers that cannot run are
// refused before anything starts, naming the flag; the help explains them.
func TestLayoutAndBrowserFlagsAreChecked(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", "--layout", "windows", "--out", dir}, []string{`--layout "windows"`, `"context"`, `"tabs"`}},
		{[]string{"load", "--users", "10", "--rate", "5", "--browsers", "11", "--layout", "windows", "--out", dir},
			[]string{"browsers: 11; want 0 to users (10)", `layout: "windows"`}},
		{[]string{"load", "--users", "10", "--rate", "5", "--browsers", "2", "--companions", "4", "--out", dir},
			[]string{"use companions <= 3"}},
		{[]string{"load", "--users", "10", "--rate", "5", "--mix", "text=1,unlik=1", "--out", dir},
			[]string{`unknown action "unlik"`, "reconnect, unlink"}},
		{[]string{"load", "--users", "10", "--rate", "5", "--remote-workers", "1", "--out", dir}, []string{"need --nats URL"}},
		{[]string{"load", "worker", "--id", "1"}, []string{"--nats URL (or $LINKSIM_NATS_URL)"}},
		{[]string{"load", "worker", "--nats", "nats://127.0.0.1:1"}, []string{"--id K"}},
		{[]string{"load", "--users", "10", "--rate", "5", "--workers", "2", "--nats", "nats://load:s3cret@127.0.0.1:1", "--out", dir},
			[]string{"connect to NATS at nats://load:xxxxx@127.0.0.1:1"}},
	} {
		start := time.Now()
		code, out := linksim(t, dir, tc.args...)
		if code != exitSetup {
			t.Errorf("%v: exit code %d, want %d; output:\n%s", tc.args, code, exitSetup, out)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%v: refused after %s, want at once", tc.args, took)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output does not say %q:\n%s", tc.args, w, out)
			}
		}
	}
	_, help := linksim(t, dir, "load", "--help")
	for _, w := range []string{"--browsers", "--layout", "unlink", "linksim load --users 2500 --browsers 20 --layout tabs", "--nats", "--remote-workers"} {
		if !strings.Contains(help, w) {
			t.Errorf("linksim load --help does not explain %q", w)
		}
	}
}
