package store

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkEnqueue measures durable enqueues (fsync'd, group commit) from
// concurrent writers, each enqueue one item for one device.
func BenchmarkEnqueue(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, _ := openTemp(b)
			mustAccount(b, s, "+1000000", 1)
			mustAccount(b, s, "+2000000", 2)
			b.ResetTimer()
			start := time.Now()
			enqueueConcurrently(b, s, writers, b.N)
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "enqueues/s")
		})
	}
}
