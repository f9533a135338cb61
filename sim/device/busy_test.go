package device

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/relay"
	"github.com/linksim/linksim/sim/wire/pb"
)

// A send whose bundle fetch the relay refuses with RATE_LIMITED waits the
// time the relay names and then goes through.
func TestSendWaitsOutRateLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, alice, carol := rateLimited(t, ctx, 1.25) // carol's bundle in 0.8 s
	start := time.Now()
	if _, err := alice.SendText(ctx, carol.Self().User, "hi carol"); err != nil {
		t.Fatalf("send after RATE_LIMITED: %v", err)
	}
	if waited := time.Since(start); waited < 400*time.Millisecond {
		t.Errorf("the send took %v: it cannot have been rate limited", waited)
	}
	if n := refusals(t, s, "prekey_rate"); n < 1 {
		t.Errorf("%v prekey_rate refusals, want at least 1", n)
	}
	waitMessages(t, ctx, carol, alice.Self().User, 1)
}

// A RATE_LIMITED wait longer than a call waits fails at once, naming the
// code.
func TestRateLimitTooLongFailsAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, alice, carol := rateLimited(t, ctx, 0.01) // carol's bundle in 100 s
	_, err := alice.SendText(ctx, carol.Self().User, "hi carol")
	if Code(err) != pb.ErrorCode_RATE_LIMITED || !strings.Contains(err.Error(), "more than 30s") {
		t.Fatalf("send asked to wait 100 s: %v, want RATE_LIMITED refused as too long", err)
	}
}

// A RATE_LIMITED wait ends early when the caller's context does.
func TestRateLimitWaitEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, alice, carol := rateLimited(t, ctx, 0.1) // carol's bundle in 10 s
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	start := time.Now()
	_, err := alice.SendText(short, carol.Self().User, "hi carol")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting to retry after RATE_LIMITED") {
		t.Fatalf("send waiting 10 s under a 300 ms context: %v, want the deadline while waiting", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the send gave up after %v, not when its context ended", took)
	}
}

// rateLimited starts a relay handing out one prekey at once and then rate
// per second, and registers alice, who spends her one on bob, and carol.
func rateLimited(t *testing.T, ctx context.Context, rate float64) (*relay.Server, *Device, *Device) {
	t.Helper()
	s := startRelayWith(t, relay.Config{Limits: relay.Limits{PreKeyFetchBurst: 1, PreKeyFetchRate: rate}})
	alice := registerPhone(t, ctx, s, "+15550100", nil)
	bob := registerPhone(t, ctx, s, "+15550101", nil)
	carol := registerPhone(t, ctx, s, "+15550102", nil)
	if _, err := alice.SendText(ctx, bob.Self().User, "hi bob"); err != nil {
		t.Fatal(err)
	}
	return s, alice, carol
}

// A send to a device whose queue stays full is tried busyAttempts times,
// backing off, and then fails with an error naming QUEUE_FULL.
func TestSendGivesUpOnFullQueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := startRelayWith(t, relay.Config{Limits: relay.Limits{MaxQueuedBytes: 1}}) // no delivery fits
	alice, err := Register(ctx, Config{Name: "alice", RelayURL: s.WSURL(), RelayKey: s.Key(),
		BackoffBase: 5 * time.Millisecond, BackoffMax: 40 * time.Millisecond}, "+15550100", "alice")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.Close() })
	bob := registerPhone(t, ctx, s, "+15550101", nil)
	_, err = alice.SendText(ctx, bob.Self().User, "hi")
	if Code(err) != pb.ErrorCode_QUEUE_FULL {
		t.Fatalf("send to a full queue: %v, want QUEUE_FULL", err)
	}
	if !strings.Contains(err.Error(), "QUEUE_FULL after 6 attempts") {
		t.Errorf("the error does not say it gave up: %v", err)
	}
	if n := refusals(t, s, "queue_full"); n != busyAttempts {
		t.Errorf("the relay refused %v sends, want %d attempts", n, busyAttempts)
	}
}

// refusals reads linksim_relay_refusals_total{reason} from the relay's
// /metrics.
func refusals(t *testing.T, s *relay.Server, reason string) float64 {
	t.Helper()
	return relayMetric(t, s, `linksim_relay_refusals_total{reason="`+reason+`"}`)
}

// relayMetric reads one series, named with its labels as the relay's
// /metrics writes it, from there: 0 when it is not there yet (a counter
// vector shows a series once it counted one).
func relayMetric(t *testing.T, s *relay.Server, series string) float64 {
	t.Helper()
	resp, err := http.Get(s.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	var n float64
	if _, err := fmt.Sscan(string(m[1]), &n); err != nil {
		t.Fatal(err)
	}
	return n
}
