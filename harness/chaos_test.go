package harness

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/sim/device"
)

// `make chaos` runs TestChaos with -chaos.faults 1000; `make test` runs the
// short default.
var (
	chaosFaults = flag.Int("chaos.faults", 50, "faults TestChaos injects while its users message each other")
	chaosSeed   = flag.Uint64("chaos.seed", 1, "seed of TestChaos's choice of faults, devices and durations: a run is repeatable")
)

// chaosEvery spaces relay crashes (kill -9) and graceful restarts: one of
// each per chaosEvery faults, the rest network faults and device churn.
const chaosEvery = 40

// TestChaos has three users (a phone and a native web client each) message
// each other without pause through a relay run as a process, while faults
// hit one after another: link resets, latency, sliced frames, throttling,
// half-open links, dropped connections, web clients closed and reopened,
// relay kill -9 and restarts. Every message must then reach every device it
// should, once, in order, intact.
func TestChaos(t *testing.T) {
	ctx := t.Context()
	// Toxiproxy's toxics log every interrupted pipe through zerolog's
	// global logger, thousands of lines a run.
	level := zerolog.GlobalLevel()
	zerolog.SetGlobalLevel(zerolog.WarnLevel)
	t.Cleanup(func() { zerolog.SetGlobalLevel(level) })
	rec := reports.NewRecorder()
	var repeats sendRepeats
	env := Start(t, Config{Backend: "process", Faults: true, KeepAlive: 300 * time.Millisecond, Recorder: rec, Events: repeats.event})
	c := &chaos{env: env, rnd: rand.New(rand.NewPCG(*chaosSeed, 0)), injected: map[string]int{}}
	c.users = newChaosUsers(t, env, []string{"ann", "ben", "cat"})
	start := time.Now()
	traffic := c.startTraffic(ctx, 10*time.Millisecond)
	t.Cleanup(func() { traffic.stop() }) // when a fault fails the test
	for i := range *chaosFaults {
		if err := c.inject(ctx, i); err != nil {
			t.Fatalf("fault %d: %v", i+1, err)
		}
	}
	sent, err := traffic.stop()
	if err != nil {
		t.Fatal(err)
	}
	faultTime := time.Since(start)
	awaitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := Await(awaitCtx, "every message to reach every device once, in order, after the faults", env.Check); err != nil {
		t.Fatal(err)
	}
	l := env.Ledger()
	r := reports.New(rec, reports.Config{})
	deliver := r.Metrics.Summary(reports.StepDeliver)
	connects := 0
	for _, e := range rec.Events() {
		if e.Kind == reports.KindConnect {
			connects++
		}
	}
	t.Logf("chaos (seed %d): %d faults in %s (%s); %d device connections; %d messages sent (%d sends repeated after the relay did not take them), %d deliveries expected, %d delivered; lost %d, duplicated %d, reordered %d, corrupted %d, undecryptable %d (%d recovered by retry); msg.deliver p50 %s, p99 %s, max %s",
		*chaosSeed, *chaosFaults, faultTime.Round(time.Second), c.summary(), connects, sent, repeats.Load(), l.Totals.Expected, l.Totals.Delivered,
		l.Totals.Lost, l.Totals.Duplicated, l.Totals.Reordered, l.Totals.Corrupted, l.Totals.Undecryptable, l.Totals.Recovered,
		deliver.P50.Round(time.Millisecond), deliver.P99.Round(time.Millisecond), deliver.Max.Round(time.Millisecond))
	if sent == 0 || l.Totals.Expected == 0 || l.Totals.Delivered != l.Totals.Expected {
		t.Fatalf("%d messages sent, %d of %d deliveries made: the run proves nothing", sent, l.Totals.Delivered, l.Totals.Expected)
	}
}

// chaosUser is a user whose devices the traffic and the churn take turns
// with: a web client being reopened is not sending.
type chaosUser struct {
	*User
	peerIndex int
	mu        sync.Mutex
}

// newChaosUsers registers a user with a phone and a native web client for
// each name, each user sending to the next.
func newChaosUsers(t *testing.T, env *Env, names []string) []*chaosUser {
	t.Helper()
	var users []*chaosUser
	for i, name := range names {
		u, err := env.NewUser(t.Context(), name, 1)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, &chaosUser{User: u, peerIndex: (i + 1) % len(names)})
	}
	return users
}

type chaos struct {
	env   *Env
	users []*chaosUser
	rnd   *rand.Rand // used by the injecting goroutine only

	mu       sync.Mutex
	injected map[string]int // by kind
}

// traffic is the users' senders, each sending to the next user from its
// phone and web client in turn, once per period at most (a send still
// waiting for its ack skips the ticks it missed rather than bursting).
type traffic struct {
	halt chan struct{}
	once sync.Once
	wg   sync.WaitGroup
	sent atomic.Int64
	errs chan error
}

// sendRepeats counts the sends the devices made again because the relay
// refused them for now, failed them or did not answer them in time
// (device.RequestRepeated): a client's own retries, under the message's id.
type sendRepeats struct{ atomic.Int64 }

func (r *sendRepeats) event(e device.Event) {
	if e.Kind == device.RequestRepeated && e.MessageID != "" {
		r.Add(1)
	}
}

func (c *chaos) startTraffic(ctx context.Context, period time.Duration) *traffic {
	tr := &traffic{halt: make(chan struct{}), errs: make(chan error, len(c.users))}
	for _, u := range c.users {
		peer := c.users[u.peerIndex].Phone.Self().User
		tr.wg.Go(func() {
			tick := time.NewTicker(period)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-tr.halt:
					return
				case <-tick.C:
				}
				u.mu.Lock()
				d := u.Devices()[i%2]
				_, err := d.SendText(ctx, peer, fmt.Sprintf("chaos %s #%d", d.Name(), i))
				u.mu.Unlock()
				if err != nil {
					tr.errs <- fmt.Errorf("send %d from %s: %w", i, d.Name(), err)
					return
				}
				tr.sent.Add(1)
			}
		})
	}
	return tr
}

// stop ends the traffic and returns how many messages were sent, or the
// first send that failed.
func (tr *traffic) stop() (int64, error) {
	tr.once.Do(func() { close(tr.halt) })
	tr.wg.Wait()
	select {
	case err := <-tr.errs:
		return 0, err
	default:
		return tr.sent.Load(), nil
	}
}

// inject applies fault number i and, for a fault that lasts, lifts it.
func (c *chaos) inject(ctx context.Context, i int) error {
	kind, err := c.apply(ctx, i)
	c.mu.Lock()
	c.injected[kind]++
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	return nil
}

func (c *chaos) apply(ctx context.Context, i int) (kind string, err error) {
	switch i % chaosEvery {
	case chaosEvery / 2:
		return "relay kill -9", c.env.CrashRelay(ctx)
	case chaosEvery - 1:
		return "relay restart", c.env.RestartRelay(ctx)
	}
	u := c.users[c.rnd.IntN(len(c.users))]
	web := c.rnd.IntN(2) == 1
	name := u.Phone.Name()
	if web {
		name = u.Name + "/web-1"
	}
	link, err := c.env.Net(name)
	if err != nil {
		return "fault path", err
	}
	hold := time.Duration(30+c.rnd.IntN(120)) * time.Millisecond
	switch c.rnd.IntN(8) {
	case 0, 1:
		return "link reset", link.Reset()
	case 2:
		return "latency", holdFault(ctx, hold)(link.Latency(60*time.Millisecond, 30*time.Millisecond))
	case 3:
		return "sliced frames", holdFault(ctx, hold)(link.Slice(48, 32, 200*time.Microsecond))
	case 4:
		return "bandwidth", holdFault(ctx, hold)(link.Bandwidth(20))
	case 5:
		// Longer than two keepalives, so the device finds the link dead.
		return "half-open link", holdFault(ctx, 700*time.Millisecond+hold)(link.Blackhole())
	case 6:
		u.mu.Lock()
		defer u.mu.Unlock()
		d := u.Phone.Device
		if web {
			d = u.Device(0)
		}
		end := c.env.Recorder().Fault("disconnect " + name)
		defer end()
		d.Disconnect()
		return "connection dropped", nil
	default:
		u.mu.Lock()
		defer u.mu.Unlock()
		end := c.env.Recorder().Fault("reopen " + u.Name + "/web-1")
		defer end()
		_, err := c.env.Reopen(ctx, u.User, 0)
		return "web client reopened", err
	}
}

// holdFault returns a function that keeps a fault just applied (its lift
// and error) on for d, then lifts it.
func holdFault(ctx context.Context, d time.Duration) func(lift func(), err error) error {
	return func(lift func(), err error) error {
		if err != nil {
			return err
		}
		defer lift()
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *chaos) summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c.injected)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, c.injected[k]))
	}
	return strings.Join(parts, ", ")
}
