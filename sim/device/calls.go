package device

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
)

// Calls are signalling only (docs/protocol.md §17): offer, accept, reject
// and end, end to end encrypted like messages, and made and answered on
// phones. A companion hears of an offer so it can say "Call on your phone",
// and of the answer so it can stop saying it.

// ErrCallsOnPhone is returned when a companion tries to make, answer or end
// a call: calls belong to the phone.
var ErrCallsOnPhone = errors.New("calls are made and answered on the phone")

// CallRingTimeout is how old an offer (by the caller's clock) may be and
// still ring; an older one, e.g. queued while the phone was off, is a missed
// call.
const CallRingTimeout = 45 * time.Second

// CallState is where a call is.
type CallState int

const (
	CallRinging  CallState = iota + 1 // offered, not answered yet
	CallAccepted                      // the callee's phone accepted
	CallRejected                      // the callee's phone rejected
	CallEnded                         // hung up after it was accepted, or cancelled while ringing
	CallMissed                        // the offer arrived too late to ring
)

func (s CallState) String() string {
	return [...]string{"", "ringing", "accepted", "rejected", "ended", "missed"}[s]
}

// Call is one call as a device knows it. Calls live in memory only: a call
// does not outlast the device that saw it ring.
type Call struct {
	ID       string
	Peer     string // the other party
	Outgoing bool   // this user called
	Video    bool
	State    CallState
	Offered  time.Time // the caller's clock
}

type calls struct {
	mu sync.Mutex
	by map[string]*Call
}

// Calls lists the calls this device knows of, oldest offer first.
func (d *Device) Calls() []Call {
	d.calls.mu.Lock()
	defer d.calls.mu.Unlock()
	out := make([]Call, 0, len(d.calls.by))
	for _, c := range d.calls.by {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b Call) int { return cmp.Or(a.Offered.Compare(b.Offered), cmp.Compare(a.ID, b.ID)) })
	return out
}

// StartCall offers peer a call and returns its id. Only a phone may call.
func (d *Device) StartCall(ctx context.Context, peer string, video bool) (string, error) {
	if !d.Primary() {
		return "", fmt.Errorf("%s: call %s: %w", d.cfg.Name, peer, ErrCallsOnPhone)
	}
	if err := d.checkPeer(peer); err != nil {
		return "", err
	}
	id, now := NewMessageID(), time.Now()
	d.setCall(&Call{ID: id, Peer: peer, Outgoing: true, Video: video, State: CallRinging, Offered: now})
	d.emit(Event{Kind: CallOffered, MessageID: id, Chat: peer})
	sig := &pb.Call{CallId: id, Action: pb.CallAction_CALL_OFFER, Video: video, SentUnixMs: now.UnixMilli()}
	if err := d.signal(ctx, peer, sig); err != nil {
		return "", fmt.Errorf("%s: call %s: %w", d.cfg.Name, peer, err)
	}
	return id, nil
}

// AcceptCall accepts the ringing call id; only the phone may.
func (d *Device) AcceptCall(ctx context.Context, id string) error {
	return d.answerCall(ctx, id, pb.CallAction_CALL_ACCEPT)
}

// RejectCall rejects the ringing call id; only the phone may.
func (d *Device) RejectCall(ctx context.Context, id string) error {
	return d.answerCall(ctx, id, pb.CallAction_CALL_REJECT)
}

// EndCall hangs up call id (or cancels it while it rings); only the phone
// may.
func (d *Device) EndCall(ctx context.Context, id string) error {
	return d.answerCall(ctx, id, pb.CallAction_CALL_END)
}

func (d *Device) answerCall(ctx context.Context, id string, action pb.CallAction) error {
	if !d.Primary() {
		return fmt.Errorf("%s: %s call %s: %w", d.cfg.Name, action, id, ErrCallsOnPhone)
	}
	d.calls.mu.Lock()
	c, ok := d.calls.by[id]
	var peer string
	var err error
	switch {
	case !ok:
		err = errors.New("no such call")
	case action != pb.CallAction_CALL_END && (c.Outgoing || c.State != CallRinging):
		err = fmt.Errorf("the call is %s, not ringing here", c.State)
	case action == pb.CallAction_CALL_END && c.State != CallRinging && c.State != CallAccepted:
		err = fmt.Errorf("the call is already %s", c.State)
	default:
		peer = c.Peer
		c.State = stateAfter(action)
	}
	d.calls.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %s call %s: %w", d.cfg.Name, action, id, err)
	}
	sig := &pb.Call{CallId: id, Action: action, SentUnixMs: time.Now().UnixMilli()}
	if err := d.signal(ctx, peer, sig); err != nil {
		return fmt.Errorf("%s: %s call %s: %w", d.cfg.Name, action, id, err)
	}
	return nil
}

func stateAfter(action pb.CallAction) CallState {
	switch action {
	case pb.CallAction_CALL_ACCEPT:
		return CallAccepted
	case pb.CallAction_CALL_REJECT:
		return CallRejected
	default:
		return CallEnded
	}
}

// signal sends call signalling to every device of peer and, as copies, to
// our own: companions show the notice and clear it again. Each signal is its
// own message (a message id the relay deduplicates), kept for retries.
func (d *Device) signal(ctx context.Context, peer string, sig *pb.Call) error {
	id := NewMessageID()
	c := &pb.Content{Kind: &pb.Content_Call{Call: sig}}
	if err := d.keepSent(id, peer, c); err != nil {
		return err
	}
	return d.fanOut(ctx, id, peer, c, nil)
}

func (d *Device) setCall(c *Call) {
	d.calls.mu.Lock()
	defer d.calls.mu.Unlock()
	d.calls.by[c.ID] = c
}

// receiveCall applies call signalling. Only phones signal: an offer or an
// answer from a companion (which the reference companion never sends, but
// somebody's own client could) is ignored, so a web client cannot answer a
// call, even by forging the signal.
func (d *Device) receiveCall(from e2e.Address, sig *pb.Call) error {
	own := from.User == d.self.User
	peer := from.User
	if own {
		peer = sig.ChatUser
	}
	if from.Device != 0 {
		err := fmt.Errorf("%s signal for call %s from companion %s: %w", sig.Action, sig.CallId, from, ErrCallsOnPhone)
		d.log.Warn("call signal from a companion ignored", "err", err)
		d.emit(Event{Kind: CallRefused, MessageID: sig.CallId, Chat: peer, From: from, Err: err})
		return nil
	}
	if peer == "" || sig.CallId == "" {
		d.log.Warn("call signal without a call or a peer", "from", from.String())
		return nil
	}
	if ev, ok := d.applyCall(own, peer, sig); ok {
		ev.MessageID, ev.Chat, ev.From = sig.CallId, peer, from
		d.emit(ev)
	}
	return nil
}

// applyCall moves the call sig names to its next state and returns the
// event that reports it; false when the signal changes nothing (a resend,
// an answer to a call not ringing, a third user's signal, our phone's own
// offer).
func (d *Device) applyCall(own bool, peer string, sig *pb.Call) (Event, bool) {
	d.calls.mu.Lock()
	defer d.calls.mu.Unlock()
	c, known := d.calls.by[sig.CallId]
	if known && c.Peer != peer {
		return Event{}, false // only the call's two parties signal about it
	}
	switch sig.Action {
	case pb.CallAction_CALL_OFFER:
		if known {
			return Event{}, false
		}
		c = &Call{ID: sig.CallId, Peer: peer, Outgoing: own, Video: sig.Video, State: CallRinging, Offered: sentTime(sig.SentUnixMs)}
		d.calls.by[c.ID] = c
		switch {
		case own: // our phone calls: nothing rings here
			return Event{}, false
		case time.Since(c.Offered) > CallRingTimeout:
			c.State = CallMissed
			return Event{Kind: CallOver, Text: CallMissed.String()}, true
		}
		return Event{Kind: CallRings}, true
	case pb.CallAction_CALL_ACCEPT, pb.CallAction_CALL_REJECT:
		if !known || c.State != CallRinging {
			return Event{}, false
		}
		c.State = stateAfter(sig.Action)
		return Event{Kind: CallAnswered, Text: c.State.String()}, true
	case pb.CallAction_CALL_END:
		if !known || (c.State != CallRinging && c.State != CallAccepted) {
			return Event{}, false
		}
		c.State = CallEnded
		return Event{Kind: CallOver, Text: c.State.String()}, true
	}
	return Event{}, false
}
