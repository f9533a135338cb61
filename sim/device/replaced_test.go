package device

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/kv"
)

// Two devices opened on one key replace each other at the relay: the one
// replaced stops for good and says why, instead of taking the link back (and
// being replaced again, hundreds of times a second).
func TestReplacedIsFinal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := startRelay(t)
	st := kv.NewMem()
	var replaced atomic.Int32
	cfg := Config{Name: "first", RelayURL: s.WSURL(), RelayKey: s.Key(), State: st,
		BackoffBase: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
		Events: func(e Event) {
			if e.Kind == Replaced {
				replaced.Add(1)
			}
		}}
	first, err := Register(ctx, cfg, "+15550100", "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if err := first.WaitOnline(ctx); err != nil {
		t.Fatal(err)
	}
	var secondConnects atomic.Int32
	cfg.Name = "second"
	cfg.Events = func(e Event) {
		if e.Kind == Connected {
			secondConnects.Add(1)
		}
	}
	second, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	select {
	case <-first.Done():
	case <-ctx.Done():
		t.Fatal("the replaced device never stopped: it keeps reconnecting")
	}
	if !errors.Is(first.Err(), ErrReplaced) {
		t.Errorf("replaced device stopped with %v, want ErrReplaced", first.Err())
	}
	if n := replaced.Load(); n != 1 {
		t.Errorf("replaced device reported %d Replaced events, want 1", n)
	}
	if err := second.WaitOnline(ctx); err != nil {
		t.Fatal(err)
	}
	// The Connected event may reach OnEvent just after WaitOnline returns.
	for secondConnects.Load() == 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	if n := secondConnects.Load(); n != 1 {
		t.Errorf("the device that took over connected %d times, want 1", n)
	}
}
