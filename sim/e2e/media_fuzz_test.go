package e2e

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/linksim/linksim/sim/wire/pb"
)

// FuzzMediaTamper encrypts a plaintext, changes the blob as the input says
// (flip one byte, cut it short, or nothing) and decrypts it in writes of a
// given size: an untouched blob must come back as the plaintext, and a changed
// one must fail with ErrMediaMAC or ErrMediaHash, leaving nothing behind.
func FuzzMediaTamper(f *testing.F) {
	f.Add([]byte("hello"), uint16(0), byte(0), uint16(0), uint8(7))
	f.Add(bytes.Repeat([]byte{1}, 100), uint16(3), byte(0x80), uint16(0), uint8(16))
	f.Add(bytes.Repeat([]byte{2}, 33), uint16(40), byte(1), uint16(0), uint8(1))
	f.Add([]byte{}, uint16(0), byte(0), uint16(5), uint8(200))
	f.Fuzz(func(t *testing.T, plain []byte, at uint16, mask byte, cut uint16, write uint8) {
		blob, m := encryptMedia(t, plain, pb.MediaType_DOCUMENT)
		blob[int(at)%len(blob)] ^= mask
		short := int(cut) % len(blob)
		blob = blob[:len(blob)-short]
		changed := mask != 0 || short != 0
		got, err := decryptMedia(t, blob, m, int(write)+1)
		switch {
		case !changed && err != nil:
			t.Fatalf("an untouched blob of %d bytes does not decrypt: %v", len(plain), err)
		case !changed && !bytes.Equal(got, plain):
			t.Fatalf("an untouched blob decrypts to %d other bytes", len(got))
		case changed && err == nil:
			t.Fatalf("a blob changed at %d (mask %#x) or cut by %d decrypts", at, mask, cut)
		case changed && !errors.Is(err, ErrMediaMAC) && !errors.Is(err, ErrMediaHash):
			t.Fatalf("a changed blob fails with %v, want ErrMediaMAC or ErrMediaHash", err)
		}
	})
}

// FuzzMediaDescriptor decrypts an arbitrary blob against an arbitrary Media
// descriptor, as a hostile sender could make them: nothing may panic, and
// nothing may verify unless it is the plaintext the descriptor promised.
func FuzzMediaDescriptor(f *testing.F) {
	blob, m := encryptMedia(f, []byte("a picture"), pb.MediaType_IMAGE)
	good, _ := proto.Marshal(m)
	f.Add(good, blob)
	f.Add(good, blob[:len(blob)-1])
	noHashes, _ := proto.Marshal(&pb.Media{Type: pb.MediaType_IMAGE, MediaKey: m.MediaKey, FileLength: 1 << 41})
	f.Add(noHashes, blob)
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, desc, blob []byte) {
		var m pb.Media
		if proto.Unmarshal(desc, &m) != nil {
			return
		}
		var out bytes.Buffer
		d, err := NewMediaDecrypterTo(&m, &out)
		if err != nil {
			return
		}
		if _, err := d.Write(blob); err != nil {
			return
		}
		if d.Verify() != nil {
			return
		}
		if uint64(out.Len()) != m.GetFileLength() || sha256.Sum256(out.Bytes()) != [32]byte(m.GetFileSha256()) {
			t.Fatalf("a blob verified but gave %d bytes that are not the %d promised", out.Len(), m.GetFileLength())
		}
	})
}
