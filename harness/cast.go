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
	Webs  []*app.Client
	// States are the web clients' states, kept so a client can be closed
	// and opened again as the same device.
	States []kv.KV
}

// Web returns the linked device of web client i (0-based).
func (u *User) Web(i int) *device.Device { return u.Webs[i].Device() }

// Devices returns the phone and every linked web client's device.
func (u *User) Devices() []*device.Device {
	out := []*device.Device{u.Phone.Device}
	for _, w := range u.Webs {
		if d := w.Device(); d != nil {
			out = append(out, d)
		}
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
func (e *Env) AddWeb(ctx context.Context, u *User) (*device.Device, error) {
	st := kv.NewMem()
	c, err := e.NewCompanion(fmt.Sprintf("%s/web-%d", u.Name, len(u.Webs)+1), st)
	if err != nil {
		return nil, err
	}
	d, err := e.Link(ctx, u.Phone, c)
	if err != nil {
		return nil, err
	}
	u.Webs = append(u.Webs, c)
	u.States = append(u.States, st)
	return d, nil
}

// Reopen closes web client i and starts it again on the same state, as a
// browser tab closed and opened later would.
func (e *Env) Reopen(ctx context.Context, u *User, i int) (*device.Device, error) {
	u.Webs[i].Close()
	c, err := e.NewCompanion(fmt.Sprintf("%s/web-%d", u.Name, i+1), u.States[i])
	if err != nil {
		return nil, err
	}
	u.Webs[i] = c
	return c.WaitLinked(ctx)
}

// CopyState snapshots a device's state, e.g. to try reconnecting as a
// device after it was removed.
func CopyState(src kv.KV) (kv.KV, error) {
	dst := kv.NewMem()
	err := src.Scan("", func(k string, v []byte) error { return dst.Put(k, v) })
	return dst, err
}
