package load

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/sim/cluster/natstest"
)

// startNATS runs a NATS server in the test process; maxPayload 0 keeps
// the server's default (1 MiB).
func startNATS(t *testing.T, maxPayload int32) string {
	return startNATSWith(t, &server.Options{MaxPayload: maxPayload})
}

func startNATSWith(t *testing.T, o *server.Options) string {
	t.Helper()
	o.Host, o.Port, o.NoLog, o.NoSigs = "127.0.0.1", server.RANDOM_PORT, true, true
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready after 10s")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s.ClientURL()
}

// joinAs joins run on url as worker id, as `linksim load worker` does
// before it runs its job; the connection closes with the test.
func joinAs(t *testing.T, url, run string, id int) (*natsWorkerConn, error) {
	nc, err := connectNATS(url, "test worker")
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	o := NATSOptions{Run: run, JoinTimeout: 5 * time.Second}.defaults()
	job, err := joinRun(t.Context(), nc, o, id)
	if err != nil {
		return nil, err
	}
	return newNATSWorkerConn(nc, o.Run, id, job)
}

// joinLater joins as joinAs does, in the background, while the caller
// opens the coordinator's side; wait returns the worker's end.
func joinLater(t *testing.T, url, run string, id int) (wait func() *natsWorkerConn) {
	var wc *natsWorkerConn
	var err error
	var joined sync.WaitGroup
	joined.Go(func() { wc, err = joinAs(t, url, run, id) })
	return func() *natsWorkerConn {
		joined.Wait()
		if err != nil {
			t.Fatalf("worker %d joins: %v", id, err)
		}
		t.Cleanup(wc.close)
		return wc
	}
}

// A result larger than the server's max payload arrives in parts, whole
// and byte for byte; the coordinator's stop reaches the worker.
func TestNATSLinkCarriesAResultLargerThanAMessage(t *testing.T) {
	url := startNATS(t, 8<<10)
	tr, err := newNATSTransport(t.Context(), 1, NATSOptions{URL: url, Remote: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	joined := joinLater(t, url, "", 1)
	w, err := tr.open(t.Context(), 0, Job{Definition: Definition{Users: 7}, Shard: Shard{Count: 1, Source: "127.0.1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	wc := joined()
	if job, _ := wc.Receive(); job.Job == nil || job.Job.Definition.Users != 7 || job.Job.Shard.Source != "" {
		t.Fatalf("worker's first message %+v, want its job of 7 users with no source address (it is remote)", job)
	}

	report, _ := json.Marshal(map[string]string{"pad": strings.Repeat("0123456789", 5000)})
	if err := wc.Send(Message{Kind: MsgResult, Report: report}); err != nil {
		t.Fatal(err)
	}
	m, err := w.conn.Receive()
	if err != nil || m.Kind != MsgResult || string(m.Report) != string(report) {
		t.Fatalf("coordinator received %s of %d bytes (%v), want the result of %d bytes", m.Kind, len(m.Report), err, len(report))
	}
	if err := w.conn.Send(Message{Kind: MsgStop}); err != nil {
		t.Fatal(err)
	}
	if m, err := wc.Receive(); err != nil || m.Kind != MsgStop {
		t.Fatalf("worker received %+v (%v), want the stop", m, err)
	}
}

// Workers that never join, a worker that goes silent and a worker process
// that ends each fail the run with what happened, not a hang.
func TestNATSWorkersThatFailAreNamed(t *testing.T) {
	url := startNATS(t, 0)

	t.Run("never joined", func(t *testing.T) {
		tr, err := newNATSTransport(t.Context(), 3, NATSOptions{URL: url, Run: "nobody", Remote: 3, JoinTimeout: 300 * time.Millisecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.close()
		_, err = tr.open(t.Context(), 0, Job{})
		if err == nil || !strings.Contains(err.Error(), "missing: 1, 2, 3") || !strings.Contains(err.Error(), "linksim load worker --nats URL --run nobody --id K") {
			t.Fatalf("open = %v, want the missing workers and how to start them", err)
		}
	})

	t.Run("silent", func(t *testing.T) {
		tr, err := newNATSTransport(t.Context(), 1, NATSOptions{URL: url, Run: "silent", Remote: 1, Silence: time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.close()
		joined := joinLater(t, url, "silent", 1)
		w, err := tr.open(t.Context(), 0, Job{})
		if err != nil {
			t.Fatal(err)
		}
		joined().close() // its heartbeat stops, as when its machine dies
		start := time.Now()
		_, err = w.conn.Receive()
		if err == nil || !strings.Contains(err.Error(), "no word from it over NATS") {
			t.Fatalf("Receive = %v, want silence named", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("silence noticed after %s, want about 1s", took)
		}
	})

	t.Run("coordinator gone", func(t *testing.T) {
		tr, err := newNATSTransport(t.Context(), 1, NATSOptions{URL: url, Run: "orphan", Remote: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		joined := joinLater(t, url, "orphan", 1)
		if _, err := tr.open(t.Context(), 0, Job{}); err != nil {
			t.Fatal(err)
		}
		wc := joined()
		if m, _ := wc.Receive(); m.Kind != MsgJob {
			t.Fatalf("first message %q, want the job", m.Kind)
		}
		tr.close() // as when the coordinator's machine dies
		if _, err := wc.Receive(); err == nil || !strings.Contains(err.Error(), "coordinator stopped answering") {
			t.Fatalf("worker's Receive = %v, want the coordinator named gone", err)
		}
	})

	t.Run("process ended", func(t *testing.T) {
		// The process ends only once it has joined, whatever the machine's
		// load: the test touches joinedFile after joining on its behalf.
		joinedFile := filepath.Join(t.TempDir(), "joined")
		script := `while [ ! -e "$1" ]; do sleep 0.05; done; echo dying >&2; exit 3`
		tr, err := newNATSTransport(t.Context(), 1, NATSOptions{URL: url, Run: "ends", Command: []string{"sh", "-c", script, "sh", joinedFile}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.close()
		joined := joinLater(t, url, "ends", 1) // on the process's behalf: sh speaks no NATS
		w, err := tr.open(t.Context(), 0, Job{})
		if err != nil {
			t.Fatal(err)
		}
		joined()
		if err := os.WriteFile(joinedFile, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = w.conn.Receive()
		if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(w.output(), "dying") {
			t.Fatalf("Receive = %v (output %q), want the exit status and its last words", err, w.output())
		}
	})

	t.Run("refused", func(t *testing.T) {
		tr, err := newNATSTransport(t.Context(), 1, NATSOptions{URL: url, Run: "refuse", Remote: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.close()
		nc, err := connectNATS(url, "test worker")
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		o := NATSOptions{Run: "refuse", JoinTimeout: 2 * time.Second}.defaults()
		if _, err := joinRun(t.Context(), nc, o, 2); err == nil || !strings.Contains(err.Error(), "no worker 2 in a run of 1") {
			t.Errorf("join as worker 2 of 1 = %v, want refused", err)
		}
		if _, err := newNATSTransport(t.Context(), 1, NATSOptions{URL: url, Run: "refuse", Remote: 1}, nil); err == nil || !strings.Contains(err.Error(), "another coordinator") {
			t.Errorf("a second coordinator of the run = %v, want refused", err)
		}
	})
}

// Two workers over NATS, one started by the coordinator and one joined
// from elsewhere (here a goroutine), give the same report as two over
// stdin and stdout: every figure of each worker merged, one verdict.
func TestNATSWorkersMergeLikeStdio(t *testing.T) {
	if testing.Short() {
		t.Skip("builds linksim and runs worker processes; not in -short")
	}
	bin := filepath.Join(t.TempDir(), "linksim")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/linksim").CombinedOutput(); err != nil {
		t.Fatalf("build linksim: %v\n%s", err, out)
	}
	srv, err := natstest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	def := Definition{
		Users: 40, Workers: 2, Relay: "embedded",
		Messages: Arrival{Rate: 20}, Duration: Duration(3 * time.Second),
		Mix: map[string]float64{ActText: 1},
	}
	stdio, err := Coordinate(t.Context(), def, Options{WorkerCommand: []string{bin, "load", "--worker"}}, func(Snapshot) {})
	if err != nil {
		t.Fatal(err)
	}

	var remote sync.WaitGroup
	var remoteErr error
	remote.Go(func() {
		remoteErr = ServeNATSWorker(t.Context(), NATSWorker{URL: srv.URL(), ID: 2, JoinTimeout: 20 * time.Second})
	})
	var last Snapshot
	overNATS, err := Coordinate(t.Context(), def, Options{NATS: NATSOptions{URL: srv.URL(), Remote: 1, Command: []string{bin, "load", "worker"}}},
		func(s Snapshot) { last = s })
	remote.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if remoteErr != nil {
		t.Fatalf("remote worker: %v", remoteErr)
	}

	for name, rep := range map[string]*reports.Report{"stdio": stdio, "NATS": overNATS} {
		tot := rep.Ledger.Totals
		if !rep.Passed() || tot.Problems() != 0 || tot.Messages < 30 || tot.Delivered != tot.Expected || tot.Expected != 3*tot.Messages {
			t.Errorf("%s: passed=%v, ledger %+v", name, rep.Passed(), tot)
		}
		if got := rep.Metrics.Summary(harness.StepLinked).Count; got != 40 {
			t.Errorf("%s: pair.linked has %d samples, want 40", name, got)
		}
		if got := rep.Metrics.Summary(reports.StepDeliver).Count; got != int64(tot.Delivered) {
			t.Errorf("%s: msg.deliver has %d samples, the ledger %d deliveries", name, got, tot.Delivered)
		}
	}
	scenarioNames := func(r *reports.Report) (names []string) {
		for _, s := range r.Scenarios {
			names = append(names, s.Name)
		}
		return names
	}
	if a, b := scenarioNames(stdio), scenarioNames(overNATS); !slices.Equal(a, b) {
		t.Errorf("scenarios over NATS %q, over stdio %q", b, a)
	}
	if a, b := slices.Sorted(maps.Keys(stdio.Meta)), slices.Sorted(maps.Keys(overNATS.Meta)); !slices.Equal(a, b) {
		t.Errorf("meta keys over NATS %q, over stdio %q", b, a)
	}
	for _, k := range []string{"workers", "users", "devices", "prekeys"} {
		if stdio.Meta[k] != overNATS.Meta[k] {
			t.Errorf("meta %s: %q over NATS, %q over stdio", k, overNATS.Meta[k], stdio.Meta[k])
		}
	}
	if last.Linked != 80 || last.Sent != int64(overNATS.Ledger.Totals.Messages) {
		t.Errorf("merged live figures over NATS: %d linked, %d sent; want 80 and the ledger's %d", last.Linked, last.Sent, overNATS.Ledger.Totals.Messages)
	}
}

// Credentials in the URL authenticate, and never show in an error.
func TestNATSURLCredentials(t *testing.T) {
	url := startNATSWith(t, &server.Options{Username: "load", Password: "s3cret"})
	withUser := func(userinfo string) string { return strings.Replace(url, "nats://", "nats://"+userinfo+"@", 1) }

	_, err := newNATSTransport(t.Context(), 1, NATSOptions{URL: withUser("load:wrong-pass"), Remote: 1}, nil)
	if err == nil || strings.Contains(err.Error(), "wrong-pass") || !strings.Contains(err.Error(), "load:xxxxx@") {
		t.Errorf("a wrong password: %v; want an error that hides it", err)
	}
	tr, err := newNATSTransport(t.Context(), 1, NATSOptions{URL: withUser("load:s3cret"), Remote: 1}, nil)
	if err != nil {
		t.Fatalf("the right password: %v", err)
	}
	tr.close()
	if got := redactedURL("nats://tok3n@h:4222,nats://u:p@h2:4222"); strings.Contains(got, "tok3n") || strings.Contains(got, ":p@") {
		t.Errorf("redactedURL shows a secret: %s", got)
	}
}

func TestWorkersDialFromTheirOwnLoopbackAddressOnlyToALoopbackRelay(t *testing.T) {
	for relay, want := range map[string]string{
		"ws://127.0.0.1:8080/ws": "127.0.1.3",
		"ws://localhost:8080/ws": "127.0.1.3",
		"ws://[::1]:8080/ws":     "", // the sources are IPv4
		"ws://10.0.0.5:8080/ws":  "",
		"wss://relay.example/ws": "",
	} {
		if got := sourceFor(2, relay); got != want {
			t.Errorf("worker 3 towards %s dials from %q, want %q", relay, got, want)
		}
	}
}

// A worker that dies mid-run fails the run soon, naming it: the others
// are stopped rather than left to play out a long run.
func TestNATSRunFailsSoonWhenAWorkerDies(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run of 40 devices; not in -short")
	}
	url := startNATS(t, 0)
	def := Definition{
		Users: 20, Workers: 2, Relay: "embedded",
		Messages: Arrival{Rate: 10}, Duration: Duration(time.Minute), Drain: Duration(5 * time.Second),
		Mix: map[string]float64{ActText: 1},
	}
	var workers sync.WaitGroup
	workers.Go(func() { _ = ServeNATSWorker(t.Context(), NATSWorker{URL: url, ID: 1, JoinTimeout: 10 * time.Second}) })
	workers.Go(func() { // worker 2 takes its job and goes silent
		wc, err := joinAs(t, url, "", 2)
		if err != nil {
			t.Error(err)
			return
		}
		wc.close()
	})
	start := time.Now()
	_, err := Coordinate(t.Context(), def, Options{NATS: NATSOptions{URL: url, Remote: 2, Silence: 3 * time.Second}}, func(Snapshot) {})
	workers.Wait()
	if err == nil || !strings.Contains(err.Error(), "worker 2: link lost before its result: no word from it") {
		t.Fatalf("Coordinate = %v, want worker 2 named silent", err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the run failed after %s of its minute, want soon after worker 2 fell silent", took)
	}
}
