package device

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/relay"
	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// A relay that closes a new companion's connection right after linking it
// ("restart required") gets the companion back at once, not after a
// backoff, and the companion works.
func TestReconnectRightAfterPairing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := startRelayWith(t, relay.Config{Field: relay.FieldConfig{RestartAfterPairing: true}})
	alice := registerPhone(t, ctx, s, "+15550100", nil)
	bob := registerPhone(t, ctx, s, "+15550101", nil)
	web := linkCompanionWith(t, ctx, s, bob, 1, Config{
		// A backoff this long would outlast the test: the reconnect must
		// not wait for it.
		BackoffBase: time.Minute, BackoffMax: time.Minute,
	})
	if err := web.WaitOnline(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendText(ctx, bob.Self().User, "hello"); err != nil {
		t.Fatal(err)
	}
	waitMessages(t, ctx, web, alice.Self().User, 1)
}

// A client older than the relay accepts is refused with a message saying
// what to do, and stops instead of reconnecting.
func TestOutdatedClientIsRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := startRelayWith(t, relay.Config{Field: relay.FieldConfig{MinClientVersion: ClientVersion + 1}})
	var outdated atomic.Int32
	_, err := Register(ctx, Config{Name: "old", RelayURL: s.WSURL(), RelayKey: s.Key(), Events: func(e Event) {
		if e.Kind == Outdated {
			outdated.Add(1)
		}
	}}, "+15550100", "alice")
	if !errors.Is(err, ErrOutdated) {
		t.Fatalf("registering an outdated client: %v, want ErrOutdated", err)
	}
	if !strings.Contains(err.Error(), "update to version 2") {
		t.Errorf("the refusal does not say what to do: %v", err)
	}
	if n := outdated.Load(); n != 1 {
		t.Errorf("%d outdated events, want 1", n)
	}
}

// A logout the user did not start (the relay removes the device) wipes the
// companion and says why; its phone stops vouching for it.
func TestRelayInitiatedLogout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := startRelay(t)
	bob := registerPhone(t, ctx, s, "+15550101", nil)
	if _, err := bob.Devices(ctx, bob.Self().User); err != nil { // bob's phone caches its own list
		t.Fatal(err)
	}
	web := linkCompanion(t, ctx, s, bob, 1, nil)
	if err := web.WaitOnline(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Relay().Logout(store.Address{User: bob.Self().User, Device: 1}, "session expired"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-web.Done():
	case <-ctx.Done():
		t.Fatal("the companion was not logged out")
	}
	var lo *LoggedOutError
	if !errors.As(web.Err(), &lo) || lo.Reason != "session expired" {
		t.Errorf("companion stopped with %v, want logged out with reason \"session expired\"", web.Err())
	}
	if _, ok, _ := web.State().Get(keySelf); ok {
		t.Error("the logged-out companion kept its identity")
	}
	waitFor(t, ctx, "bob's phone to stop vouching for the companion", func() bool {
		ids, err := bob.Vouched()
		return err == nil && !slices.Contains(ids, 1)
	})
}

// The relay answers a companion's logout with Ok and pushes LoggedOut
// right after: the answer is the call's, though the link has ended by the
// time the caller looks.
func TestLogoutSucceedsThoughTheLinkEndsRightAfter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := startRelay(t)
	bob := registerPhone(t, ctx, s, "+15550402", nil)
	for dev := uint32(1); dev <= 20; dev++ {
		if err := linkCompanion(t, ctx, s, bob, dev, nil).Logout(ctx); err != nil {
			t.Fatalf("logout %d: %v", dev, err)
		}
	}
}

// cutStore drops a device's link right after the relay's store removed
// devices, before the relay answers: a connection lost at that moment.
type cutStore struct {
	store.Store
	cut atomic.Pointer[Device]
}

func (s *cutStore) RemoveDevices(user string, ids []uint32) ([]store.Device, error) {
	removed, err := s.Store.RemoveDevices(user, ids)
	if d := s.cut.Load(); d != nil && err == nil {
		d.Disconnect()
	}
	return removed, err
}

// startCutRelay runs a relay on a cutStore.
func startCutRelay(t *testing.T) (*relay.Server, *cutStore) {
	cut := &cutStore{}
	s := startRelayWith(t, relay.Config{WrapStore: func(st store.Store) store.Store {
		cut.Store = st
		return cut
	}})
	return s, cut
}

// A logout whose link drops after the relay removed the companion, before
// the answer came, is done: the device, connecting again, is told it is
// logged out, which is what it asked for.
func TestLogoutCutOffBeforeItsAnswerIsDone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, cut := startCutRelay(t)
	bob := registerPhone(t, ctx, s, "+15550403", nil)
	web := linkCompanion(t, ctx, s, bob, 1, nil)
	cut.cut.Store(web)
	if err := web.Logout(ctx); err != nil {
		t.Fatalf("logout cut off after the removal: %v", err)
	}
}

// The phone's unlink whose link drops after the relay removed the
// companion, before the answer came, is done: the device list shows it,
// where sending the request again would be refused (UNKNOWN_DEVICE).
func TestUnlinkCutOffBeforeItsAnswerIsDone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, cut := startCutRelay(t)
	bob := registerPhone(t, ctx, s, "+15550404", nil)
	linkCompanion(t, ctx, s, bob, 1, nil)
	linkCompanion(t, ctx, s, bob, 2, nil)
	cut.cut.Store(bob)
	if err := bob.RemoveDevices(ctx, []uint32{1}, false); err != nil {
		t.Fatalf("unlink cut off after the removal: %v", err)
	}
	cut.cut.Store(nil)
	if have, err := bob.Devices(ctx, bob.Self().User); err != nil || !slices.Equal(have, []uint32{0, 2}) {
		t.Fatalf("devices after the unlink: %v, %v; want [0 2]", have, err)
	}
	if vouched, err := bob.Vouched(); err != nil || !slices.Equal(vouched, []uint32{2}) {
		t.Errorf("the phone vouches for %v, %v; want [2]: it signs the list without the removed one", vouched, err)
	}
	// Unlinking a device the account never had is still refused.
	if err := bob.RemoveDevices(ctx, []uint32{9}, false); Code(err) != pb.ErrorCode_UNKNOWN_DEVICE {
		t.Errorf("unlink of an unknown device: %v, want UNKNOWN_DEVICE", err)
	}
}
