package device

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/linksim/linksim/sim/wire/pb"
)

// Call sends one request and returns the relay's answer (see callLinked),
// sending it again while the relay cannot take it for a while:
//   - after RATE_LIMITED or QUEUE_FULL it waits the time the relay names,
//     or backs off, at most busyAttempts tries in all, then fails with an
//     error naming the code;
//   - a request safe to repeat (resendable) that the relay answered
//     INTERNAL, or did not answer within CallTimeout while the link stayed
//     up, is sent again, the very same frame, backing off, until ResendFor
//     after the first try; then it fails with the last failure.
//
// Every such repeat is a RequestRepeated event. Any other answer is final,
// returned at once.
func (d *Device) Call(ctx context.Context, f *pb.Frame) (*pb.Frame, error) {
	giveUp := time.Now().Add(d.cfg.ResendFor)
	busy, failed := 0, 0
	for {
		ans, err := d.callLinked(ctx, f)
		if err == nil {
			return ans, nil
		}
		code := Code(err)
		why := code.String()
		var wait time.Duration
		switch {
		case code == pb.ErrorCode_RATE_LIMITED || code == pb.ErrorCode_QUEUE_FULL:
			busy++
			if wait, err = d.busyWait(busy, err); err != nil {
				return nil, err
			}
		case failedForNow(err) && resendable(f):
			if errors.Is(err, errNoAnswer) {
				why = "no answer"
			}
			failed++
			wait = d.backoff(failed)
			if time.Now().Add(wait).After(giveUp) {
				return nil, fmt.Errorf("%s: gave up sending the request again after %v: %w", d.cfg.Name, d.cfg.ResendFor, err)
			}
		default:
			return nil, err
		}
		d.log.Info("sending a request again", "request", fmt.Sprintf("%T", f.GetBody()), "msg", f.GetSend().GetMessageId(), "after", why, "wait", wait)
		if err := d.pause(ctx, wait); err != nil {
			return nil, fmt.Errorf("%s: waiting to retry after %s: %w", d.cfg.Name, why, err)
		}
		d.emit(Event{Kind: RequestRepeated, MessageID: f.GetSend().GetMessageId(), Err: err})
	}
}

// failedForNow reports whether err leaves a request undone as far as the
// device knows, by a failure that may clear with time: the relay answered
// INTERNAL (a cluster node's write while a NATS stream elects its leader,
// a full disk), or nothing within CallTimeout on a link that stayed up.
func failedForNow(err error) bool {
	return Code(err) == pb.ErrorCode_INTERNAL || errors.Is(err, errNoAnswer)
}

// resendable reports whether f may go to the relay again not knowing
// whether the relay did it: it may have stored part of a Send before it
// failed, and after no answer it may still be at it (the repeat is then
// answered after the first, docs/protocol.md §2 "Order of answers").
//   - Send: the relay deduplicates a Send by message id, acking a repeat of
//     one it took without enqueuing anything; a direct Send is not
//     deduplicated, but a repeat is the same ciphertext, which the
//     receiver drops as a redelivery, its message key used (§8, §9).
//   - GetDevices, GetProfile: reads.
//   - FetchBundles: a read, but for the one-time prekeys it hands out: a
//     repeat takes fresh ones, and those of a lost answer are never used.
//     It costs the target a prekey, never a wrong session.
//
// Not repeated, as a repeat can do what the first did not mean to:
// SendReceipt (not deduplicated: a second receipt, or a second retry
// request), SetProfile and SetKeyIndexList (a late repeat could undo a
// change made meanwhile on another device), RemoveDevices, MediaUpload
// (each token counts against the device's quota) and PairScan.
func resendable(f *pb.Frame) bool {
	switch f.GetBody().(type) {
	case *pb.Frame_Send, *pb.Frame_GetDevices, *pb.Frame_GetProfile, *pb.Frame_FetchBundles:
		return true
	}
	return false
}

// repeatable reports whether f may go again on the next connection when the
// link ended before its answer. Beyond the resendable requests, those whose
// repeat does what the first meant, the user's wish standing: the same
// profile, the same signed list (the relay takes one as new as its own),
// a receipt (the sender keeps the first), a fresh upload token (the lost
// one is never used). Not RemoveDevices and PairScan: a repeat of one the
// relay did fails (UNKNOWN_DEVICE, an unknown ref); their callers ask the
// device list instead.
func repeatable(f *pb.Frame) bool {
	switch f.GetBody().(type) {
	case *pb.Frame_SetProfile, *pb.Frame_SetKeyIndexList, *pb.Frame_SendReceipt, *pb.Frame_MediaUpload:
		return true
	}
	return resendable(f)
}
