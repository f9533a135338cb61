package harness

import (
	"context"
	"fmt"

	"github.com/linksim/linksim/phone"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/webclient/app"
)

// User is one account in a scenario: its phone and its native web clients.
type User struct {
	Name  string
	Phone *phone.Phone
	Webs  []WebClient
	// States are the web clients' states, kept so a client can be closed
	// and opened again as the same device.
	States []kv.KV
}

// Web returns web client i (0-based).
func (u *User) Web(i int) WebClient { return u.Webs[i] }

// Device returns the linked device of multi-device web client i, for flows
// that look inside a device (its sessions, its device list); nil when the
// client is not linked or is not a multi-device companion.
func (u *User) Device(i int) *device.Device {
	if w, ok := u.Webs[i].(*multiDeviceWeb); ok {
		return w.Device()
	}
	return nil
}

// Devices returns the phone and every linked multi-device web client's
// device.
func (u *User) Devices() []*device.Device {
	out := []*device.Device{u.Phone.Device}
	for i := range u.Webs {
		if d := u.Device(i); d != nil {
			out = append(out, d)
		}
	}
	return out
}

// Clients returns the phone and every web client, whatever its topology.
func (u *User) Clients() []Client {
	out := []Client{u.Phone.Device}
	for _, w := range u.Webs {
		out = append(out, w)
	}
	return out
}

// NewUser registers name with a phone and links webs native web clients,
// named name/web-1, name/web-2, ...
func (e *Env) NewUser(ctx context.Context, name string, webs int) (*User, error) {
	p, err := e.NewPhone(ctx, name, nil)
	if err != nil {
		return nil, err
	}
	u := &User{Name: name, Phone: p}
	for range webs {
		if _, err := e.AddWeb(ctx, u); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// AddWeb links one more native web client to u.
func (e *Env) AddWeb(ctx context.Context, u *User) (WebClient, error) {
	st := kv.NewMem()
	w, err := e.openWeb(ctx, fmt.Sprintf("%s/web-%d", u.Name, len(u.Webs)+1), st, u.Phone)
	if err != nil {
		return nil, err
	}
	u.Webs = append(u.Webs, w)
	u.States = append(u.States, st)
	return w, nil
}

// openWeb starts a web client named name on state st and links it to p
// when st holds no link yet.
func (e *Env) openWeb(ctx context.Context, name string, st kv.KV, p *phone.Phone) (WebClient, error) {
	if e.cfg.WebClient != nil {
		return e.cfg.WebClient(ctx, e, name, st, p)
	}
	if e.Topology() == Mirror {
		return e.openMirror(ctx, name, st, p)
	}
	c, err := e.OpenCompanion(ctx, name, st, p)
	if err != nil {
		return nil, err
	}
	return &multiDeviceWeb{Client: c, name: name}, nil
}

// OpenCompanion starts a native multi-device web client (webclient/app)
// named name on state st, and links it to p unless st holds a link.
func (e *Env) OpenCompanion(ctx context.Context, name string, st kv.KV, p *phone.Phone) (*app.Client, error) {
	c, err := e.NewCompanion(name, st)
	if err != nil {
		return nil, err
	}
	if c.Device() == nil {
		if _, err := e.Link(ctx, p, c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Topology is how this Env links web clients: MultiDevice or Mirror.
func (e *Env) Topology() string {
	if e.cfg.Topology == "" {
		return MultiDevice
	}
	return e.cfg.Topology
}

// Reopen closes web client i and starts it again on the same state, as a
// browser tab closed and opened later would.
func (e *Env) Reopen(ctx context.Context, u *User, i int) (WebClient, error) {
	u.Webs[i].Close()
	w, err := e.openWeb(ctx, fmt.Sprintf("%s/web-%d", u.Name, i+1), u.States[i], u.Phone)
	if err != nil {
		return nil, err
	}
	u.Webs[i] = w
	return w, nil
}

// CopyState snapshots a device's state, e.g. to try reconnecting as a
// device after it was removed.
func CopyState(src kv.KV) (kv.KV, error) {
	dst := kv.NewMem()
	err := src.Scan("", func(k string, v []byte) error { return dst.Put(k, v) })
	return dst, err
}
