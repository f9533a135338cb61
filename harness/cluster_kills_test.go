package harness

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/linksim/linksim/reports"
)

// `make cluster-chaos` runs TestClusterKills with 20 kills of each kind;
// `make test` runs the short default.
var (
	clusterKills = flag.Int("cluster.kills", 2, "TestClusterKills: relay node kills, and NATS server kills, while users message")
	clusterRate  = flag.Int("cluster.rate", 60, "TestClusterKills: messages per second the users send, at most (one sender per user)")
	clusterUsers = flag.Int("cluster.users", 3, "TestClusterKills: users, each with a phone and a web client, each sending to the next")
)

// TestClusterKills is issue 10's measure of a relay cluster's survival: on
// the cluster-process backend (three NATS servers, two relay nodes), users
// message each other at a steady rate while a relay node and a NATS server
// are killed with SIGKILL in turn, each restarted once every device is
// back: it has had a send acked, and has decrypted a message sent, since
// the kill. It logs the time until every device is back per kind of kill;
// then every message must reach every device once, in order, intact.
func TestClusterKills(t *testing.T) {
	if *clusterKills < 1 || *clusterRate < 1 || *clusterUsers < 2 {
		t.Fatalf("-cluster.kills %d, -cluster.rate %d, -cluster.users %d: want at least 1, 1 and 2", *clusterKills, *clusterRate, *clusterUsers)
	}
	ctx := t.Context()
	rec := reports.NewRecorder()
	back := &backTracker{}
	rec.AddSink(reports.SinkFunc(back.record))
	var repeats sendRepeats
	env := Start(t, Config{Backend: ClusterProcess, KeepAlive: 300 * time.Millisecond, Recorder: rec, Events: repeats.event})
	cl := env.Cluster()
	var names []string
	for i := range *clusterUsers {
		names = append(names, fmt.Sprintf("user-%d", i+1))
	}
	c := &chaos{env: env, users: newChaosUsers(t, env, names)}
	for _, u := range c.users {
		for _, d := range u.Devices() {
			back.devices = append(back.devices, d.Name())
		}
	}
	start := time.Now()
	traffic := c.startTraffic(ctx, time.Duration(len(c.users))*time.Second/time.Duration(*clusterRate))
	t.Cleanup(func() { traffic.stop() })
	kinds := []struct {
		name  string
		count int
		kill  func(context.Context, int) (func(context.Context) error, error)
	}{
		{"relay node", cl.Nodes(), cl.KillNode},
		{"NATS server", NATSServers, cl.KillNATS},
	}
	took := make([][]time.Duration, len(kinds))
	// What the users sent while devices were not all back, to tell the
	// rate the cluster holds from the rate over the whole run.
	var outage time.Duration
	var sentInOutage int64
	for i := range *clusterKills {
		// Node and NATS kills alternate, so a restarted NATS server has a
		// node kill's time to catch up before the next NATS kill.
		for k, kind := range kinds {
			n := i%kind.count + 1
			since := back.reset(rec.Elapsed())
			sentBefore := traffic.sent.Load()
			restart, err := kind.kill(ctx, n)
			if err != nil {
				t.Fatalf("kill %d: %s %d: %v", i+1, kind.name, n, err)
			}
			d, err := back.await(ctx, since)
			if err != nil {
				// A user whose send failed sends no more, and is never
				// back: that failure is the one to report.
				if _, sendErr := traffic.stop(); sendErr != nil {
					err = fmt.Errorf("%w, the traffic having stopped: %w", err, sendErr)
				}
				t.Fatalf("kill %d: %s %d: %v", i+1, kind.name, n, err)
			}
			took[k] = append(took[k], d)
			outage += rec.Elapsed() - since
			sentInOutage += traffic.sent.Load() - sentBefore
			if err := restart(ctx); err != nil {
				t.Fatalf("kill %d: restart %s %d: %v", i+1, kind.name, n, err)
			}
		}
	}
	sent, err := traffic.stop()
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	awaitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := Await(awaitCtx, "every message to reach every device once, in order, after the kills", env.Check); err != nil {
		t.Fatal(err)
	}
	l := env.Ledger()
	for k, kind := range kinds {
		slices.Sort(took[k])
		t.Logf("%s killed %d times: every device back after p50 %s, max %s", kind.name, len(took[k]),
			took[k][(len(took[k])-1)/2].Round(time.Millisecond), took[k][len(took[k])-1].Round(time.Millisecond))
	}
	steady := elapsed - outage
	t.Logf("%d users (%d devices), %d messages sent in %s (%d sends repeated after the relay did not take them): %.0f msg/s, %.0f msg/s while every device was up (asked %d); %d deliveries expected, %d made; lost %d, duplicated %d, reordered %d, corrupted %d",
		len(c.users), len(back.devices), sent, elapsed.Round(time.Second), repeats.Load(), float64(sent)/elapsed.Seconds(),
		float64(sent-sentInOutage)/steady.Seconds(), *clusterRate,
		l.Totals.Expected, l.Totals.Delivered, l.Totals.Lost, l.Totals.Duplicated, l.Totals.Reordered, l.Totals.Corrupted)
	if sent == 0 || l.Totals.Expected == 0 || l.Totals.Delivered != l.Totals.Expected {
		t.Fatalf("%d messages sent, %d of %d deliveries made: the run proves nothing", sent, l.Totals.Delivered, l.Totals.Expected)
	}
}

// backTracker watches the recorder's events for when, since a fault, every
// device has had a send acked and has decrypted a message sent after the
// fault: then the device is back, both ways.
type backTracker struct {
	devices []string // set before the first reset

	mu      sync.Mutex
	since   time.Duration            // the fault, on the recorder's clock
	sentAt  map[string]time.Duration // message → when sent, since the fault
	acked   map[string]time.Duration // device → its first ack since the fault
	decrypt map[string]time.Duration // device → its first decrypt of a message sent since the fault
}

func (b *backTracker) record(e reports.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sentAt == nil || e.At < b.since {
		return
	}
	switch e.Kind {
	case reports.KindSend:
		b.sentAt[e.Msg] = e.At
	case reports.KindAck:
		if _, ok := b.acked[e.Device]; !ok {
			b.acked[e.Device] = e.At
		}
	case reports.KindDecrypt:
		_, sentSince := b.sentAt[e.Msg]
		if _, ok := b.decrypt[e.Device]; sentSince && !ok {
			b.decrypt[e.Device] = e.At
		}
	}
}

// reset starts watching from since and returns it.
func (b *backTracker) reset(since time.Duration) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.since = since
	b.sentAt, b.acked, b.decrypt = map[string]time.Duration{}, map[string]time.Duration{}, map[string]time.Duration{}
	return since
}

// await waits until every device is back and returns how long after since
// the last one was.
func (b *backTracker) await(ctx context.Context, since time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last time.Duration
	err := Await(ctx, "every device to send and receive again", func() error {
		b.mu.Lock()
		defer b.mu.Unlock()
		last = 0
		for _, d := range b.devices {
			a, acked := b.acked[d]
			r, received := b.decrypt[d]
			if !acked || !received {
				return fmt.Errorf("%s: acked since %v, received since %v", d, acked, received)
			}
			last = max(last, a, r)
		}
		return nil
	})
	return last - since, err
}

// TestBackTrackerWantsEveryDeviceBothWays checks the measure of
// TestClusterKills: a device is back only once it has had an ack and has
// decrypted a message sent since the fault, not one sent before it.
func TestBackTrackerWantsEveryDeviceBothWays(t *testing.T) {
	b := &backTracker{devices: []string{"a", "b"}}
	ms := time.Millisecond
	b.record(reports.Event{Kind: reports.KindAck, Device: "a", At: 5 * ms}) // before any reset: ignored
	since := b.reset(10 * ms)
	for _, e := range []reports.Event{
		{Kind: reports.KindSend, Device: "a", Msg: "old", At: 9 * ms}, // before the fault
		{Kind: reports.KindDecrypt, Device: "b", Msg: "old", At: 20 * ms},
		{Kind: reports.KindAck, Device: "a", At: 30 * ms},
		{Kind: reports.KindSend, Device: "b", Msg: "new", At: 40 * ms},
		{Kind: reports.KindAck, Device: "b", At: 50 * ms},
		{Kind: reports.KindDecrypt, Device: "a", Msg: "new", At: 60 * ms},
	} {
		b.record(e)
	}
	short, cancel := context.WithTimeout(t.Context(), 50*ms)
	defer cancel()
	if d, err := b.await(short, since); err == nil {
		t.Fatalf("b decrypted only a message sent before the fault, yet every device is back after %s", d)
	}
	b.record(reports.Event{Kind: reports.KindSend, Device: "a", Msg: "newer", At: 70 * ms})
	b.record(reports.Event{Kind: reports.KindDecrypt, Device: "b", Msg: "newer", At: 80 * ms})
	if d, err := b.await(t.Context(), since); err != nil || d != 70*ms {
		t.Fatalf("every device back: after %s (%v), want 70ms", d, err)
	}
}
