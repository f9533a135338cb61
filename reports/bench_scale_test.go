package reports

import (
	"flag"
	"fmt"
	"testing"
	"time"
)

// ledgerBig adds the long sizes, which take minutes (make bench runs
// without them): go test -run '^$' -bench Ledger ./reports -args -ledger.big
var ledgerBig = flag.Bool("ledger.big", false, "also run the ledger benchmarks at 100,000 kept and 300,000 and 1,000,000 streamed messages")

// ledgerScales are the run sizes the scale benchmarks grow through; more
// are the streamed-only ones.
func ledgerScales(more ...int) []int {
	if !*ledgerBig {
		return []int{10_000, 30_000}
	}
	return append([]int{10_000, 30_000, 100_000}, more...)
}

// BenchmarkLedgerKeep is the ledger as linksim run uses it (and as load
// used it): every event kept, the whole ledger checked on each poll and at
// the end. Its cost per event grows with the run, and so does its heap.
func BenchmarkLedgerKeep(b *testing.B) {
	for _, n := range ledgerScales() {
		b.Run(fmt.Sprintf("msgs=%d", n), func(b *testing.B) {
			benchLedger(b, n, 2, NewRecorder, func(rec *Recorder) { _ = Check(rec.Events(), LedgerConfig{}).Totals })
		})
	}
}

// BenchmarkLedgerStream is the streaming ledger: a poll reads counters, a
// message is forgotten Retain after every target had it. Retain is 10 ms
// here so that the benchmark's few seconds stand for a long run; the heap
// it holds is the recording rate times Retain, whatever the length.
func BenchmarkLedgerStream(b *testing.B) {
	cfg := LedgerConfig{LostAfter: 10 * time.Second, Retain: 10 * time.Millisecond}
	for _, n := range ledgerScales(300_000, 1_000_000) {
		b.Run(fmt.Sprintf("msgs=%d", n), func(b *testing.B) {
			benchLedger(b, n, 2, func() *Recorder { return NewStreamingRecorder(cfg) }, func(rec *Recorder) { _ = rec.Totals() })
		})
	}
}

// BenchmarkRecordParallel records from as many goroutines as there are
// cores (a message sent, acked and decrypted per op): the cost of the
// recording hot path under contention. The streaming recorder judges the
// events on the way; the one that keeps them judges nothing until New.
func BenchmarkRecordParallel(b *testing.B) {
	dg := DigestOf([]byte("hello"))
	for _, tc := range []struct {
		name string
		rec  func() *Recorder
	}{{"keep", NewRecorder}, {"stream", func() *Recorder {
		return NewStreamingRecorder(LedgerConfig{LostAfter: 10 * time.Second, Retain: 10 * time.Millisecond})
	}}} {
		b.Run(tc.name, func(b *testing.B) {
			rec := tc.rec()
			var dev atomicCounter
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				me := fmt.Sprintf("alice/web-%d", dev.next())
				to := []string{"bob/web-" + me[len(me)-1:]}
				for i := 0; pb.Next(); i++ {
					id := me + "-" + fmt.Sprint(i)
					rec.Send(me, id, "chat:bob", to, dg)
					rec.Ack(me, id)
					rec.Decrypted(to[0], id, dg)
				}
			})
		})
	}
}
