package device

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/relay"
)

// The identity keys are made while the relay is dialled, not before it: in
// a page their making fills the wait for the WebSocket to open. Here the
// state takes no key but the Noise key until the dial has begun.
func TestIdentityKeysAreMadeWhileDialling(t *testing.T) {
	srv, err := relay.Serve(relay.Config{DataDir: t.TempDir(), NoSync: true}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dialled := make(chan struct{})
	dialer := func(ctx context.Context, network, addr string) (net.Conn, error) {
		close(dialled)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	st := gatedKV{KV: kv.NewMem(), open: dialled}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := Config{Name: "web", RelayURL: srv.WSURL(), RelayKey: srv.Key(), Dialer: dialer, State: st}.withDefaults()
	l, sig, err := joinLink(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	if len(sig.IdentityKey()) == 0 {
		t.Error("joinLink made no identity key")
	}
}

// gatedKV holds every Put but the Noise key's until open is closed, and
// fails it after a second.
type gatedKV struct {
	kv.KV
	open <-chan struct{}
}

func (g gatedKV) Put(key string, value []byte) error {
	if key != keyNoise {
		select {
		case <-g.open:
		case <-time.After(time.Second):
			return errors.New("gatedKV: " + key + " stored before the relay was dialled")
		}
	}
	return g.KV.Put(key, value)
}

func TestRegistrationKeysInBatches(t *testing.T) {
	sig, err := e2e.Open(kv.NewMem())
	if err != nil {
		t.Fatal(err)
	}
	n := 2*keyBatch + 3 // two full batches and a short one
	keys, err := registrationKeys(sig, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.Prekeys) != n || sig.PreKeyCount() != n || keys.SignedPrekey == nil || len(keys.IdentityKey) != 33 {
		t.Fatalf("%d prekeys returned, %d stored, signed prekey %v; want %d, %d and one", len(keys.Prekeys), sig.PreKeyCount(), keys.SignedPrekey, n, n)
	}
	for i, pk := range keys.Prekeys {
		if pk.Id != uint32(i+1) {
			t.Fatalf("prekey %d has id %d, want ids 1..%d in order", i, pk.Id, n)
		}
	}
}
