package harness

import (
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
)

// recorder turns device events into report events, naming devices by the
// names the harness gave them rather than by protocol address.
type recorder struct {
	rec *reports.Recorder

	// mu is read on every device event (names): readers must not queue
	// behind each other, as 19,000 devices' read loops did on a Mutex.
	mu    sync.RWMutex
	names map[e2e.Address]string
	// scans holds when each phone (by user) last scanned a companion's QR
	// code, until the companion shows the history: pair.chats_shown.
	scans map[string]time.Time
	media mediaLedger
	// webs are the names of browser web clients; toWeb, for each message
	// sent to any of them, those targets: a page that shows a message asks
	// here whether it was addressed to it, rather than building the ledger
	// over every event of a run on each look.
	webs  map[string]bool
	toWeb map[string][]string
	// mirrors lists, per phone, the mirror web clients it serves: every
	// message the phone sends or is sent is owed to them too. asked holds
	// every send a mirror web client asked its phone for, by message id.
	mirrors map[e2e.Address][]string
	asked   map[string]mirrorAsk
	calls   callClock
}

func newRecorder(rec *reports.Recorder) *recorder {
	return &recorder{rec: rec, names: make(map[e2e.Address]string), scans: make(map[string]time.Time),
		webs: make(map[string]bool), toWeb: make(map[string][]string),
		mirrors: make(map[e2e.Address][]string), asked: make(map[string]mirrorAsk)}
}

// web notes that the device named name is a browser web client.
func (r *recorder) web(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.webs[name] = true
}

// send records a send; a resend replaces the message's targets.
func (r *recorder) send(from, msg, stream string, to []string, digest reports.Digest) {
	r.mu.Lock()
	var webs []string
	for _, d := range to {
		if r.webs[d] {
			webs = append(webs, d)
		}
	}
	if webs != nil || r.toWeb[msg] != nil {
		r.toWeb[msg] = webs
	}
	r.mu.Unlock()
	r.rec.Send(from, msg, stream, to, digest)
}

// webTargets returns the browser web clients msg was sent to; false when
// no send of msg to any of them is recorded (yet).
func (r *recorder) webTargets(msg string) ([]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	to, ok := r.toWeb[msg]
	return to, ok
}

// scanned notes that the phone of user scans a QR code now.
func (r *recorder) scanned(user string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.scans[user] = at
}

// historyShown records pair.chats_shown for a companion that lists the
// history its phone sent: from the scan to the chats listed.
func (r *recorder) historyShown(e device.Event) {
	r.mu.Lock()
	start, ok := r.scans[e.From.User]
	delete(r.scans, e.From.User)
	r.mu.Unlock()
	if ok {
		r.rec.Step(StepChatsShown, e.Device, e.At.Sub(start))
	}
}

func (r *recorder) name(a e2e.Address) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if n, ok := r.names[a]; ok {
		return n
	}
	return a.String()
}

func (r *recorder) learn(a e2e.Address, name string) {
	r.mu.RLock()
	known := r.names[a] == name
	r.mu.RUnlock()
	if known {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.names[a] = name
}

var receiptKinds = map[pb.ReceiptType]reports.ReceiptKind{
	pb.ReceiptType_DELIVERED: reports.Delivered,
	pb.ReceiptType_READ:      reports.Read,
}

func (r *recorder) record(e device.Event) {
	if e.Address.User != "" {
		r.learn(e.Address, e.Device)
	}
	switch e.Kind {
	case device.Sent:
		to := make([]string, len(e.Targets))
		for i, a := range e.Targets {
			to[i] = r.name(a)
		}
		to = r.withMirrors(e, to)
		// A stream is one sender's chat: order is promised within it.
		r.send(e.Device, e.MessageID, e.Device+">"+e.Chat, to, digestOf(e))
	case device.Acked:
		r.rec.Ack(e.Device, e.MessageID)
	case device.Pushed:
		r.rec.Wire(e.Device, e.MessageID, e.Seq)
	case device.Decrypted:
		r.rec.Decrypted(e.Device, e.MessageID, reports.DigestOf([]byte(e.Text)))
	case device.Received:
		r.rec.Shown(e.Device, e.MessageID, reports.DigestOf([]byte(e.Text)))
	case device.Undecryptable:
		r.rec.Undecryptable(e.Device, e.MessageID, errString(e.Err))
	case device.ReceiptIn:
		if k, ok := receiptKinds[e.Receipt]; ok {
			r.rec.Receipt(e.Device, e.MessageID, k)
		}
	case device.MediaUploaded, device.MediaReceived, device.MediaDownloaded, device.MediaRejected:
		r.recordMedia(e)
	case device.CallOffered, device.CallRings, device.CallAnswered, device.CallOver:
		r.recordCall(e)
	case device.HistoryShown:
		r.historyShown(e)
	case device.Connected:
		r.rec.Connect(e.Device)
	case device.Disconnected, device.LoggedOut:
		r.rec.Disconnect(e.Device, strings.ToLower(e.Kind.String()))
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Check runs the ledger over everything recorded so far and returns an error
// listing every problem (lost, duplicated, reordered, corrupted,
// undecryptable), one per line, or nil for a clean run. A ledger without a
// message is an error, not a clean run: the flow sent nothing or its events
// were lost on the way.
func (e *Env) Check() error {
	l := e.Ledger()
	if l.Totals.Messages == 0 && len(e.rec.unsent(&l)) == 0 {
		return errEmptyLedger
	}
	lines := e.rec.unsent(&l)
	if l.Totals.Problems() == 0 && len(lines) == 0 {
		return nil
	}
	for _, p := range l.Problems {
		lines = append(lines, p.String())
	}
	return errors.New("ledger: " + strings.Join(lines, "\n"))
}

// Ledger is the verdict on everything recorded so far.
// On a streaming recorder (load runs) it reads counters, and Message knows
// only the messages still in flight.
func (e *Env) Ledger() reports.Ledger { return e.rec.rec.Ledger() }

// Recorder is the run's event recorder.
func (e *Env) Recorder() *reports.Recorder { return e.rec.rec }
