package reports

import (
	"strconv"
	"testing"
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
