package relay

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire"
	"github.com/linksim/linksim/sim/wire/pb"
)

// BenchmarkSend measures durable Send throughput on a real data dir: parallel
// senders, each on its own connection and account, send to one recipient
// that acks every delivery. One op is one message committed (fsync'd, group
// commit), acked to its sender, pushed to the recipient and acked by it.
func BenchmarkSend(b *testing.B) {
	for _, senders := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			rig := newSendRig(b, senders)
			b.ResetTimer()
			perSec, msPerAck := rig.run(b, b.N)
			b.StopTimer()
			b.ReportMetric(perSec, "deliveries/s")
			b.ReportMetric(msPerAck, "ms/send-ack")
		})
	}
}

// BenchmarkDurableRatio puts the relay's durable deliveries/s next to what
// the store's group commit reaches on the same disk in the same run: the
// store alone, 64 writers each enqueueing what a send enqueues (one item
// for one recipient, with the sender's message id) from its own device,
// and the relay as BenchmarkSend with 64 senders. The two take turns in
// durableRounds rounds of b.N/durableRounds each, so that the load of a
// shared machine, which comes and goes, weighs on both alike; it reports
// the medians of the rounds. The target is a ratio of at least 0.5.
//
// It also measures bbolt's own group-commit limit: 64 writers each putting
// one 200-byte record per transaction through DB.Batch, 64 to a batch (the
// raw records a store does not add to), and the relay's ratio to it.
//
// Per phase it reports what a record cost: records per commit, KiB written
// per commit, fsyncs per record (bbolt syncs twice per commit: the pages,
// then the meta page) and the process's CPU time per record (relay and
// clients together in the relay phase).
func BenchmarkDurableRatio(b *testing.B) {
	const senders, rounds = 64, durableRounds
	raw := newRawRig(b, senders)
	st := newStoreRig(b, senders)
	rig := newSendRig(b, senders)
	relayStore := rig.relay.relay.st.(*store.Bolt)
	b.ResetTimer()
	var raws, stores, relays []phase
	var ratios, rawRatios []float64
	for r := range rounds {
		n := max(b.N/rounds, 1)
		raws = append(raws, measure(n, raw.commits, func() { raw.run(b, n) }))
		stores = append(stores, measure(n, st.st.CommitStats, func() { st.run(b, r*n, n) }))
		relays = append(relays, measure(n, relayStore.CommitStats, func() { rig.run(b, n) }))
		ratios = append(ratios, relays[r].perSec/stores[r].perSec)
		rawRatios = append(rawRatios, relays[r].perSec/raws[r].perSec)
	}
	b.StopTimer()
	for _, p := range []struct {
		name   string
		rounds []phase
	}{{"bbolt", raws}, {"store", stores}, {"relay", relays}} {
		b.ReportMetric(medianOf(p.rounds, func(x phase) float64 { return x.perSec }), p.name+"-records/s")
		b.ReportMetric(medianOf(p.rounds, func(x phase) float64 { return x.cpuPerRecord }), p.name+"-cpu-µs/record")
		b.Logf("%s: records/s %.0f, records/commit %.1f, KiB/commit %.0f, fsyncs/record %.3f, cpu µs/record %.0f (medians); records/s per round %.0f",
			p.name, medianOf(p.rounds, func(x phase) float64 { return x.perSec }),
			medianOf(p.rounds, func(x phase) float64 { return x.perCommit }),
			medianOf(p.rounds, func(x phase) float64 { return x.kibPerCommit }),
			medianOf(p.rounds, func(x phase) float64 { return x.syncsPerRecord }),
			medianOf(p.rounds, func(x phase) float64 { return x.cpuPerRecord }),
			mapped(p.rounds, func(x phase) float64 { return x.perSec }))
	}
	b.ReportMetric(median(ratios), "ratio")
	b.ReportMetric(median(rawRatios), "ratio-to-bbolt")
	b.Logf("relay / store %.3f, relay / bbolt %.3f (medians); per round %.2f, %.3f", median(ratios), median(rawRatios), ratios, rawRatios)
}

// phase is one round of one rig: its records/s, and what a record cost.
type phase struct {
	perSec, perCommit, kibPerCommit, syncsPerRecord, cpuPerRecord float64
}

// measure runs a round of n records and reads what it cost from the
// commit counts of its file (stats) and the process's CPU time.
func measure(n int, stats func() store.CommitStats, run func()) phase {
	before, cpu := stats(), cpuTime()
	start := time.Now()
	run()
	elapsed, cpu := time.Since(start), cpuTime()-cpu
	after := stats()
	commits := float64(max(after.Commits-before.Commits, 1))
	return phase{
		perSec:         float64(n) / elapsed.Seconds(),
		perCommit:      float64(n) / commits,
		kibPerCommit:   float64(after.Pages-before.Pages) * float64(os.Getpagesize()) / 1024 / commits,
		syncsPerRecord: 2 * commits / float64(n),
		cpuPerRecord:   float64(cpu.Microseconds()) / float64(n),
	}
}

// cpuTime is the CPU time the process used so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func mapped(xs []phase, f func(phase) float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

func medianOf(xs []phase, f func(phase) float64) float64 { return median(mapped(xs, f)) }

// rawRig is a bare synced bbolt file taking records through DB.Batch.
type rawRig struct {
	db      *bolt.DB
	writers int
	next    atomic.Uint64
}

func newRawRig(b *testing.B, writers int) *rawRig {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	// A batch commits once every writer joined it (or after 10 ms):
	// full groups, as in a steady state.
	db.MaxBatchSize, db.MaxBatchDelay = writers, 10*time.Millisecond
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("r")); return err }); err != nil {
		b.Fatal(err)
	}
	return &rawRig{db: db, writers: writers}
}

// run puts n records.
func (r *rawRig) run(b *testing.B, n int) {
	value := make([]byte, 200)
	inParallel(b, r.writers, n, func(_, _ int) error {
		key := binary.BigEndian.AppendUint64(nil, r.next.Add(1))
		return r.db.Batch(func(tx *bolt.Tx) error { return tx.Bucket([]byte("r")).Put(key, value) })
	})
}

// commits counts the file's commits by its transaction id, which each
// commit raises by one, and its pages written.
func (r *rawRig) commits() store.CommitStats {
	var id int
	r.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
	st := r.db.Stats()
	return store.CommitStats{Commits: int64(id), Pages: st.TxStats.GetWrite()}
}

const durableRounds = 5

func median(xs []float64) float64 {
	xs = slices.Sorted(slices.Values(xs))
	return xs[len(xs)/2]
}

// storeRig is a synced store with a recipient and writers sender devices.
type storeRig struct {
	st      *store.Bolt
	to      store.Address
	writers int
}

func newStoreRig(b *testing.B, writers int) *storeRig {
	st, err := store.OpenBolt(filepath.Join(b.TempDir(), "relay.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	rig := &storeRig{st: st, to: store.Address{User: "+15550200"}, writers: writers}
	for i := range writers + 1 {
		user := rig.to.User
		if i < writers {
			user = rig.sender(i).User
		}
		d := store.Device{Address: store.Address{User: user}, NoiseKey: bytes.Repeat([]byte{byte(i)}, 32), SignedPreKey: &pb.SignedPreKey{}}
		if err := st.CreateAccount(store.Account{User: user}, d, nil); err != nil {
			b.Fatal(err)
		}
	}
	return rig
}

func (r *storeRig) sender(i int) store.Address {
	return store.Address{User: fmt.Sprintf("+1666%06d", i)}
}

// run enqueues n records, message ids from first on.
func (r *storeRig) run(b *testing.B, first, n int) {
	inParallel(b, r.writers, n, func(w, i int) error {
		from, id := r.sender(w), fmt.Sprint(first+i)
		d := &pb.Delivery{ServerUnixMs: 1, From: &pb.Address{User: from.User}, Item: &pb.Delivery_Message{Message: &pb.Message{
			MessageId: id, Type: pb.CipherType_SIGNAL_MESSAGE, Ciphertext: make([]byte, 200)}}}
		_, err := r.st.Enqueue(store.Batch{Sender: from, MessageID: id, Items: []store.Item{{To: r.to, Delivery: d}}})
		return err
	})
}

// inParallel runs fn for i from 0 to n on workers goroutines, worker w
// taking w, w+workers, ..., and fails tb on the first error.
func inParallel(tb testing.TB, workers, n int, fn func(w, i int) error) {
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := fn(w, i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// sendRig is a relay on a real data dir with one recipient, bob, and
// senders phones.
type sendRig struct {
	relay   *Server // nil on a cluster
	bob     *client
	phones  []*client
	bobHash string
	sent    int // messages each phone sent so far
}

func newSendRig(b *testing.B, senders int) *sendRig {
	s := startRelay(b, Config{DataDir: b.TempDir()})
	rig := newSendRigVia(b, senders, s, s)
	rig.relay = s
	return rig
}

// newSendRigVia puts the senders on relay (or cluster node) in and the
// recipient on out.
func newSendRigVia(b *testing.B, senders int, in, out relayAddr) *sendRig {
	rig := &sendRig{bob: phone(b, out, "bob", "+15550200"), bobHash: listHash("+15550200", []uint32{0})}
	for i := range senders {
		rig.phones = append(rig.phones, phone(b, in, fmt.Sprint("sender", i), fmt.Sprintf("+1666%06d", i)))
	}
	return rig
}

// run sends n messages from the phones in parallel and returns the
// deliveries/s and the mean ms from a send to its ack.
func (r *sendRig) run(b *testing.B, n int) (perSec, msPerAck float64) {
	received := make(chan error, 1)
	go func() { received <- receive(r.bob, n) }()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(r.phones))
	for i, p := range r.phones {
		each := n / len(r.phones)
		if i < n%len(r.phones) {
			each++
		}
		first := r.sent
		wg.Go(func() {
			if err := sendMany(p, first, each, r.bobHash); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	r.sent += n/len(r.phones) + 1
	acked := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	if err := <-received; err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	return float64(n) / elapsed.Seconds(), float64(acked.Microseconds()) / 1000 * float64(len(r.phones)) / float64(n)
}

// sendMany sends n messages from p to bob, message ids from first on, one
// at a time, each waiting for its SendAck. It runs off the test goroutine,
// so it returns errors.
func sendMany(p *client, first, n int, bobHash string) error {
	own := listHash(p.user, []uint32{0})
	for i := first; i < first+n; i++ {
		id := p.ids.Add(1)
		f := frame(&pb.Send{
			MessageId:  fmt.Sprint(p.user, "-", i),
			ListHashes: map[string]string{"+15550200": bobHash, p.user: own},
			Envelopes:  []*pb.Envelope{{To: &pb.Address{User: "+15550200"}, Type: pb.CipherType_SIGNAL_MESSAGE, Ciphertext: make([]byte, 200)}},
		})
		f.Id = id
		if err := p.wc.WriteFrame(context.Background(), f); err != nil {
			return err
		}
		select {
		case a := <-p.answers:
			if a.GetSendAck() == nil {
				return fmt.Errorf("%s: send answered %v", p.name, a)
			}
		case <-time.After(waitFor):
			return errors.New(p.name + ": no SendAck")
		}
	}
	return nil
}

// receive takes n deliveries on c, acking them in batches.
func receive(c *client, n int) error {
	var seqs []uint64
	flush := func() error {
		if len(seqs) == 0 {
			return nil
		}
		err := c.wc.WriteFrame(context.Background(), frame(&pb.Ack{Seqs: seqs}))
		seqs = seqs[:0]
		return err
	}
	for got := 0; got < n; {
		select {
		case f := <-c.pushes:
			if d := f.GetDelivery(); d != nil {
				seqs = append(seqs, d.GetSeq())
				got++
			}
			if len(c.pushes) == 0 || len(seqs) >= 64 {
				if err := flush(); err != nil {
					return err
				}
			}
		case <-time.After(waitFor):
			return fmt.Errorf("%s: %d of %d deliveries", c.name, got, n)
		}
	}
	return flush()
}

// mapEntriesFrame is the costliest frame to decode for its size: a Send
// whose list_hashes holds as many empty map entries as fit in size bytes.
func mapEntriesFrame(size int) []byte {
	send := (&pb.Send{}).ProtoReflect().Descriptor().Fields().ByName("list_hashes").Number()
	body := (&pb.Frame{}).ProtoReflect().Descriptor().Fields().ByName("send").Number()
	var entries []byte
	for len(entries)+2 <= size-8 {
		entries = protowire.AppendTag(entries, send, protowire.BytesType)
		entries = protowire.AppendBytes(entries, nil)
	}
	f := protowire.AppendTag(nil, body, protowire.BytesType)
	return protowire.AppendBytes(f, entries)
}

// BenchmarkDecodeMapEntries is the CPU a frame of map entries costs the
// relay to decode: at most the pre-login limit before a connection is a
// device (larger ones are cut off unread), the frame limit after.
func BenchmarkDecodeMapEntries(b *testing.B) {
	for _, size := range []int{Limits{}.withDefaults().PreLoginMaxFrame, wire.MaxFrame} {
		b.Run(fmt.Sprintf("bytes=%d", size), func(b *testing.B) {
			raw := mapEntriesFrame(size)
			if len(raw) > size {
				b.Fatalf("frame of %d bytes, want at most %d", len(raw), size)
			}
			for b.Loop() {
				if _, err := wire.Decode(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
