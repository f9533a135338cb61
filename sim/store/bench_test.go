package store

import (
	"fmt"
	"sync"
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
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Go(func() {
					for i := w; i < b.N; i += writers {
						id := fmt.Sprint(i)
						_, err := s.Enqueue(Batch{Sender: Address{"+1000000", 0}, MessageID: id,
							Items: []Item{{To: Address{"+2000000", 0}, Delivery: msg(id)}}})
						if err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "enqueues/s")
		})
	}
}
