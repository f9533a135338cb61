package harness

import "github.com/linksim/linksim/sim/relay"

// InProcessRelay is the relay the harness runs in this process, for flows
// that make the relay itself act (add a ghost device, log a device out on
// its own). A flow run against another backend is skipped: nothing in the
// protocol lets a client make a relay do these. It returns nil if the skip
// does not stop the caller.
func (e *Env) InProcessRelay() *relay.Relay {
	e.t.Helper()
	b, ok := e.backend.(*embedded)
	if !ok {
		e.t.Skipf("NOT RUN: needs the relay in process (embedded backend), not %s", e.backend.Kind())
		return nil
	}
	return b.server().Relay()
}
