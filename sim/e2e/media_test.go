package e2e

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/linksim/linksim/sim/wire/pb"
)

// reference encrypts the way docs/protocol.md §12 says, in one piece and
// without the streaming code, so the two can be compared byte for byte.
func reference(t *testing.T, plain, key []byte, info string) []byte {
	t.Helper()
	k, err := hkdf.Key(sha256.New, key, nil, info, 112)
	if err != nil {
		t.Fatal(err)
	}
	iv, ck, mk := k[:16], k[16:48], k[48:80]
	pad := 16 - len(plain)%16
	padded := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, _ := aes.NewCipher(ck)
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, padded)
	mac := hmac.New(sha256.New, mk)
	mac.Write(iv)
	mac.Write(ct)
	return append(ct, mac.Sum(nil)[:10]...)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	r.Read(b)
	return b
}

// encryptMedia returns the blob and the Media message describing it.
func encryptMedia(t testing.TB, plain []byte, typ pb.MediaType) ([]byte, *pb.Media) {
	t.Helper()
	key := NewMediaKey()
	var blob bytes.Buffer
	sums, err := EncryptMedia(&blob, bytes.NewReader(plain), key, typ)
	if err != nil {
		t.Fatal(err)
	}
	return blob.Bytes(), &pb.Media{Type: typ, MediaKey: key, FileSha256: sums.FileSHA256,
		FileEncSha256: sums.FileEncSHA256, FileLength: uint64(sums.FileLength)}
}

// decryptMedia feeds blob to a decrypter in writes of the given size and
// commits; it checks that nothing is left behind when that fails.
func decryptMedia(t *testing.T, blob []byte, m *pb.Media, write int) ([]byte, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	d, err := NewMediaDecrypter(m, dir)
	if err != nil {
		t.Fatal(err)
	}
	for rest := blob; len(rest) > 0 && err == nil; {
		n := min(write, len(rest))
		_, err = d.Write(rest[:n])
		rest = rest[n:]
	}
	if err == nil {
		err = d.Commit(path)
	} else {
		d.Abort()
	}
	left, _ := os.ReadDir(dir)
	if err != nil {
		if len(left) != 0 {
			t.Errorf("after a failed decrypt %d files are left in the spool dir (%s); want none", len(left), left[0].Name())
		}
		return nil, err
	}
	if len(left) != 1 {
		t.Errorf("after a decrypt %d files are in the dir, want just the plaintext", len(left))
	}
	out, rerr := os.ReadFile(path)
	if rerr != nil {
		t.Fatal(rerr)
	}
	return out, nil
}

func TestMediaRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, 15, 16, 17, 31, 32, 33, mediaChunk - 1, mediaChunk, mediaChunk + 1, 3<<20 + 5} {
		for _, typ := range []pb.MediaType{pb.MediaType_IMAGE, pb.MediaType_VIDEO, pb.MediaType_DOCUMENT, pb.MediaType_HISTORY} {
			t.Run(fmt.Sprintf("%d-%v", size, typ), func(t *testing.T) {
				plain := randomBytes(size)
				blob, m := encryptMedia(t, plain, typ)
				if want := reference(t, plain, m.MediaKey, mediaInfo[typ]); !bytes.Equal(blob, want) {
					t.Fatalf("blob of %d bytes differs from the reference encryption (%d bytes)", len(blob), len(want))
				}
				if int64(len(blob)) != EncryptedSize(int64(size)) {
					t.Errorf("blob is %d bytes, EncryptedSize says %d", len(blob), EncryptedSize(int64(size)))
				}
				if s := sha256.Sum256(plain); !bytes.Equal(m.FileSha256, s[:]) {
					t.Error("FileSHA256 is not the plaintext's SHA-256")
				}
				if s := sha256.Sum256(blob); !bytes.Equal(m.FileEncSha256, s[:]) {
					t.Error("FileEncSHA256 is not the blob's SHA-256")
				}
				// Writes of odd sizes cross block and MAC boundaries
				// anywhere, as resumed downloads do.
				for _, w := range []int{1, 7, 26, 4096, len(blob)} {
					if w < 26 && size > mediaChunk {
						continue // slow, and the small sizes already cross every boundary
					}
					got, err := decryptMedia(t, blob, m, max(w, 1))
					if err != nil {
						t.Fatalf("decrypt in writes of %d: %v", w, err)
					}
					if !bytes.Equal(got, plain) {
						t.Fatalf("decrypt in writes of %d: plaintext differs", w)
					}
				}
			})
		}
	}
}

func TestMediaTamperedIsRejected(t *testing.T) {
	plain := randomBytes(100_000)
	blob, m := encryptMedia(t, plain, pb.MediaType_IMAGE)
	for _, at := range []int{0, 15, 16, len(blob) / 2, len(blob) - 11, len(blob) - 10, len(blob) - 1} {
		bad := bytes.Clone(blob)
		bad[at] ^= 0x01
		if _, err := decryptMedia(t, bad, m, 32<<10); !errors.Is(err, ErrMediaMAC) {
			t.Errorf("byte %d of %d flipped: got %v, want ErrMediaMAC", at, len(blob), err)
		}
	}
}

func TestMediaWrongKeyOrType(t *testing.T) {
	blob, m := encryptMedia(t, randomBytes(1000), pb.MediaType_VIDEO)
	wrongKey := &pb.Media{Type: m.Type, MediaKey: NewMediaKey(), FileSha256: m.FileSha256, FileEncSha256: m.FileEncSha256, FileLength: m.FileLength}
	if _, err := decryptMedia(t, blob, wrongKey, 512); !errors.Is(err, ErrMediaMAC) {
		t.Errorf("wrong key: got %v, want ErrMediaMAC", err)
	}
	// The same key expands to other keys for another type.
	wrongType := &pb.Media{Type: pb.MediaType_DOCUMENT, MediaKey: m.MediaKey, FileSha256: m.FileSha256, FileEncSha256: m.FileEncSha256, FileLength: m.FileLength}
	if _, err := decryptMedia(t, blob, wrongType, 512); !errors.Is(err, ErrMediaMAC) {
		t.Errorf("wrong type: got %v, want ErrMediaMAC", err)
	}
	if _, err := NewMediaDecrypter(&pb.Media{Type: pb.MediaType_IMAGE, MediaKey: []byte("short")}, t.TempDir()); err == nil {
		t.Error("a 5-byte media key was accepted")
	}
}

func TestMediaLengthAndHashMismatch(t *testing.T) {
	plain := randomBytes(5000)
	blob, m := encryptMedia(t, plain, pb.MediaType_DOCUMENT)
	if _, err := decryptMedia(t, blob[:len(blob)-1], m, 1000); !errors.Is(err, ErrMediaHash) {
		t.Errorf("truncated blob: got %v, want ErrMediaHash", err)
	}
	if _, err := decryptMedia(t, append(bytes.Clone(blob), 0), m, 1000); !errors.Is(err, ErrMediaHash) {
		t.Errorf("blob with a byte too many: got %v, want ErrMediaHash", err)
	}
	// A valid MAC but a message promising other content: the sender lied.
	lying := &pb.Media{Type: m.Type, MediaKey: m.MediaKey, FileSha256: make([]byte, 32), FileEncSha256: m.FileEncSha256, FileLength: m.FileLength}
	if _, err := decryptMedia(t, blob, lying, 1000); !errors.Is(err, ErrMediaHash) {
		t.Errorf("wrong file SHA-256 in the message: got %v, want ErrMediaHash", err)
	}
	lying = &pb.Media{Type: m.Type, MediaKey: m.MediaKey, FileSha256: m.FileSha256, FileEncSha256: make([]byte, 32), FileLength: m.FileLength}
	if _, err := decryptMedia(t, blob, lying, 1000); !errors.Is(err, ErrMediaHash) {
		t.Errorf("wrong blob SHA-256 in the message: got %v, want ErrMediaHash", err)
	}
}

// TestMediaConstantMemory encrypts 48 MiB to a file and decrypts it again,
// and checks that the heap barely notices either way.
func TestMediaConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 96 MiB of temp files")
	}
	const size = 48 << 20
	dir := t.TempDir()
	blob, err := os.Create(filepath.Join(dir, "blob"))
	if err != nil {
		t.Fatal(err)
	}
	defer blob.Close()
	key := NewMediaKey()
	var sums MediaSums
	allocated(t, "encrypting", func() error {
		sums, err = EncryptMedia(blob, io.LimitReader(zeros{}, size), key, pb.MediaType_VIDEO)
		return err
	})
	m := &pb.Media{Type: pb.MediaType_VIDEO, MediaKey: key, FileSha256: sums.FileSHA256, FileEncSha256: sums.FileEncSHA256, FileLength: size}
	allocated(t, "decrypting", func() error {
		if _, err := blob.Seek(0, io.SeekStart); err != nil {
			return err
		}
		return DecryptMedia(blob, m, dir, filepath.Join(dir, "plain"))
	})
}

// allocated runs fn and fails t when it allocated more than 2 MiB in all.
func allocated(t *testing.T, what string, fn func() error) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := fn(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 2<<20 {
		t.Errorf("%s 48 MiB allocated %d KiB in all; want constant memory (< 2 MiB)", what, grown>>10)
	}
}

// zeros is an endless reader of zeros that allocates nothing.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func BenchmarkMediaEncrypt(b *testing.B) {
	for _, size := range []int64{64 << 10, 1 << 20, 16 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			key := NewMediaKey()
			b.SetBytes(size)
			for b.Loop() {
				if _, err := EncryptMedia(io.Discard, io.LimitReader(zeros{}, size), key, pb.MediaType_DOCUMENT); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMediaDecrypt(b *testing.B) {
	for _, size := range []int64{64 << 10, 1 << 20, 16 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			key := NewMediaKey()
			var blob bytes.Buffer
			sums, err := EncryptMedia(&blob, io.LimitReader(zeros{}, size), key, pb.MediaType_DOCUMENT)
			if err != nil {
				b.Fatal(err)
			}
			m := &pb.Media{Type: pb.MediaType_DOCUMENT, MediaKey: key, FileSha256: sums.FileSHA256, FileEncSha256: sums.FileEncSHA256, FileLength: uint64(size)}
			dir := b.TempDir()
			b.SetBytes(size)
			for b.Loop() {
				if err := DecryptMedia(bytes.NewReader(blob.Bytes()), m, dir, filepath.Join(dir, "out")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A decrypter writing to the caller's writer (a browser's memory) verifies
// like one writing to a file: Verify passes an intact blob and refuses a
// tampered one.
func TestMediaDecrypterTo(t *testing.T) {
	plain := randomBytes(50_000)
	blob, m := encryptMedia(t, plain, pb.MediaType_DOCUMENT)
	for _, tamper := range []bool{false, true} {
		b := bytes.Clone(blob)
		if tamper {
			b[len(b)/2] ^= 0x01
		}
		var out bytes.Buffer
		d, err := NewMediaDecrypterTo(m, &out)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Write(b); err != nil {
			t.Fatal(err)
		}
		err = d.Verify()
		switch {
		case tamper && !errors.Is(err, ErrMediaMAC):
			t.Errorf("tampered blob: Verify gave %v, want ErrMediaMAC", err)
		case !tamper && (err != nil || !bytes.Equal(out.Bytes(), plain)):
			t.Errorf("intact blob: Verify gave %v, plaintext equal: %v", err, bytes.Equal(out.Bytes(), plain))
		}
		if d.Commit(t.TempDir()+"/x") == nil {
			t.Error("Commit of a decrypter writing to the caller's writer succeeded")
		}
	}
}
