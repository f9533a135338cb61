package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/linksim/linksim/sim/wire/pb"
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

// BenchmarkRegister measures registrations (CreateAccount, each with its
// one-time prekeys, 33-byte public keys as devices make them) from 64
// concurrent registrants on a synced store, and the disk each device then
// takes (every file of the store, after Close).
func BenchmarkRegister(b *testing.B) {
	for _, n := range []uint32{16, 100} {
		b.Run(fmt.Sprintf("prekeys=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			s, err := OpenBolt(filepath.Join(dir, "relay.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			var keys []*pb.PreKey
			for id := range n {
				keys = append(keys, &pb.PreKey{Id: id + 1, PublicKey: bytes.Repeat([]byte{5}, 33)})
			}
			const writers = 64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Go(func() {
					for i := w; i < b.N; i += writers {
						d := device(fmt.Sprintf("+1%09d", i), 0, 0)
						d.NoiseKey = binary.BigEndian.AppendUint64(bytes.Repeat([]byte{1}, 24), uint64(i))
						if err := s.CreateAccount(Account{User: d.User}, d, keys); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			s.Close()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "registrations/s")
			b.ReportMetric(float64(storeSize(b, dir))/1024/float64(b.N), "disk-KiB/device")
		})
	}
}

// storeSize adds up the pages in use (up to the highest) of every bbolt
// file in dir: file sizes grow in steps, so they would hide the difference.
func storeSize(b *testing.B, dir string) int64 {
	files, err := filepath.Glob(filepath.Join(dir, "*.db"))
	if err != nil {
		b.Fatal(err)
	}
	var size int64
	for _, f := range files {
		db, err := bolt.Open(f, 0o600, &bolt.Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		db.View(func(tx *bolt.Tx) error {
			size += tx.Size()
			return nil
		})
		db.Close()
	}
	return size
}
