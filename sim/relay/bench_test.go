package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

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
			benchSend(b, senders)
		})
	}
}

func benchSend(b *testing.B, senders int) {
	s := startRelay(b, Config{DataDir: b.TempDir()})
	benchSendVia(b, senders, s, s)
}

// benchSendVia runs the benchmark with the senders on relay (or node) in
// and the recipient on out.
func benchSendVia(b *testing.B, senders int, in, out relayAddr) {
	bob := phone(b, out, "bob", "+15550200")
	phones := make([]*client, senders)
	for i := range phones {
		phones[i] = phone(b, in, fmt.Sprint("sender", i), fmt.Sprintf("+1666%06d", i))
	}
	bobHash := listHash("+15550200", []uint32{0})

	received := make(chan error, 1)
	go func() { received <- receive(bob, b.N) }()

	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for i, p := range phones {
		n := b.N / senders
		if i < b.N%senders {
			n++
		}
		wg.Go(func() {
			if err := sendMany(p, n, bobHash); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	acked := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	if err := <-received; err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(acked.Microseconds())/1000*float64(senders)/float64(b.N), "ms/send-ack")
}

// sendMany sends n messages from p to bob, one at a time, each waiting for
// its SendAck. It runs off the test goroutine, so it returns errors.
func sendMany(p *client, n int, bobHash string) error {
	own := listHash(p.user, []uint32{0})
	for i := range n {
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
