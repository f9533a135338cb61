package driver

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkReadQR reads a code that has just appeared on the fake app (the
// expired screen, then reload), as LinkBrowser reads one once WaitScreen
// saw the QR screen, and reports the p50 of the screenshot (capture-p50-ms:
// asked -> PNG back) beside the p50 of a trivial DevTools call to the same
// page (roundtrip-p50-ms). The screenshot waits for a new frame, paced at 60 Hz
// by the compositor: ~50x the round trip on a 2-core machine, whatever the
// image format or encoder options.
func BenchmarkReadQR(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	p := openFakeApp(ctx, b, "bench/web-1")
	var shots, trips []time.Duration
	for range b.N {
		if _, err := eval[any](ctx, p, "test hook", "expire()"); err != nil {
			b.Fatal(err)
		}
		if err := p.ReloadQR(ctx); err != nil {
			b.Fatal(err)
		}
		if err := p.WaitScreen(ctx, ScreenQR); err != nil {
			b.Fatal(err)
		}
		q, err := p.ReadQR(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if q.Payload != payload || q.Attempts != 1 {
			b.Fatalf("read %q in %d screenshots, want %q in one", q.Payload, q.Attempts, payload)
		}
		start := time.Now()
		if _, err := eval[int](ctx, p, "round trip", "1"); err != nil {
			b.Fatal(err)
		}
		trips = append(trips, time.Since(start))
		shots = append(shots, q.Shot.Sub(q.Asked))
	}
	shot, trip := median(shots), median(trips)
	b.ReportMetric(float64(shot.Microseconds())/1000, "capture-p50-ms")
	b.ReportMetric(float64(trip.Microseconds())/1000, "roundtrip-p50-ms")
	b.ReportMetric(float64(shot)/float64(trip), "capture-x-roundtrip")
}

func median(ds []time.Duration) time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2]
}
