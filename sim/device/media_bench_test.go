package device

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/relay"
	"github.com/linksim/linksim/sim/wire/pb"
)

var mediaBenchSizes = []int64{1 << 20, 10 << 20, 50 << 20}

// randomFile writes size random bytes to a file in dir.
func randomFile(b *testing.B, dir string, size int64) string {
	b.Helper()
	path := filepath.Join(dir, "file")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkMediaTransfer sends a document from alice's phone to bob's
// through an in-process relay on loopback (the relay syncing each blob to
// disk, as it does by default) and has bob download and verify it: one
// iteration is a full upload and download. MB/s is the file's size over the
// iteration; up-MB/s and down-MB/s split it into SendMedia (encrypt,
// token, PUT, fan-out) and Download (GET, decrypt, verify, read).
func BenchmarkMediaTransfer(b *testing.B) {
	for _, size := range mediaBenchSizes {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			_, alice, bob, _ := twoPhones(b, relay.Config{})
			path := randomFile(b, b.TempDir(), size)
			ctx := context.Background()
			var up, down time.Duration
			b.SetBytes(size)
			for b.Loop() {
				start := time.Now()
				id, err := alice.SendMedia(ctx, bob.Self().User, MediaFile{Type: pb.MediaType_DOCUMENT, Path: path})
				if err != nil {
					b.Fatal(err)
				}
				up += time.Since(start)
				msg := awaitMessage(b, bob, alice.Self().User, id)
				start = time.Now()
				r, err := bob.Download(ctx, msg)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, r); err != nil || n != size {
					b.Fatalf("read %d bytes (%v), want %d", n, err, size)
				}
				r.Close()
				down += time.Since(start)
			}
			mb := float64(size) * float64(b.N) / 1e6
			b.ReportMetric(mb/up.Seconds(), "up-MB/s")
			b.ReportMetric(mb/down.Seconds(), "down-MB/s")
		})
	}
}

// awaitMessage polls d's chat with peer for message id.
func awaitMessage(b *testing.B, d *Device, peer, id string) Message {
	b.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		for _, m := range d.Messages(peer) {
			if m.ID == id {
				return m
			}
		}
	}
	b.Fatalf("%s never received msg %s", d.Name(), id)
	return Message{}
}

// BenchmarkLoopbackCopy is the baseline for BenchmarkMediaTransfer: the
// same file copied once over a loopback TCP connection with io.Copy, no
// crypto, no HTTP, no disk on the far side.
func BenchmarkLoopbackCopy(b *testing.B) {
	for _, size := range mediaBenchSizes {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			path := randomFile(b, b.TempDir(), size)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			copied := make(chan int64)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					n, _ := io.Copy(io.Discard, c)
					c.Close()
					copied <- n
				}
			}()
			b.SetBytes(size)
			for b.Loop() {
				f, err := os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(c, f)
				c.Close()
				f.Close()
				if n := <-copied; n != size {
					b.Fatalf("copied %d bytes, want %d", n, size)
				}
			}
		})
	}
}
