package e2e

// Media encryption, as WhatsApp does it (docs/protocol.md §12): a random
// 32-byte media key is expanded by HKDF-SHA256 into an IV, an AES-256-CBC key
// and an HMAC-SHA256 key; the blob is the PKCS#7-padded ciphertext followed by
// the first 10 bytes of HMAC(iv || ciphertext). Both directions stream in
// fixed-size chunks, so a file of any size costs a few tens of KiB of memory.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/linksim/linksim/sim/wire/pb"
)

const (
	// MediaKeySize is the length of a media key.
	MediaKeySize = 32
	// MediaMACSize is how much of the HMAC-SHA256 the blob carries.
	MediaMACSize = 10
	// mediaChunk is how much plaintext one encryption step takes.
	mediaChunk = 64 << 10
)

var (
	// ErrMediaMAC means the blob's MAC does not verify: it was altered, or
	// the key is not the one it was encrypted with.
	ErrMediaMAC = errors.New("media MAC mismatch")
	// ErrMediaHash means the blob or its plaintext does not have the
	// SHA-256 or the length the message promised.
	ErrMediaHash = errors.New("media hash mismatch")
)

// mediaInfo is the HKDF info string per media type: keys for one type are
// useless for another.
var mediaInfo = map[pb.MediaType]string{
	pb.MediaType_IMAGE:    "linksim Image Keys",
	pb.MediaType_VIDEO:    "linksim Video Keys",
	pb.MediaType_DOCUMENT: "linksim Document Keys",
	pb.MediaType_HISTORY:  "linksim History Keys",
}

// mediaKeys is a media key expanded: 112 bytes cut into iv (16), cipher key
// (32), MAC key (32) and ref key (32). linksim does not use the ref key
// (WhatsApp signs media-retry requests with it); it is kept so the layout
// is WhatsApp's.
type mediaKeys struct {
	iv, cipherKey, macKey, refKey []byte
}

// NewMediaKey returns a fresh random media key.
func NewMediaKey() []byte {
	k := make([]byte, MediaKeySize)
	rand.Read(k) // never fails (crypto/rand panics rather than return short)
	return k
}

func expandMediaKey(key []byte, t pb.MediaType) (mediaKeys, error) {
	info, ok := mediaInfo[t]
	if !ok {
		return mediaKeys{}, fmt.Errorf("media type %v has no keys", t)
	}
	if len(key) != MediaKeySize {
		return mediaKeys{}, fmt.Errorf("media key of %d bytes, want %d", len(key), MediaKeySize)
	}
	b, err := hkdf.Key(sha256.New, key, nil, info, 112)
	if err != nil {
		return mediaKeys{}, err
	}
	return mediaKeys{iv: b[:16], cipherKey: b[16:48], macKey: b[48:80], refKey: b[80:]}, nil
}

// ciphers returns the CBC mode (encrypting or decrypting) and the MAC, which
// already covers the IV.
func (k mediaKeys) ciphers(encrypt bool) (cipher.BlockMode, hash.Hash) {
	block, _ := aes.NewCipher(k.cipherKey) // 32 bytes: cannot fail
	mac := hmac.New(sha256.New, k.macKey)
	mac.Write(k.iv)
	if encrypt {
		return cipher.NewCBCEncrypter(block, k.iv), mac
	}
	return cipher.NewCBCDecrypter(block, k.iv), mac
}

// EncryptedSize is the size of the blob for a plaintext of n bytes: padding
// always adds 1 to 16 bytes, then the MAC.
func EncryptedSize(n int64) int64 {
	return (n/aes.BlockSize+1)*aes.BlockSize + MediaMACSize
}

// MediaSums are what encrypting a file found out: what a Media message
// carries besides the key.
type MediaSums struct {
	FileSHA256    []byte // of the plaintext
	FileEncSHA256 []byte // of the blob: ciphertext, then MAC
	FileLength    int64  // plaintext bytes
	EncLength     int64  // blob bytes
}

// MediaEncrypter is an io.Reader of the blob for the plaintext it reads from
// its source, hashing both on the way. Read it to io.EOF, then take Sums.
type MediaEncrypter struct {
	src     io.Reader
	cbc     cipher.BlockMode
	mac     hash.Hash
	fileSum hash.Hash
	encSum  hash.Hash
	sums    MediaSums

	in   []byte // plaintext read but not yet encrypted (less than a block between steps)
	buf  []byte // encrypted bytes; out is the part not yet returned
	out  []byte
	done bool // the final block and the MAC are in buf
	err  error
}

// NewMediaEncrypter encrypts what src yields with key, for media type t.
func NewMediaEncrypter(src io.Reader, key []byte, t pb.MediaType) (*MediaEncrypter, error) {
	k, err := expandMediaKey(key, t)
	if err != nil {
		return nil, fmt.Errorf("e2e: encrypt media: %w", err)
	}
	cbc, mac := k.ciphers(true)
	return &MediaEncrypter{
		src: src, cbc: cbc, mac: mac, fileSum: sha256.New(), encSum: sha256.New(),
		// Room for a chunk, a partial block left over, the padding and
		// the whole HMAC, so no step allocates.
		in:  make([]byte, 0, mediaChunk+2*aes.BlockSize),
		buf: make([]byte, 0, mediaChunk+2*aes.BlockSize+sha256.Size),
	}, nil
}

// Read yields the next bytes of the blob.
func (e *MediaEncrypter) Read(p []byte) (int, error) {
	for len(e.out) == 0 {
		if e.err != nil {
			return 0, e.err
		}
		if e.done {
			return 0, io.EOF
		}
		e.step()
	}
	n := copy(p, e.out)
	e.out = e.out[n:]
	return n, nil
}

// step reads up to a chunk of plaintext and encrypts every whole block of it;
// at the end of the source it pads, encrypts the rest and appends the MAC.
func (e *MediaEncrypter) step() {
	have := len(e.in)
	n, err := io.ReadFull(e.src, e.in[have:have+mediaChunk])
	e.in = e.in[:have+n]
	e.fileSum.Write(e.in[have:])
	e.sums.FileLength += int64(n)
	last := err == io.EOF || err == io.ErrUnexpectedEOF
	if err != nil && !last {
		e.err = fmt.Errorf("e2e: encrypt media: read: %w", err)
		return
	}
	whole := len(e.in) / aes.BlockSize * aes.BlockSize
	if last {
		pad := aes.BlockSize - len(e.in)%aes.BlockSize
		for range pad {
			e.in = append(e.in, byte(pad))
		}
		whole = len(e.in)
	}
	ct := e.buf[:whole]
	e.cbc.CryptBlocks(ct, e.in[:whole])
	e.mac.Write(ct)
	e.in = e.in[:copy(e.in, e.in[whole:])]
	if last {
		ct = e.mac.Sum(ct)[:whole+MediaMACSize]
		e.done = true
	}
	e.encSum.Write(ct)
	e.sums.EncLength += int64(len(ct))
	e.out = ct
}

// Sums returns the hashes and lengths, once Read has returned io.EOF.
func (e *MediaEncrypter) Sums() (MediaSums, error) {
	if !e.done || len(e.out) > 0 {
		return MediaSums{}, errors.New("e2e: media sums asked before the blob was read to the end")
	}
	s := e.sums
	s.FileSHA256, s.FileEncSHA256 = e.fileSum.Sum(nil), e.encSum.Sum(nil)
	return s, nil
}

// EncryptMedia writes the blob for the plaintext in src to dst.
func EncryptMedia(dst io.Writer, src io.Reader, key []byte, t pb.MediaType) (MediaSums, error) {
	e, err := NewMediaEncrypter(src, key, t)
	if err != nil {
		return MediaSums{}, err
	}
	if _, err := io.Copy(dst, e); err != nil {
		return MediaSums{}, fmt.Errorf("e2e: encrypt media: %w", err)
	}
	return e.Sums()
}
