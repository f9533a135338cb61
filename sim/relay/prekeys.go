package relay

import (
	"errors"
	"sync"
	"time"

	"github.com/linksim/linksim/sim/route"
	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// onUploadPreKeys adds one-time prekeys and maybe rotates the signed prekey
// (§6).
func (c *conn) onUploadPreKeys(me store.Address, _ uint64, f *pb.Frame) (*pb.Frame, error) {
	req := f.GetUploadPrekeys()
	if err := checkPreKeys(req.GetPrekeys()); err != nil {
		return nil, err
	}
	if spk := req.GetSignedPrekey(); spk != nil {
		d, err := c.r.st.Device(me)
		if err != nil {
			return nil, err
		}
		if err := checkSignedPreKey(d.IdentityKey, spk); err != nil {
			return nil, err
		}
		if err := c.r.st.SetSignedPreKey(me, spk); err != nil {
			return nil, err
		}
	}
	n, err := c.r.st.AddPreKeys(me, req.GetPrekeys(), maxStoredPreKeys)
	if err != nil {
		return nil, err
	}
	c.logger().Debug("prekeys uploaded", "sent", len(req.GetPrekeys()), "stored", n)
	return okFrame(), nil
}

// onFetchBundles hands out one bundle per address, each with a one-time
// prekey that is consumed, and tells devices running low (§6). Each device
// may take prekeys at a limited rate, so none can drain another's.
func (c *conn) onFetchBundles(me store.Address, _ uint64, f *pb.Frame) (*pb.Frame, error) {
	req := f.GetFetchBundles()
	n := len(req.GetAddresses())
	if n == 0 || n > maxAddresses {
		return nil, badRequest("%d addresses, want 1 to %d", n, maxAddresses)
	}
	if wait, ok := c.r.prekeyRate.take(me, n, time.Now()); !ok {
		c.r.m.refusals.WithLabelValues(refusePreKeyRate).Inc()
		return nil, fail(pb.ErrorCode_RATE_LIMITED, "one-time prekeys fetched too fast: retry in %v", wait.Round(time.Millisecond))
	}
	addrs := make([]store.Address, n)
	for i, a := range req.GetAddresses() {
		if err := checkUser(a.GetUser()); err != nil {
			return nil, err
		}
		addrs[i] = store.Address{User: a.GetUser(), Device: a.GetDevice()}
	}
	bundles, left, err := c.r.st.TakeBundles(addrs)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fail(pb.ErrorCode_UNKNOWN_DEVICE, "an address is not a device")
	}
	if err != nil {
		return nil, err
	}
	if err := c.r.vouch(bundles); err != nil {
		return nil, err
	}
	for i := range bundles {
		if left[i] >= preKeysLow { // a device that ran out needs it most
			continue
		}
		c.r.pushTo(addrs[i], route.Push, &pb.Frame{Body: &pb.Frame_PrekeysLow{PrekeysLow: &pb.PreKeysLow{Left: uint32(left[i])}}})
	}
	return &pb.Frame{Body: &pb.Frame_Bundles{Bundles: &pb.Bundles{Bundles: bundles}}}, nil
}

// tokenBuckets rate-limits something per device: a bucket of burst tokens
// per device, refilled at rate per second. Full buckets are forgotten, so
// it holds only devices that spent tokens lately.
type tokenBuckets struct {
	burst, rate float64

	mu      sync.Mutex
	buckets map[store.Address]*bucket
	pruned  time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newTokenBuckets(burst int, rate float64) *tokenBuckets {
	return &tokenBuckets{burst: float64(burst), rate: rate, buckets: map[store.Address]*bucket{}}
}

// take spends n tokens of a's bucket, or none and returns how long until
// there would be n (n above the burst never fits).
func (t *tokenBuckets) take(a store.Address, n int, now time.Time) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.pruned) > time.Minute {
		for k, b := range t.buckets {
			if t.level(b, now) >= t.burst {
				delete(t.buckets, k)
			}
		}
		t.pruned = now
	}
	b := t.buckets[a]
	if b == nil {
		b = &bucket{tokens: t.burst, at: now}
		t.buckets[a] = b
	}
	b.tokens, b.at = t.level(b, now), now
	if need := float64(n); b.tokens < need {
		return time.Duration((need - b.tokens) / t.rate * float64(time.Second)), false
	}
	b.tokens -= float64(n)
	return 0, true
}

func (t *tokenBuckets) level(b *bucket, now time.Time) float64 {
	return min(t.burst, b.tokens+now.Sub(b.at).Seconds()*t.rate)
}
