package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Media blobs live in the object store linksim_media, named by their hex
// SHA-256; an object's modification time is when it was last stored or
// touched, which is what the relay's MediaTTL counts from.

// mediaTimeout bounds one blob's transfer to or from the object store.
const mediaTimeout = 10 * time.Minute

// PutBlob stores what r yields as the blob name. r must fail (not end)
// when the bytes are not the ones announced: nothing is stored then.
func (n *Node) PutBlob(name string, r io.Reader) error {
	ctx, cancel := context.WithTimeout(context.Background(), mediaTimeout)
	defer cancel()
	_, err := n.obs.Put(ctx, jetstream.ObjectMeta{Name: name}, r)
	return err
}

// TouchBlob reports whether the blob exists and, if so, restarts its time
// to live.
func (n *Node) TouchBlob(name string) bool {
	ctx, cancel := n.ctx()
	defer cancel()
	return n.obs.UpdateMeta(ctx, name, jetstream.ObjectMeta{Name: name}) == nil
}

// OpenBlob returns the blob's bytes, fs.ErrNotExist when there is none. The
// whole blob is read, because a download may ask for any range of it.
func (n *Node) OpenBlob(name string) (io.ReadSeekCloser, error) {
	ctx, cancel := context.WithTimeout(context.Background(), mediaTimeout)
	defer cancel()
	b, err := n.obs.GetBytes(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fs.ErrNotExist
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: media blob: %w", err)
	}
	return nopCloser{bytes.NewReader(b)}, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// SweepBlobs deletes the blobs not stored or touched for ttl. Every node
// sweeps; deleting what another node deleted first is harmless.
func (n *Node) SweepBlobs(now time.Time, ttl time.Duration) (int, error) {
	ctx, cancel := n.ctx()
	defer cancel()
	infos, err := n.obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cluster: sweep media: %w", err)
	}
	removed := 0
	for _, info := range infos {
		if now.Sub(info.ModTime) < ttl {
			continue
		}
		if err := n.obs.Delete(ctx, info.Name); err == nil {
			removed++
		}
	}
	return removed, nil
}

// CountBlobs is how many blobs the cluster keeps; 0 when NATS does not
// answer (it feeds a gauge).
func (n *Node) CountBlobs() int {
	ctx, cancel := n.ctx()
	defer cancel()
	infos, err := n.obs.List(ctx)
	if err != nil {
		return 0
	}
	return len(infos)
}
