package e2e

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/linksim/linksim/sim/wire/pb"
)

// maxMediaLength bounds the plaintext length a message may claim (1 TiB), so
// a hostile one cannot overflow the size arithmetic.
const maxMediaLength = 1 << 40

// MediaDecrypter is an io.Writer for a blob: write the blob's bytes to it in
// order (from one download, or several resumed at Written), then Commit.
//
// Unverified plaintext is never handed out. It goes to a private temporary
// file that only Commit makes visible, by moving it into place after the
// MAC, the length and both hashes verified; when anything fails the file
// is deleted and the error says why (ErrMediaMAC, ErrMediaHash). Where
// there is no file system, NewMediaDecrypterTo writes the plaintext to the
// caller's writer instead, and Verify tells whether it may be used.
type MediaDecrypter struct {
	fileSHA, encSHA []byte
	fileLen, encLen int64

	cbc     cipher.BlockMode
	mac     hash.Hash
	fileSum hash.Hash
	encSum  hash.Hash

	// pending is ciphertext not yet decrypted. The last block and the MAC
	// are always held back: only at the end is it known which bytes they
	// are, and the last block's padding must be checked before its
	// plaintext is kept.
	pending []byte
	out     io.Writer // the plaintext, unverified until Commit or Verify
	spool   *os.File  // out, when NewMediaDecrypter made it
	written int64
	plain   int64
	err     error // sticky: once a write failed, Commit fails
	ended   bool
}

// held is how many bytes at the end of the blob cannot be decrypted until
// the blob is complete.
const held = aes.BlockSize + MediaMACSize

// NewMediaDecrypter prepares to decrypt the blob m describes, spooling the
// plaintext in a temporary file in dir ("" for the system's temp dir).
func NewMediaDecrypter(m *pb.Media, dir string) (*MediaDecrypter, error) {
	d, err := NewMediaDecrypterTo(m, nil)
	if err != nil {
		return nil, err
	}
	if d.spool, err = os.CreateTemp(dir, ".linksim-media-*.part"); err != nil {
		return nil, fmt.Errorf("e2e: decrypt media: %w", err)
	}
	d.out = d.spool
	return d, nil
}

// NewMediaDecrypterTo is NewMediaDecrypter for a caller that keeps the
// plaintext itself (in memory, where there is no file system): it is
// written to out as it is decrypted, still unverified. The caller must show
// nothing of it unless Verify returns nil, and discard it otherwise.
func NewMediaDecrypterTo(m *pb.Media, out io.Writer) (*MediaDecrypter, error) {
	k, err := expandMediaKey(m.GetMediaKey(), m.GetType())
	if err != nil {
		return nil, fmt.Errorf("e2e: decrypt media: %w", err)
	}
	if len(m.GetFileSha256()) != sha256.Size || len(m.GetFileEncSha256()) != sha256.Size {
		return nil, errors.New("e2e: decrypt media: the message lacks the blob's hashes")
	}
	if m.GetFileLength() > maxMediaLength {
		return nil, fmt.Errorf("e2e: decrypt media: implausible length %d", m.GetFileLength())
	}
	cbc, mac := k.ciphers(false)
	n := int64(m.GetFileLength())
	return &MediaDecrypter{
		fileSHA: m.GetFileSha256(), encSHA: m.GetFileEncSha256(), fileLen: n, encLen: EncryptedSize(n),
		cbc: cbc, mac: mac, fileSum: sha256.New(), encSum: sha256.New(), out: out,
	}, nil
}

// Written is how many bytes of the blob were written: where a download that
// was cut resumes (an HTTP Range request from this offset).
func (d *MediaDecrypter) Written() int64 { return d.written }

// Size is the size the blob must have.
func (d *MediaDecrypter) Size() int64 { return d.encLen }

// Write takes the next bytes of the blob.
func (d *MediaDecrypter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if d.ended {
		return 0, errors.New("e2e: decrypt media: write after commit or abort")
	}
	if d.written+int64(len(p)) > d.encLen {
		d.err = fmt.Errorf("e2e: decrypt media: blob longer than the %d bytes promised: %w", d.encLen, ErrMediaHash)
		return 0, d.err
	}
	d.written += int64(len(p))
	d.encSum.Write(p)
	d.pending = append(d.pending, p...)
	if n := (len(d.pending) - held) / aes.BlockSize * aes.BlockSize; n > 0 {
		if err := d.decrypt(d.pending[:n]); err != nil {
			d.err = err
			return 0, err
		}
		d.pending = d.pending[:copy(d.pending, d.pending[n:])]
	}
	return len(p), nil
}

// decrypt authenticates and decrypts whole blocks in place and spools their
// plaintext.
func (d *MediaDecrypter) decrypt(ct []byte) error {
	d.mac.Write(ct)
	d.cbc.CryptBlocks(ct, ct)
	return d.keep(ct)
}

func (d *MediaDecrypter) keep(pt []byte) error {
	d.fileSum.Write(pt)
	d.plain += int64(len(pt))
	if _, err := d.out.Write(pt); err != nil {
		return fmt.Errorf("e2e: decrypt media: spool: %w", err)
	}
	return nil
}

// Commit verifies the whole blob and, only if it is intact, moves its
// plaintext to path (replacing any file there). On failure nothing is left
// at path or in the temp dir, and the error wraps ErrMediaMAC or
// ErrMediaHash when the blob was at fault.
func (d *MediaDecrypter) Commit(path string) error {
	if d.ended {
		return errors.New("e2e: decrypt media: already committed or aborted")
	}
	if d.spool == nil {
		return errors.New("e2e: decrypt media: Commit of a decrypter writing to the caller's spool (use Verify)")
	}
	err := d.verify()
	if err == nil {
		err = d.spool.Close()
	}
	if err == nil {
		err = move(d.spool.Name(), path)
	}
	if err != nil {
		d.Abort()
		return err
	}
	d.ended = true
	return nil
}

// Verify is Commit for a decrypter made by NewMediaDecrypterTo: it checks
// the whole blob and decrypts its tail into the caller's writer. Only when
// it returns nil may the plaintext written there be used.
func (d *MediaDecrypter) Verify() error {
	if d.ended {
		return errors.New("e2e: decrypt media: already verified or aborted")
	}
	d.ended = true
	return d.verify()
}

// verify checks, in order: the length, the MAC, the blob's hash, the
// padding, the plaintext's length and hash. It decrypts the held-back tail
// on the way.
func (d *MediaDecrypter) verify() error {
	if d.err != nil {
		return d.err
	}
	if d.written != d.encLen {
		return fmt.Errorf("e2e: decrypt media: blob of %d bytes, want %d: %w", d.written, d.encLen, ErrMediaHash)
	}
	ct, mac := d.pending[:len(d.pending)-MediaMACSize], d.pending[len(d.pending)-MediaMACSize:]
	d.mac.Write(ct)
	if !hmac.Equal(d.mac.Sum(nil)[:MediaMACSize], mac) {
		return fmt.Errorf("e2e: decrypt media: %w", ErrMediaMAC)
	}
	if !bytes.Equal(d.encSum.Sum(nil), d.encSHA) {
		return fmt.Errorf("e2e: decrypt media: blob SHA-256: %w", ErrMediaHash)
	}
	d.cbc.CryptBlocks(ct, ct)
	pad := int(ct[len(ct)-1])
	if pad < 1 || pad > aes.BlockSize || !bytes.Equal(ct[len(ct)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		// The MAC verified, so the sender encrypted this: its bug, or
		// malice, but not a transport error.
		return fmt.Errorf("e2e: decrypt media: bad padding under a valid MAC: %w", ErrMediaMAC)
	}
	if err := d.keep(ct[:len(ct)-pad]); err != nil {
		return err
	}
	if d.plain != d.fileLen || !bytes.Equal(d.fileSum.Sum(nil), d.fileSHA) {
		return fmt.Errorf("e2e: decrypt media: plaintext of %d bytes does not match the message's SHA-256: %w", d.plain, ErrMediaHash)
	}
	return nil
}

// Abort discards the spooled plaintext. It is safe to call at any time, also
// after Commit (then it does nothing).
func (d *MediaDecrypter) Abort() {
	if d.ended {
		return
	}
	d.ended = true
	if d.spool != nil {
		d.spool.Close()
		os.Remove(d.spool.Name())
	}
}

// DecryptMedia decrypts the whole blob in src to a new file at path, which
// appears only once the blob verified. The plaintext is spooled in dir.
func DecryptMedia(src io.Reader, m *pb.Media, dir, path string) error {
	d, err := NewMediaDecrypter(m, dir)
	if err != nil {
		return err
	}
	if _, err := io.Copy(d, src); err != nil {
		d.Abort()
		return fmt.Errorf("e2e: decrypt media: %w", err)
	}
	return d.Commit(path)
}

// move renames src to dst. Across file systems it copies into a temporary
// file beside dst and renames that, so dst never holds part of a file.
func move(src, dst string) error {
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("e2e: decrypt media: %w", err)
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(dst), ".linksim-media-*.part")
	if err != nil {
		return fmt.Errorf("e2e: decrypt media: %w", err)
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(out.Name(), dst)
	}
	if err != nil {
		os.Remove(out.Name())
		return fmt.Errorf("e2e: decrypt media: move into place: %w", err)
	}
	return os.Remove(src)
}
