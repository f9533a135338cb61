package harness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/webclient/driver"
)

// Attach sends the file at path with caption in the open conversation (see
// driver.Page.Attach) and records the send in the ledger like Send, with
// the file's SHA-256 as its digest (what a receiver's verified download
// must show).
func (w *Web) Attach(ctx context.Context, path, caption string) (driver.Message, error) {
	sum, err := fileSHA256(path)
	if err != nil {
		return driver.Message{}, fmt.Errorf("harness: %s: attach: %w", w.name, err)
	}
	peer, to, err := w.targets(ctx, "attach")
	if err != nil {
		return driver.Message{}, err
	}
	m, err := w.Page.Attach(ctx, path, caption)
	if err != nil {
		return m, err
	}
	var d reports.Digest
	copy(d[:], sum[:]) // as native senders do: the digest is the SHA-256's start
	w.recordSend(m, peer, to, d)
	return m, nil
}

// DownloadMedia has the page download and verify the file of message id
// (see driver.Page.DownloadMedia) and records the outcome: the first
// verified download of a message w must receive counts as its receipt, a
// rejection as undecryptable.
func (w *Web) DownloadMedia(ctx context.Context, id string) (driver.Message, error) {
	m, err := w.Page.DownloadMedia(ctx, id)
	if err != nil {
		return m, err
	}
	w.record([]driver.Message{m})
	return m, nil
}

// mediaDigest is the ledger digest of a verified file the page shows with
// SHA-256 sum (hex).
func mediaDigest(sum string) (reports.Digest, bool) {
	var d reports.Digest
	b, err := hex.DecodeString(sum)
	if err != nil || len(b) != sha256.Size {
		return d, false
	}
	copy(d[:], b)
	return d, true
}

// recordRejected records media messages whose file the page rejected (id
// -> the error shown) as undecryptable, for the messages the ledger
// addressed to w, once per error shown.
func (w *Web) recordRejected(rejected map[string]string) {
	if len(rejected) == 0 {
		return
	}
	ledger := w.env.Ledger()
	for id, why := range rejected {
		st, known := ledger.Message(id)
		if !known || !slices.Contains(st.Targets, w.name) {
			continue
		}
		w.mu.Lock()
		w.rejected[id] = why
		w.mu.Unlock()
		w.env.rec.rec.Undecryptable(w.name, id, why)
	}
}

func fileSHA256(path string) ([32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}
