package relay

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
)

func TestPairing(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{})
	alice := phone(t, s, "alice", "+15550100")

	web, ref := startPairing(t, s, "alice-web")
	if ref.GetIndex() != 1 || ref.GetCount() != 6 || len(ref.GetRef()) != 22 ||
		time.Until(time.UnixMilli(ref.GetExpiresUnixMs())) < 50*time.Second {
		t.Fatalf("first ref %v, want index 1 of 6, 22 characters, valid about 60s", ref)
	}
	adv := advSecret()
	scan := alice.scan(web, ref.GetRef(), adv, 1)
	if l := web.finish(adv); l.GetUser() != "+15550100" || l.GetDevice() != 1 {
		t.Fatalf("companion linked as %v", l)
	}
	if l := alice.wait(scan).GetLinked(); l.GetDevice() != 1 {
		t.Fatalf("phone's scan answered %v", l)
	}
	for _, c := range []*client{alice, web} {
		l := c.push("devices_changed").GetDevicesChanged().GetList()
		if !slices.Equal(l.GetDevices(), []uint32{0, 1}) || l.GetHash() != listHash("+15550100", []uint32{0, 1}) {
			t.Fatalf("%s: DevicesChanged %v", c.name, l)
		}
	}
	if w := web.hello(); w.GetUser() != "+15550100" || w.GetDevice() != 1 || w.GetPrekeysLeft() != 20 {
		t.Fatalf("companion's welcome %v", w)
	}
	// The companion is a device now, and its key authenticates it later.
	web.hangUp()
	again := web.twin()
	again.connect(s)
	if w := again.hello(); w.GetDevice() != 1 {
		t.Fatalf("companion's welcome after reconnecting: %v", w)
	}
	// Replaying the scan.
	alice.fails(frame(&pb.PairScan{Ref: ref.GetRef()}), pb.ErrorCode_REF_USED)
	// Only the phone scans.
	again.fails(frame(&pb.PairScan{Ref: ref.GetRef()}), pb.ErrorCode_NOT_PRIMARY)
}

func TestTooManyCompanions(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{})
	alice := phone(t, s, "alice", "+15550100")
	for i := range 4 {
		link(t, s, alice, "web"+string(rune('1'+i)))
	}
	web, ref := startPairing(t, s, "web5")
	id := alice.scan(web, ref.GetRef(), advSecret(), alice.nextK)
	if got := alice.wait(id).GetError().GetCode(); got != pb.ErrorCode_TOO_MANY_DEVICES {
		t.Fatalf("5th companion: %v, want TOO_MANY_DEVICES", got)
	}
}

func TestPairingErrors(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{})
	alice := phone(t, s, "alice", "+15550100")
	scanFails := func(id uint64, want pb.ErrorCode) {
		t.Helper()
		if got := alice.wait(id).GetError(); got.GetCode() != want {
			t.Fatalf("scan answered %v, want %v", got, want)
		}
	}

	web, ref := startPairing(t, s, "web")
	adv := advSecret()

	scanFails(alice.scan(web, "AAAAAAAAAAAAAAAAAAAAAA", adv, 1), pb.ErrorCode_REF_UNKNOWN)

	// KEY_MISMATCH: the QR code names another Noise key.
	other := newClient(t, "other")
	other.keys = web.keys
	scanFails(alice.scan(other, ref.GetRef(), adv, 1), pb.ErrorCode_KEY_MISMATCH)

	// BAD_SIGNATURE: signed by a key that is not the phone's.
	mallory := newClient(t, "mallory")
	mallory.user = alice.user
	scanFails(mallory.withConn(alice).scan(web, ref.GetRef(), adv, 1), pb.ErrorCode_BAD_SIGNATURE)

	// BAD_REQUEST: a key index the account used already, or for another user.
	scanFails(alice.scan(web, ref.GetRef(), adv, 0), pb.ErrorCode_BAD_REQUEST)
	bob := newClient(t, "bob")
	bob.user, bob.keys = "+15550199", alice.keys
	scanFails(bob.withConn(alice).scan(web, ref.GetRef(), adv, 1), pb.ErrorCode_BAD_REQUEST)

	// HMAC_MISMATCH: the phone did not read this QR code's secret. The
	// companion rejects; the ref is used; the companion gets a new ref.
	scan := alice.scan(web, ref.GetRef(), advSecret(), 1)
	o := web.push("pair_offer").GetPairOffer()
	_, _, err := e2e.OpenDeviceIdentity(o.GetIdentity(), adv, web.keys.IdentityKey(), o.GetAccountIdentityKey())
	if err == nil {
		t.Fatal("companion accepted an identity made with another adv secret")
	}
	web.ok(frame(&pb.PairReject{Ref: o.GetRef(), Code: pb.ErrorCode_HMAC_MISMATCH, Message: err.Error()}), "ok")
	scanFails(scan, pb.ErrorCode_HMAC_MISMATCH)
	alice.fails(frame(&pb.PairScan{Ref: ref.GetRef()}), pb.ErrorCode_REF_USED)
	ref2 := web.push("pair_ref").GetPairRef()
	if ref2.GetIndex() != 2 {
		t.Fatalf("ref after a reject: %v, want index 2", ref2)
	}

	// A reject with a code the protocol does not know still ends the scan
	// at once, rather than at PAIR_TIMEOUT.
	scan = alice.scan(web, ref2.GetRef(), adv, 1)
	o = web.push("pair_offer").GetPairOffer()
	web.fails(frame(&pb.PairReject{Ref: o.GetRef(), Code: pb.ErrorCode_INTERNAL}), pb.ErrorCode_BAD_REQUEST)
	scanFails(scan, pb.ErrorCode_BAD_REQUEST)
	ref3 := web.push("pair_ref").GetPairRef()

	// After all that, pairing still works with the current ref.
	scan = alice.scan(web, ref3.GetRef(), adv, 1)
	web.finish(adv)
	if l := alice.wait(scan).GetLinked(); l.GetDevice() != 1 {
		t.Fatalf("scan after failures: %v", l)
	}
}

// TestPairTimeout: a companion that does not answer an offer, or goes away,
// fails the scan with PAIR_TIMEOUT and gets the next ref.
func TestPairTimeout(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{PairTimeout: 300 * time.Millisecond})
	alice := phone(t, s, "alice", "+15550100")
	web, ref := startPairing(t, s, "web")
	adv := advSecret()
	scan := alice.scan(web, ref.GetRef(), adv, 1)
	web.push("pair_offer")
	if got := alice.wait(scan).GetError().GetCode(); got != pb.ErrorCode_PAIR_TIMEOUT {
		t.Fatalf("unanswered offer: %v, want PAIR_TIMEOUT", got)
	}
	ref2 := web.push("pair_ref").GetPairRef()
	if ref2.GetIndex() != 2 {
		t.Fatalf("ref after a timeout: %v, want index 2", ref2)
	}
	// A late answer to the timed-out offer.
	web.fails(frame(&pb.PairReject{Ref: ref.GetRef(), Code: pb.ErrorCode_HMAC_MISMATCH}), pb.ErrorCode_REF_EXPIRED)

	// The companion disconnects while its offer waits.
	scan = alice.scan(web, ref2.GetRef(), adv, 1)
	web.push("pair_offer")
	web.hangUp()
	if got := alice.wait(scan).GetError().GetCode(); got != pb.ErrorCode_PAIR_TIMEOUT {
		t.Fatalf("companion gone: %v, want PAIR_TIMEOUT", got)
	}
}

// withConn makes c send through another client's connection (a phone
// signing with the wrong identity key, or naming another user).
func (c *client) withConn(via *client) *client {
	c.wc, c.answers, c.pushes, c.ended, c.errp, c.stash = via.wc, via.answers, via.pushes, via.ended, via.errp, via.stash
	c.ids.Store(1 << 40) // far from via's own ids
	return c
}

func TestRefExpiry(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{RefCount: 3, RefFirstTTL: 300 * time.Millisecond, RefNextTTL: 150 * time.Millisecond})
	alice := phone(t, s, "alice", "+15550100")
	web, ref1 := startPairing(t, s, "web")
	ref2 := web.push("pair_ref").GetPairRef()
	if ref2.GetIndex() != 2 || ref2.GetRef() == ref1.GetRef() {
		t.Fatalf("second ref %v", ref2)
	}
	// Only the current ref is valid.
	alice.fails(frame(&pb.PairScan{Ref: ref1.GetRef()}), pb.ErrorCode_REF_EXPIRED)
	if ref3 := web.push("pair_ref").GetPairRef(); ref3.GetIndex() != 3 || ref3.GetCount() != 3 {
		t.Fatalf("third ref %v", ref3)
	}
	if pc := web.push("pair_closed").GetPairClosed(); pc.GetReason() != "expired" {
		t.Fatalf("PairClosed %v", pc)
	}
	web.closed()
	alice.fails(frame(&pb.PairScan{Ref: ref2.GetRef()}), pb.ErrorCode_REF_EXPIRED)
}

// A scan's sealed history reaches the companion as the phone sent it, and
// the phone hears whether the companion took it: only a scan that carried
// one can have its history taken. One over the limit is refused.
func TestPairingCarriesTheScansHistory(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{})
	alice := phone(t, s, "alice", "+15550100")
	sealed := bytes.Repeat([]byte{0xa5}, maxSealedHistory)
	tests := []struct {
		name                 string
		history              []byte
		companionTakes, want bool
	}{
		{"taken", sealed, true, true},
		{"not taken", sealed, false, false},
		{"none, yet the companion says taken", nil, true, false},
	}
	for _, tt := range tests {
		web, ref := startPairing(t, s, "web-"+tt.name)
		adv := advSecret()
		scan := alice.scanWithHistory(web, ref.GetRef(), adv, alice.nextK, tt.history)
		o := web.push("pair_offer").GetPairOffer()
		if !bytes.Equal(o.GetHistory(), tt.history) {
			t.Fatalf("%s: the offer carries %d bytes of history, the scan %d", tt.name, len(o.GetHistory()), len(tt.history))
		}
		f := web.finishOffer(o, adv)
		f.GetPairFinish().HistoryTaken = tt.companionTakes
		web.ok(f, "linked")
		l := alice.wait(scan).GetLinked()
		if l.GetDevice() != alice.nextK || l.GetHistoryTaken() != tt.want {
			t.Fatalf("%s: the phone's scan answered %v, want device %d with history taken %v", tt.name, l, alice.nextK, tt.want)
		}
		alice.nextK++
	}

	web, ref := startPairing(t, s, "web-oversized")
	scan := alice.scanWithHistory(web, ref.GetRef(), advSecret(), alice.nextK, append(sealed, 0))
	if got := alice.wait(scan).GetError(); got.GetCode() != pb.ErrorCode_BAD_REQUEST {
		t.Fatalf("a scan with %d bytes of history: %v, want BAD_REQUEST", len(sealed)+1, got)
	}
}
