package app

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/relay"
)

// A client whose device is opened elsewhere shows why and stays put, until
// the user takes it back with "use here".
func TestReplacedClientShowsWhyAndCanTakeOver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := relay.Serve(relay.Config{NoSync: true}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := kv.NewMem()
	cfg := device.Config{Name: "web", RelayURL: s.WSURL(), RelayKey: s.Key(), State: st}
	d, err := device.Register(ctx, cfg, "+15550100", "alice")
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	c := New(Config{Device: cfg})
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WaitLinked(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Device().WaitOnline(ctx); err != nil {
		t.Fatal(err)
	}
	other, err := device.Open(ctx, device.Config{Name: "other tab", RelayURL: s.WSURL(), RelayKey: s.Key(), State: st})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := waitFor(ctx, c, func() (bool, bool) { sc, _, _ := c.Screen(); return true, sc == ScreenReplaced }); err != nil {
		t.Fatal(err)
	}
	if _, _, why := c.Screen(); !errors.Is(why, device.ErrReplaced) {
		t.Errorf("replaced screen says %v, want ErrReplaced", why)
	}
	if err := c.UseHere(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-other.Done():
	case <-ctx.Done():
		t.Fatal("the other copy was not replaced after use here")
	}
	if sc, _, _ := c.Screen(); sc != ScreenLinked {
		t.Errorf("after use here the client shows %s, want linked", sc)
	}
}
