package device

import (
	"time"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
)

// EventKind names an observable step of a device.
type EventKind int

const (
	Connected        EventKind = iota + 1 // greeted by the relay
	Disconnected                          // the link ended
	Sent                                  // a message was handed to the relay (Targets set)
	Acked                                 // the relay stored it durably
	Pushed                                // the relay handed over a message (MessageID, From, Seq set), before any deduplication
	Decrypted                             // a text message's ciphertext decrypted (From, Text set), before the chat deduplicates it
	Received                              // a message stored in its chat, as the user sees it (From, Text set)
	Undecryptable                         // a delivery failed to decrypt; a retry was asked for (Retry set)
	ReceiptIn                             // a receipt for our message arrived (Receipt set)
	LoggedOut                             // the relay removed this device
	MediaUploaded                         // our media blob is in the relay's store (Media, Took set)
	MediaReceived                         // a media message arrived; its blob is not fetched yet (Media set)
	MediaDownloaded                       // a media blob was fetched and verified (Media, Took set)
	MediaRejected                         // a media blob failed its MAC or hash check, or could not be fetched (Err set)
	HistoryShown                          // a history sync with chats was imported: its chats are listed
	Replaced                              // another connection of this device took over; the device stopped (Err set)
	UntrustedDevice                       // the relay offered a device its account does not vouch for (From, Err set)
	IdentityChanged                       // a peer's phone has a new identity key (Chat set): the safety number changed
	RetriesExhausted                      // a delivery still failed to decrypt after maxRetries retry receipts; its placeholder stays
	Outdated                              // the relay refused this client's version; the device stopped (Err says what is needed)
	SyncSent                              // a change of our synced state went to our other devices (MessageID, Text: the key)
	SyncApplied                           // another device's change of our synced state was merged (From, Text: the key)
	CallOffered                           // we offered a call (MessageID: the call id, Chat: the callee)
	CallRings                             // a call offer arrived and rings (MessageID, Chat, From); on a companion only a notice
	CallAnswered                          // the callee's phone accepted or rejected (Text: "accepted" or "rejected")
	CallOver                              // a call ended (Text: "ended" or "missed")
	CallRefused                           // a call answer from a device that may not answer was ignored (From, Err)
	RequestRepeated                       // a request goes to the relay again after it was refused for now, failed or not answered in time (MessageID set for a Send; Err: the last failure; see Call)
)

var kindNames = map[EventKind]string{
	Connected: "connected", Disconnected: "disconnected", Sent: "sent", Acked: "acked",
	Pushed: "pushed", Decrypted: "decrypted", Received: "received", Undecryptable: "undecryptable", ReceiptIn: "receipt", LoggedOut: "logged-out",
	MediaUploaded: "media-uploaded", MediaReceived: "media-received", MediaDownloaded: "media-downloaded",
	MediaRejected: "media-rejected", HistoryShown: "history-shown", Replaced: "replaced", UntrustedDevice: "untrusted-device",
	IdentityChanged: "identity-changed", RetriesExhausted: "retries-exhausted", Outdated: "outdated",
	SyncSent: "sync-sent", SyncApplied: "sync-applied", CallOffered: "call-offered", CallRings: "call-ringing",
	CallAnswered: "call-answered", CallOver: "call-ended", CallRefused: "call-refused", RequestRepeated: "request-repeated",
}

func (k EventKind) String() string { return kindNames[k] }

// Event is one step a device took, for recorders. Plaintext appears here
// because the harness checks it; it never goes to the relay.
type Event struct {
	Kind      EventKind
	Device    string      // Config.Name
	Address   e2e.Address // the device's own address
	At        time.Time
	MessageID string
	Chat      string        // the peer user the message belongs to
	From      e2e.Address   // Received, Undecryptable, ReceiptIn: who sent it
	Targets   []e2e.Address // Sent: every device it was encrypted for
	Text      string
	Receipt   pb.ReceiptType
	Err       error
	Media     *Media        // media events, and Sent for a media message
	Took      time.Duration // MediaUploaded, MediaDownloaded: how long the transfer took
	Seq       uint64        // Pushed: the relay's queue position of the delivery
	Retry     int           // Undecryptable: which retry receipt this is (1 for the first); RetriesExhausted: how many were sent
}

// emit stamps e with the device's identity and the time and hands it on.
func (d *Device) emit(e Event) {
	e.Device, e.Address, e.At = d.cfg.Name, d.self, time.Now()
	d.cfg.Events(e)
}
