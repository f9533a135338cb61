package relay

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/wire"
	"github.com/linksim/linksim/sim/wire/pb"
)

// BenchmarkIdleDevices measures what a connected idle device costs the
// relay: a relay in a child process (so that its figures are its own),
// devices-many phones registered and past Hello, then nothing. It reports
// the relay's growth in RSS (and its anonymous part), heap in use,
// goroutine stacks and goroutines per device.
func BenchmarkIdleDevices(b *testing.B) {
	for _, devices := range []int{5000} {
		b.Run(fmt.Sprintf("devices=%d", devices), func(b *testing.B) {
			for range b.N {
				benchIdleDevices(b, devices)
			}
		})
	}
}

func benchIdleDevices(b *testing.B, devices int) {
	// Connecting takes minutes on a busy machine: no device may be closed
	// as idle before the figures are read.
	r := startChild(b, Config{IdleTimeout: time.Hour})
	// The relay checks a device's Signal keys, not that they are its own:
	// one set serves every device, and the client side stays light.
	keyStore, err := e2e.Open(kv.NewMem())
	if err != nil {
		b.Fatal(err)
	}
	keys, err := keyStore.Keys(16)
	if err != nil {
		b.Fatal(err)
	}
	conns := make([]*wire.Conn, devices)
	connect := func(i int) error {
		nk, err := wire.GenerateKey()
		if err != nil {
			return err
		}
		wc, err := wire.Dial(context.Background(), r.WSURL(), nk, r.Key())
		if err != nil {
			return err
		}
		conns[i] = wc
		for _, f := range []*pb.Frame{
			{Id: 1, Body: &pb.Frame_Register{Register: &pb.Register{User: fmt.Sprintf("+1777%07d", i), Keys: keys}}},
			{Id: 2, Body: &pb.Frame_Hello{Hello: &pb.Hello{}}},
		} {
			if err := wc.WriteFrame(context.Background(), f); err != nil {
				return err
			}
			a, err := wc.ReadFrame(context.Background())
			if err != nil {
				return err
			}
			if a.GetError() != nil {
				return fmt.Errorf("device %d: %v", i, a.GetError())
			}
		}
		return nil
	}
	settle := func() (usage, float64, float64, float64) {
		r.gc(b)
		return r.usage(b), metric(b, r, "go_memstats_heap_inuse_bytes"),
			metric(b, r, "go_memstats_stack_inuse_bytes"), metric(b, r, "go_goroutines")
	}
	u0, heap0, stack0, g0 := settle()
	inParallel(b, 16, devices, func(_, i int) error { return connect(i) })
	b.Cleanup(func() {
		for _, wc := range conns {
			wc.CloseNow()
		}
	})
	u1, heap1, stack1, g1 := settle()
	if open := metric(b, r, "linksim_relay_connections"); open != float64(devices) {
		b.Fatalf("%v connections open, want %d: the figures would not be per device", open, devices)
	}
	n := float64(devices)
	b.ReportMetric((u1.RSSMiB-u0.RSSMiB)*1024/n, "rss-KiB/device")
	b.ReportMetric((u1.AnonMiB-u0.AnonMiB)*1024/n, "anon-KiB/device")
	b.ReportMetric((heap1-heap0)/1024/n, "heap-KiB/device")
	b.ReportMetric((stack1-stack0)/1024/n, "stack-KiB/device")
	b.ReportMetric((g1-g0)/n, "goroutines/device")
	b.Logf("%d idle devices: %v -> %v; heap %.1f -> %.1f MiB; goroutines %.0f -> %.0f",
		devices, u0, u1, heap0/(1<<20), heap1/(1<<20), g0, g1)
}
