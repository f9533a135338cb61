package relay

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/linksim/linksim/sim/cluster"
)

// clusterBlobs keeps media blobs in the cluster's object store, so that a
// blob uploaded through one node downloads from any.
type clusterBlobs struct{ n *cluster.Node }

func (b clusterBlobs) touch(sum []byte, _ time.Time) bool {
	return b.n.TouchBlob(hex.EncodeToString(sum))
}

// put streams the upload into the object store through a reader that fails
// at the end unless the bytes are the announced ones, so the object store
// keeps nothing that did not verify.
func (b clusterBlobs) put(r io.Reader, size int64, sum []byte) error {
	v := &verifier{r: io.LimitReader(r, size+1), size: size, sum: sum, h: sha256.New()}
	err := b.n.PutBlob(hex.EncodeToString(sum), v)
	for _, known := range []error{errBlobTooLarge, errBlobShort, errBlobHash, errBlobCut} {
		if errors.Is(err, known) {
			return err
		}
	}
	if err != nil {
		return fmt.Errorf("storing after %d bytes: %w", v.n, err)
	}
	return nil
}

func (b clusterBlobs) open(name string) (io.ReadSeekCloser, error) { return b.n.OpenBlob(name) }

func (b clusterBlobs) sweep(now time.Time, ttl time.Duration) (int, error) {
	return b.n.SweepBlobs(now, ttl)
}

func (b clusterBlobs) count() int { return b.n.CountBlobs() }

// verifier passes an upload through, checking its size and hash: its last
// read fails instead of ending when they are not the announced ones.
type verifier struct {
	r    io.Reader
	size int64
	sum  []byte
	h    hash.Hash
	n    int64
}

func (v *verifier) Read(p []byte) (int, error) {
	k, err := v.r.Read(p)
	v.h.Write(p[:k])
	v.n += int64(k)
	switch {
	case v.n > v.size:
		return 0, errBlobTooLarge
	case err == io.EOF && v.n < v.size:
		return 0, fmt.Errorf("%w: %d of %d", errBlobShort, v.n, v.size)
	case err == io.EOF && !bytes.Equal(v.h.Sum(nil), v.sum):
		return 0, errBlobHash
	case err != nil && err != io.EOF:
		return 0, fmt.Errorf("%w after %d bytes: %v", errBlobCut, v.n, err)
	}
	return k, err
}
