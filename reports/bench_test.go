package reports

import (
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRecordAndCheck records 1e5 messages, each sent and decrypted on
// one device, then checks the ledger and derives latencies: the cost a load
// run pays per 100k messages.
func BenchmarkRecordAndCheck(b *testing.B) {
	const n = 100_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "3EB0" + strconv.Itoa(1_000_000+i)
	}
	to := []string{"bob/web-1"}
	d := DigestOf([]byte("hello"))
	b.ReportAllocs()
	for b.Loop() {
		rec := NewRecorder()
		for _, id := range ids {
			rec.Send("alice/phone", id, "chat:bob", to, d)
			rec.Decrypted("bob/web-1", id, d)
		}
		r := New(rec, Config{})
		if r.Ledger.Totals.Delivered != n || r.Ledger.Totals.Problems() != 0 {
			b.Fatalf("ledger: %+v", r.Ledger.Totals)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(2*n), "ns/event")
}

// recordConversation records n messages from alice/phone, each to d
// devices of bob, acked and decrypted on every one (2+d events a message),
// polling the ledger every pollEvery messages if poll is set.
func recordConversation(rec *Recorder, ids []string, to []string, poll func()) {
	dg := DigestOf([]byte("hello"))
	for i, id := range ids {
		rec.Send("alice/phone", id, "chat:bob", to, dg)
		rec.Ack("alice/phone", id)
		for _, dev := range to {
			rec.Decrypted(dev, id, dg)
		}
		if poll != nil && i%pollEvery == pollEvery-1 {
			poll()
		}
	}
}

// pollEvery is how often (in messages) the ledger benchmarks read the
// ledger: a live view polling once a second at 1,000 msg/s.
const pollEvery = 1000

// benchLedger runs one scale benchmark: n messages to d devices recorded
// into newRec's recorder, the ledger polled every pollEvery messages, then
// the report. It reports the cost per event and the live heap once every
// message is recorded (after a GC), before the report is built.
func benchLedger(b *testing.B, n, d int, newRec func() *Recorder, poll func(*Recorder)) {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "3EB0" + strconv.Itoa(10_000_000+i)
	}
	to := make([]string, d)
	for i := range to {
		to[i] = "bob/web-" + strconv.Itoa(i+1)
	}
	var before, after runtime.MemStats
	var heap uint64
	cpu0 := cpuTime()
	b.ReportAllocs()
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		rec := newRec()
		recordConversation(rec, ids, to, func() { poll(rec) })
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = max(heap, after.HeapAlloc-min(before.HeapAlloc, after.HeapAlloc))
		r := New(rec, Config{})
		if r.Ledger.Totals.Delivered != n*d || r.Ledger.Totals.Problems() != 0 {
			b.Fatalf("ledger: %+v", r.Ledger.Totals)
		}
	}
	events := float64(n * (2 + d))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/events, "ns/event")
	// CPU time as well as wall time: on a shared machine the process may
	// wait for a core most of the wall time.
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N)/events, "cpu-ns/event")
	b.ReportMetric(float64(heap)/(1<<20), "live-MiB")
	b.ReportMetric(float64(heap)/float64(n), "live-B/msg")
}

type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) next() int64 { return c.n.Add(1) }

// cpuTime is the CPU time (user and system) this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru) // cannot fail for RUSAGE_SELF
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
