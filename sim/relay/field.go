package relay

import (
	"errors"
	"fmt"

	"github.com/linksim/linksim/sim/route"
	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// FieldConfig turns on behaviours that real relays show clients in the
// field, so scenarios can check that clients survive them
// (docs/protocol.md §16.4).
type FieldConfig struct {
	// RestartAfterPairing closes a companion's connection right after it
	// is linked, with reason "restart required", as WhatsApp's servers do:
	// the device must connect again, at once, as the linked device.
	RestartAfterPairing bool
	// MinClientVersion refuses Hello from a device whose client_version is
	// below it with CLIENT_OUTDATED, then closes the connection with reason
	// "client outdated". 0 accepts every version.
	MinClientVersion uint32
}

// Close reasons of the field behaviours.
const (
	closeRestartRequired = "restart required"
	closeClientOutdated  = "client outdated"
)

// restartAfterPairing closes a just-linked companion's connection when the
// relay is configured to; the Linked answer goes out first.
func (c *conn) restartAfterPairing() {
	if c.r.cfg.Field.RestartAfterPairing {
		c.logger().Info("asking the new companion to reconnect")
		c.shutdown(closeRestartRequired, nil)
	}
}

// refuseOutdated answers a Hello from a client older than the relay
// accepts with CLIENT_OUTDATED and closes the connection; it reports
// whether it did.
func (c *conn) refuseOutdated(id uint64, h *pb.Hello) bool {
	least := c.r.cfg.Field.MinClientVersion
	if h.GetClientVersion() >= least {
		return false
	}
	c.logger().Info("refusing an outdated client", "version", h.GetClientVersion(), "least", least)
	c.answer(id, errFrame(id, pb.ErrorCode_CLIENT_OUTDATED,
		fmt.Sprintf("client version %d is no longer supported; update to version %d or later", h.GetClientVersion(), least)))
	c.shutdown(closeClientOutdated, nil)
	return true
}

// Logout removes device a on the relay's own initiative (an operator, an
// abuse system, an expired session) rather than the user's: the device is
// pushed LoggedOut{reason}, disconnected, refused from then on, and its
// account's devices are told the new list.
func (r *Relay) Logout(a store.Address, reason string) error {
	if a.Device == 0 {
		return errors.New("relay: logout: the phone owns the account and cannot be logged out")
	}
	removed, err := r.st.RemoveDevices(a.User, []uint32{a.Device})
	if err != nil {
		return fmt.Errorf("relay: logout %s: %w", a, err)
	}
	if len(removed) == 0 {
		return fmt.Errorf("relay: logout %s: %w", a, store.ErrNotFound)
	}
	r.pushTo(a, route.LoggedOut, loggedOut(reason))
	r.devicesChanged(a.User)
	return nil
}
