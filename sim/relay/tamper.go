package relay

import (
	"fmt"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// AddGhost links a companion to user's account that its phone never
// scanned, with keys of the caller's choosing and identity as its signed
// device identity (nil for none): what a compromised relay could do to read
// a user's messages. It exists for security scenarios, which check that
// every sender refuses such a device (docs/protocol.md §16.2); no request
// of the protocol reaches it.
func (r *Relay) AddGhost(user string, noiseKey []byte, keys *pb.SignalKeys, identity []byte) (uint32, error) {
	a, err := r.st.Account(user)
	if err != nil {
		return 0, fmt.Errorf("relay: add ghost to %s: %w", user, err)
	}
	ghost := store.Address{User: user, Device: a.MaxDevice + 1}
	err = r.st.AddCompanion(store.Device{
		Address: ghost, NoiseKey: noiseKey, RegistrationID: keys.GetRegistrationId(),
		IdentityKey: keys.GetIdentityKey(), SignedPreKey: keys.GetSignedPrekey(),
		Identity: identity, Platform: "ghost", CreatedUnixMs: nowMs(),
	}, keys.GetPrekeys(), r.cfg.MaxCompanions)
	if err != nil {
		return 0, fmt.Errorf("relay: add ghost to %s: %w", user, err)
	}
	r.devicesChanged(user)
	return ghost.Device, nil
}
