package device

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/linksim/linksim/sim/relay"
	"github.com/linksim/linksim/sim/wire/pb"
)

// A browser's device spools in memory: send and download work without a
// file system, and media past the limit is refused with ErrSpoolFull.
func TestMemorySpool(t *testing.T) {
	_, alice, bob, events := twoPhones(t, relay.Config{NoSync: true})
	ctx := context.Background()
	alice.cfg.Spool, bob.cfg.Spool = MemorySpool{Max: 1 << 20}, MemorySpool{Max: 1 << 20}
	doc := bytes.Repeat([]byte("linksim "), 40_000)
	id, err := alice.SendMedia(ctx, bob.Self().User, MediaFile{Type: pb.MediaType_DOCUMENT, Reader: bytes.NewReader(doc), FileName: "a.txt"})
	if err != nil {
		t.Fatal(err)
	}
	got := await(t, events, MediaReceived)
	if got.MessageID != id {
		t.Fatalf("received msg %s, want %s", got.MessageID, id)
	}
	msg := Message{ID: id, From: alice.Self().User, Media: got.Media}
	plain, err := bob.Download(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	read, err := io.ReadAll(plain)
	plain.Close()
	if err != nil || !bytes.Equal(read, doc) {
		t.Fatalf("downloaded %d bytes (err %v), want the %d sent", len(read), err, len(doc))
	}

	bob.cfg.Spool = MemorySpool{Max: 1 << 10}
	if _, err := bob.Download(ctx, msg); !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("download past the spool's limit: %v, want ErrSpoolFull", err)
	}
	big := bytes.Repeat([]byte{1}, 2<<20)
	if _, err := alice.SendMedia(ctx, bob.Self().User, MediaFile{Type: pb.MediaType_DOCUMENT, Reader: bytes.NewReader(big)}); !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("send past the spool's limit: %v, want ErrSpoolFull", err)
	}
}
