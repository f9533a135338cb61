package device

import (
	"errors"
	"testing"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/wire/pb"
)

func phoneBundle(t *testing.T, user string, list *pb.KeyIndexList) *pb.Bundle {
	t.Helper()
	phone, err := e2e.Open(kv.NewMem())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := phone.Keys(1)
	if err != nil {
		t.Fatal(err)
	}
	b := &pb.Bundle{Address: &pb.Address{User: user}, RegistrationId: keys.RegistrationId, IdentityKey: keys.IdentityKey,
		SignedPrekey: keys.SignedPrekey, Prekey: keys.Prekeys[0]}
	if list != nil {
		if b.KeyIndexList, err = e2e.SignKeyIndexList(phone, list); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func TestBundleWithoutSignedListIsRefused(t *testing.T) {
	sig, err := e2e.Open(kv.NewMem())
	if err != nil {
		t.Fatal(err)
	}
	d := &Device{cfg: Config{State: kv.NewMem(), Events: func(Event) {}}, sig: sig, self: e2e.Address{User: "+15550100"}}
	if _, err := d.checkBundle(phoneBundle(t, "+15550101", nil)); !errors.Is(err, ErrUntrustedDevice) || !errors.Is(err, e2e.ErrNoKeyIndexList) {
		t.Errorf("bundle without a signed list: %v, want ErrUntrustedDevice and ErrNoKeyIndexList", err)
	}
	if _, err := d.checkBundle(phoneBundle(t, "+15550101", &pb.KeyIndexList{User: "+15550199"})); !errors.Is(err, ErrUntrustedDevice) {
		t.Errorf("bundle with another user's list: %v, want ErrUntrustedDevice", err)
	}
	if changed, err := d.checkBundle(phoneBundle(t, "+15550101", &pb.KeyIndexList{User: "+15550101"})); err != nil || changed {
		t.Errorf("first bundle with a signed list: changed %v, %v; want accepted and pinned", changed, err)
	}
	// A reinstalled phone: another key, its own valid list.
	if changed, err := d.checkBundle(phoneBundle(t, "+15550101", &pb.KeyIndexList{User: "+15550101"})); err != nil || !changed {
		t.Errorf("bundle with a new account key: changed %v, %v; want an identity change", changed, err)
	}
}
