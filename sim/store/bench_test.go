package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
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

// BenchmarkEnqueueManyQueues measures what a relay's sends cost the store
// as the number of registered devices grows. Writers each enqueue one item
// for a random device with a random sender's message id (what a Send
// enqueues), then ack it as the device would, so queues stay short as in a
// live run. Per commit it reports how many records it carried, how many
// writes and KiB it made (bbolt's page writes, the process's bytes written)
// and how long bbolt spent writing and syncing; fsyncs are two per commit.
func BenchmarkEnqueueManyQueues(b *testing.B) {
	for _, devices := range []int{100, 19_000} {
		b.Run(fmt.Sprintf("devices=%d", devices), func(b *testing.B) {
			registered := registeredStore(b, devices)
			for _, writers := range []int{64, 256} {
				b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
					s := openCopy(b, registered)
					before, wrote, cpu := s.db.Stats(), bytesWritten(b), cpuTime()
					commits := s.CommitStats().Commits
					b.ResetTimer()
					start := time.Now()
					sendAndAck(b, s, devices, writers, b.N)
					elapsed := time.Since(start)
					b.StopTimer()
					after := s.db.Stats()
					tx := after.TxStats.Sub(&before.TxStats)
					n, perCommit := float64(b.N), float64(max(s.CommitStats().Commits-commits, 1))
					b.ReportMetric(n/elapsed.Seconds(), "records/s")
					b.ReportMetric(n/perCommit, "records/commit")
					b.ReportMetric(float64(tx.GetWrite())/perCommit, "writes/commit")
					b.ReportMetric(float64(bytesWritten(b)-wrote)/1024/perCommit, "KiB/commit")
					b.ReportMetric(float64(tx.GetWriteTime().Microseconds())/1000/perCommit, "ms-write+sync/commit")
					b.ReportMetric(2*perCommit/n, "fsyncs/record")
					b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/n, "cpu-µs/record")
				})
			}
		})
	}
}

// registeredStore makes a store of n accounts (a phone each) and returns
// its directory, closed, to be copied by openCopy.
func registeredStore(b *testing.B, n int) string {
	dir := b.TempDir()
	s, err := OpenBolt(filepath.Join(dir, "relay.db"), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		d := device(benchUser(i), 0, 0)
		d.NoiseKey = binary.BigEndian.AppendUint64(bytes.Repeat([]byte{1}, 24), uint64(i))
		if err := s.CreateAccount(Account{User: d.User}, d, prekeys(1, 3)); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	return dir
}

func benchUser(i int) string { return fmt.Sprintf("+1%09d", i) }

// openCopy opens a synced copy of the store in dir, with the relay's
// default limits.
func openCopy(b *testing.B, dir string) *Bolt {
	to := b.TempDir()
	files, err := filepath.Glob(filepath.Join(dir, "*.db"))
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err == nil {
			err = os.WriteFile(filepath.Join(to, filepath.Base(f)), data, 0o600)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	s, err := OpenBolt(filepath.Join(to, "relay.db"), Options{MaxQueuedBytes: 64 << 20, DedupWindow: 10_000, DedupAge: 7 * 24 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// sendAndAck has writers enqueue n items between random devices of the
// first devices accounts, each acked by its recipient once committed.
func sendAndAck(b *testing.B, s *Bolt, devices, writers, n int) {
	ciphertext := bytes.Repeat([]byte{7}, 200)
	rngs := make([]*rand.Rand, writers)
	for w := range rngs {
		rngs[w] = rand.New(rand.NewPCG(uint64(w), 1))
	}
	err := inParallel(writers, n, func(w, i int) error {
		from := Address{User: benchUser(rngs[w].IntN(devices))}
		to := Address{User: benchUser(rngs[w].IntN(devices))}
		id := fmt.Sprint(i)
		d := &pb.Delivery{ServerUnixMs: 1, From: &pb.Address{User: from.User},
			Item: &pb.Delivery_Message{Message: &pb.Message{MessageId: id, Ciphertext: ciphertext}}}
		res, err := s.Enqueue(Batch{Sender: from, MessageID: id, UnixMs: 1, Items: []Item{{To: to, Delivery: d}}})
		if err == nil {
			_, err = s.Ack(to, res.Seqs)
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

// bytesWritten is how many bytes the process has written so far
// (/proc/self/io's wchar: every write and pwrite, which here are bbolt's).
func bytesWritten(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no wchar in /proc/self/io")
	return 0
}

// cpuTime is the CPU time the process used so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
