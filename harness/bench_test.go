package harness

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/linksim/linksim/reports"
)

// users registers n users, each with a phone and webs linked web clients.
func users(ctx context.Context, b *testing.B, env *Env, n, webs int) []*User {
	b.Helper()
	out := make([]*User, n)
	for i := range out {
		u, err := env.NewUser(ctx, fmt.Sprintf("user%03d", i), webs)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = u
	}
	return out
}

// BenchmarkSendToDecrypt measures send -> decrypted latency on every target
// device with 10 users of 2 devices each (20 native devices) sending to a
// partner at a fixed total rate of 100 messages/s. Reports p50 and p99.
func BenchmarkSendToDecrypt(b *testing.B) {
	const rate = 100 // messages per second, all senders together
	ctx := context.Background()
	rec := reports.NewRecorder()
	env := Start(b, Config{Recorder: rec})
	us := users(ctx, b, env, 10, 1)
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	b.ResetTimer()
	for i := range b.N {
		<-tick.C
		from, to := us[i%len(us)], us[(i+1)%len(us)]
		sender := from.Devices()[i/len(us)%2]
		if _, err := sender.SendText(ctx, to.Phone.Self().User, fmt.Sprintf("bench %d", i)); err != nil {
			b.Fatal(err)
		}
	}
	awaitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := Await(awaitCtx, "every benchmark message delivered", env.Check); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	r := reports.New(rec, reports.Config{})
	s := r.Metrics.Summary(reports.StepDeliver)
	b.ReportMetric(float64(s.P50)/1e6, "p50-ms")
	b.ReportMetric(float64(s.P99)/1e6, "p99-ms")
	b.ReportMetric(0, "ns/op") // paced by the ticker: ns/op says nothing
}

// BenchmarkIdleDeviceMemory measures the heap one connected, idle native
// device costs, relay side included (the relay runs in process): 100 users,
// each a phone and one linked web client.
func BenchmarkIdleDeviceMemory(b *testing.B) {
	const n = 100
	ctx := context.Background()
	for range b.N {
		env := Start(b, Config{})
		before := heap()
		us := users(ctx, b, env, n, 1)
		after := heap()
		b.ReportMetric(float64(after-before)/float64(2*n)/1024, "KiB/device")
		runtime.KeepAlive(us)
	}
}

func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
