package harness

import (
	"sync"

	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/sim/device"
)

// Media steps: one histogram per direction and size bucket, named
// "media.upload.<bucket>" and "media.download.<bucket>" (MediaStep). An
// upload runs from the start of encryption to the relay's answer to the
// PUT; a download from the first request to the verified plaintext.
const (
	StepMediaUpload   = "media.upload"
	StepMediaDownload = "media.download"
)

// MediaStep names the step for a transfer of a file of size bytes
// (plaintext): the bucket is the smallest of 64KiB, 1MiB, 10MiB and 50MiB
// that holds it, or "large" above 50 MiB.
func MediaStep(step string, size int64) string {
	switch {
	case size <= 64<<10:
		return step + ".64KiB"
	case size <= 1<<20:
		return step + ".1MiB"
	case size <= 10<<20:
		return step + ".10MiB"
	case size <= 50<<20:
		return step + ".50MiB"
	default:
		return step + ".large"
	}
}

// digestOf is the ledger's digest of what a message says: its text, or its
// media file's plaintext (the sender hashed it while encrypting, the
// receiver verified the same hash while decrypting).
func digestOf(e device.Event) reports.Digest {
	if e.Media == nil {
		return reports.DigestOf([]byte(e.Text))
	}
	var d reports.Digest
	copy(d[:], e.Media.FileSHA256)
	return d
}

// mediaLedger decides which media events the ledger sees. A media message
// counts as received on a device when its blob first verified there: the
// file is what the user gets, and its digest is the file's. Only messages
// delivered to the device count, not media in an imported history (which
// the ledger never addressed to it), and a second download of a message is
// no duplicate delivery.
type mediaLedger struct {
	mu sync.Mutex
	// state per (device, message): delivered, then downloaded.
	state map[[2]string]mediaState
}

type mediaState uint8

const (
	mediaDelivered mediaState = iota + 1
	mediaDownloaded
)

// advance moves (device, msg) from state from to state to, reporting
// whether it was in from.
func (l *mediaLedger) advance(device, msg string, from, to mediaState) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == nil {
		l.state = make(map[[2]string]mediaState)
	}
	k := [2]string{device, msg}
	if l.state[k] != from {
		return false
	}
	l.state[k] = to
	return true
}

func (l *mediaLedger) delivered(device, msg string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state[[2]string{device, msg}] == mediaDelivered
}

// recordMedia turns media events into steps and ledger events.
func (r *recorder) recordMedia(e device.Event) {
	switch e.Kind {
	case device.MediaUploaded:
		r.rec.Step(MediaStep(StepMediaUpload, e.Media.Size), e.Device, e.Took)
	case device.MediaReceived:
		r.media.advance(e.Device, e.MessageID, 0, mediaDelivered)
	case device.MediaDownloaded:
		r.rec.Step(MediaStep(StepMediaDownload, e.Media.Size), e.Device, e.Took)
		if r.media.advance(e.Device, e.MessageID, mediaDelivered, mediaDownloaded) {
			r.rec.Decrypted(e.Device, e.MessageID, digestOf(e))
		}
	case device.MediaRejected:
		if r.media.delivered(e.Device, e.MessageID) {
			r.rec.Undecryptable(e.Device, e.MessageID, errString(e.Err))
		}
	}
}
