package relay

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// blobStore keeps media blobs by their SHA-256: blobs in the data dir, or
// the cluster's object store (clusterBlobs).
type blobStore interface {
	// touch reports whether the blob exists and, if so, restarts its
	// time to live.
	touch(sum []byte, now time.Time) bool
	// put stores exactly size bytes from r as the blob sum, only if they
	// hash to sum: errBlobTooLarge, errBlobShort, errBlobHash, errBlobCut,
	// or another error when the store itself failed.
	put(r io.Reader, size int64, sum []byte) error
	// open returns the blob of hex SHA-256 name; fs.ErrNotExist when
	// there is none.
	open(name string) (io.ReadSeekCloser, error)
	// sweep removes blobs untouched for ttl and says how many.
	sweep(now time.Time, ttl time.Duration) (int, error)
	count() int
}

var _ blobStore = (*blobs)(nil)

// blobs is the relay's media store on disk: one file per blob under
// <DataDir>/media/blobs, named by the hex SHA-256 of its bytes, so the same
// blob uploaded twice is stored once. An upload streams into its own file
// in media/tmp and is renamed into place only after its size and hash
// verified: a blob in blobs/ is always whole, and a cut upload leaves
// nothing visible. The blobs are ciphertext; the relay never has their keys.
type blobs struct {
	dir, tmp string
	noSync   bool

	// mu orders what changes a blob's life: the sweeper's check and
	// removal, touch, and renaming an upload into place, so a blob
	// touched or re-uploaded at the moment it expires is not lost.
	mu sync.Mutex
}

var (
	errBlobTooLarge = errors.New("more bytes than announced")
	errBlobShort    = errors.New("fewer bytes than announced")
	errBlobHash     = errors.New("SHA-256 of the bytes received is not the one announced")
	// errBlobCut is the uploader's stream breaking; any other error of put
	// is the relay's own storage failing.
	errBlobCut = errors.New("upload cut")
)

// openBlobs opens the store under dataDir, creating it. Temporary files are
// uploads a crash cut short: nobody can finish them, so they are removed.
func openBlobs(dataDir string, noSync bool) (*blobs, error) {
	b := &blobs{dir: filepath.Join(dataDir, "media", "blobs"), tmp: filepath.Join(dataDir, "media", "tmp"), noSync: noSync}
	if err := os.RemoveAll(b.tmp); err != nil {
		return nil, fmt.Errorf("media store: %w", err)
	}
	for _, d := range []string{b.dir, b.tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("media store: %w", err)
		}
	}
	return b, nil
}

// path is where the blob with SHA-256 sum lives.
func (b *blobs) path(sum []byte) string { return filepath.Join(b.dir, hex.EncodeToString(sum)) }

// parseSum reads a blob name: 64 lowercase hex digits.
func parseSum(name string) ([]byte, bool) {
	if len(name) != 2*sha256.Size || name != string(bytes.ToLower([]byte(name))) {
		return nil, false
	}
	sum, err := hex.DecodeString(name)
	return sum, err == nil
}

// touch reports whether the blob exists and, if so, restarts its time to
// live: someone is about to reference it again.
func (b *blobs) touch(sum []byte, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return os.Chtimes(b.path(sum), now, now) == nil
}

// put stores exactly size bytes from r as the blob with SHA-256 sum. It
// reads at most size+1 bytes, so a body longer than announced costs nothing
// beyond the limit. Storing a blob that exists replaces it with the same
// bytes, which is harmless.
func (b *blobs) put(r io.Reader, size int64, sum []byte) (err error) {
	f, err := os.CreateTemp(b.tmp, "upload-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	body := &readTracker{r: io.LimitReader(r, size+1)}
	n, err := io.Copy(io.MultiWriter(f, h), body)
	switch {
	case err != nil && body.err != nil:
		return fmt.Errorf("%w after %d bytes: %v", errBlobCut, n, err)
	case err != nil:
		return fmt.Errorf("storing after %d bytes: %w", n, err)
	case n > size:
		return errBlobTooLarge
	case n < size:
		return fmt.Errorf("%w: %d of %d", errBlobShort, n, size)
	case !bytes.Equal(h.Sum(nil), sum):
		return errBlobHash
	}
	if !b.noSync {
		// The uploader sends its message once we answer: the blob must
		// survive a crash as an acked message does.
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	b.mu.Lock()
	err = os.Rename(f.Name(), b.path(sum))
	b.mu.Unlock()
	if err != nil {
		return err
	}
	if !b.noSync {
		return syncDir(b.dir)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// open returns the blob named by its hex SHA-256; fs.ErrNotExist when there
// is none (never uploaded, or expired).
func (b *blobs) open(name string) (io.ReadSeekCloser, error) {
	if _, ok := parseSum(name); !ok {
		return nil, fs.ErrNotExist
	}
	return os.Open(filepath.Join(b.dir, name))
}

// sweep removes the blobs nobody uploaded or re-announced for ttl, and
// returns how many. A message referencing one after that cannot be
// downloaded any more; WhatsApp's servers forget media the same way.
func (b *blobs) sweep(now time.Time, ttl time.Duration) (int, error) {
	entries, err := os.ReadDir(b.dir)
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, e := range entries {
		if b.expire(filepath.Join(b.dir, e.Name()), now, ttl) {
			removed++
		}
	}
	return removed, nil
}

func (b *blobs) expire(path string, now time.Time, ttl time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	info, err := os.Stat(path)
	if err != nil || now.Sub(info.ModTime()) < ttl {
		return false // gone meanwhile, or still young
	}
	return os.Remove(path) == nil
}

// count is how many blobs are stored.
func (b *blobs) count() int {
	entries, _ := os.ReadDir(b.dir)
	return len(entries)
}

// readTracker remembers whether a read failed, to tell a cut upload from a
// failing disk when io.Copy returns an error.
type readTracker struct {
	r   io.Reader
	err error
}

func (t *readTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}
