package device

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/wire"
	"github.com/linksim/linksim/sim/wire/pb"
)

// ghostKeys makes the keys a compromised relay would give a ghost device.
func ghostKeys(t *testing.T) ([]byte, *pb.SignalKeys, *e2e.Store) {
	t.Helper()
	nk, err := wire.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	st, err := e2e.Open(kv.NewMem())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := st.Keys(5)
	if err != nil {
		t.Fatal(err)
	}
	return nk.Public, keys, st
}

// untrusted records the devices a device refused.
type untrusted struct {
	mu      sync.Mutex
	devices []e2e.Address
}

func (u *untrusted) event(e Event) {
	if e.Kind == UntrustedDevice {
		u.mu.Lock()
		u.devices = append(u.devices, e.From)
		u.mu.Unlock()
	}
}

func (u *untrusted) saw(a e2e.Address) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Contains(u.devices, a)
}

// A relay that adds a device to bob's account, which bob's phone never
// linked, is caught by everyone who sends to bob or as bob: nobody encrypts
// for the ghost, whether it shows no device identity or one it signed itself.
func TestGhostDeviceIsRefusedByEverySender(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := startRelay(t)
	var aliceSaw, bobWebSaw, carolSaw untrusted
	alice := registerPhone(t, ctx, s, "+15550100", aliceSaw.event)
	bob := registerPhone(t, ctx, s, "+15550101", nil)
	bobWeb := linkCompanion(t, ctx, s, bob, 1, bobWebSaw.event)
	carol := registerPhone(t, ctx, s, "+15550102", carolSaw.event)
	// Everyone knows bob before the relay turns.
	for _, d := range []*Device{alice, carol} {
		if _, err := d.SendText(ctx, bob.Self().User, "hi"); err != nil {
			t.Fatal(err)
		}
	}

	noise, keys, ghostSig := ghostKeys(t)
	ghostID, err := s.Relay().AddGhost(bob.Self().User, noise, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A second ghost claims an identity signed by a key of its own.
	noise2, keys2, _ := ghostKeys(t)
	forged, err := e2e.SignDeviceIdentity(ghostSig, &pb.DeviceIdentity{User: bob.Self().User, Device: ghostID + 1, KeyIndex: ghostID + 1}, keys2.GetIdentityKey(), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	var signed pb.SignedDeviceIdentity
	if err := proto.Unmarshal(forged.GetDetails(), &signed); err != nil {
		t.Fatal(err)
	}
	raw, _ := proto.Marshal(&signed)
	ghost2ID, err := s.Relay().AddGhost(bob.Self().User, noise2, keys2, raw)
	if err != nil {
		t.Fatal(err)
	}

	// bob's companion learns of both ghosts by the relay's pushes of bob's
	// list; a send racing the second push would meet the first ghost only.
	waitFor(t, ctx, "bob's companion to be told of both ghosts", func() bool {
		have := bobWeb.lists.get(bob.Self().User).GetDevices()
		return slices.Contains(have, ghostID) && slices.Contains(have, ghost2ID)
	})
	senders := []struct {
		dev *Device
		to  string
		saw *untrusted
	}{{alice, bob.Self().User, &aliceSaw}, {carol, bob.Self().User, &carolSaw}, {bobWeb, carol.Self().User, &bobWebSaw}}
	for _, sd := range senders {
		_, err := sd.dev.SendText(ctx, sd.to, "secret")
		if !errors.Is(err, ErrUntrustedDevice) {
			t.Errorf("%s sending to %s with ghosts in bob's account: %v, want ErrUntrustedDevice", sd.dev.Name(), sd.to, err)
		}
		for _, g := range []uint32{ghostID, ghost2ID} {
			if ga := (e2e.Address{User: bob.Self().User, Device: g}); !sd.saw.saw(ga) {
				t.Errorf("%s did not report ghost %s as untrusted", sd.dev.Name(), ga)
			}
		}
	}
}

// A ghost device can send, but what it sends is refused: the recipient
// finds it on no list its account signed.
func TestMessageFromGhostIsRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := startRelay(t)
	var aliceSaw untrusted
	alice := registerPhone(t, ctx, s, "+15550100", aliceSaw.event)
	bob := registerPhone(t, ctx, s, "+15550101", nil)
	if _, err := bob.SendText(ctx, alice.Self().User, "from the real bob"); err != nil {
		t.Fatal(err)
	}
	waitMessages(t, ctx, alice, bob.Self().User, 1)

	// The relay makes a ghost with keys it holds, and runs it.
	st := kv.NewMem()
	key, err := noiseKey(st)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := e2e.Open(st)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := sig.Keys(5)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.Relay().AddGhost(bob.Self().User, key.Public, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	ghostAddr := e2e.Address{User: bob.Self().User, Device: id}
	if err := saveSelf(st, ghostAddr); err != nil {
		t.Fatal(err)
	}
	ghost, err := Open(ctx, Config{Name: "ghost", RelayURL: s.WSURL(), RelayKey: s.Key(), State: st})
	if err != nil {
		t.Fatal(err)
	}
	defer ghost.Close()
	// The ghost sends to alice's phone alone, as a relay-run client would.
	if err := ghost.SendDirect(ctx, NewMessageID(), alice.Self(), chatContent("from the ghost")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "alice to refuse the ghost", func() bool { return aliceSaw.saw(ghostAddr) })
	for _, m := range alice.Messages(bob.Self().User) {
		if m.Text == "from the ghost" {
			t.Errorf("alice shows the ghost's message %+v", m)
		}
	}
}

func chatContent(text string) *pb.Content {
	return &pb.Content{Kind: &pb.Content_Chat{Chat: &pb.Chat{Text: text, SentUnixMs: time.Now().UnixMilli()}}}
}
