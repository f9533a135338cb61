package reports

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Kind says what an Event records.
type Kind uint8

// The event kinds. Their text forms are what report.json carries.
const (
	KindSend          Kind = iota + 1 // a device sent a message (Device, Msg, Stream, To, Digest)
	KindAck                           // the relay acked a send (Device is the sender)
	KindDecrypt                       // a device decrypted a message (Device, Msg, Digest)
	KindUndecryptable                 // a device could not decrypt a message (Device, Msg, Detail)
	KindReceipt                       // a receipt arrived (Device where it arrived, Msg, Receipt)
	KindConnect                       // a device connected to the relay
	KindDisconnect                    // a device lost or closed its connection (Detail: why)
	KindFaultStart                    // an injected fault began (Name, ID)
	KindFaultEnd                      // an injected fault ended (ID pairs it with its start)
	KindStep                          // a timed step of a flow (Name, Value, optional Device)
	KindWire                          // the relay handed a device a message (Device, Msg, Seq), before any deduplication
	KindShown                         // a device's chat or page shows a message (Device, Msg, Digest)
)

var kindNames = [...]string{
	KindSend:          "send",
	KindAck:           "ack",
	KindDecrypt:       "decrypt",
	KindUndecryptable: "undecryptable",
	KindReceipt:       "receipt",
	KindConnect:       "connect",
	KindDisconnect:    "disconnect",
	KindFaultStart:    "fault.start",
	KindFaultEnd:      "fault.end",
	KindStep:          "step",
	KindWire:          "wire",
	KindShown:         "shown",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// MarshalText writes the kind's name, so report.json stays readable.
func (k Kind) MarshalText() ([]byte, error) {
	if int(k) >= len(kindNames) || kindNames[k] == "" {
		return nil, fmt.Errorf("reports: unknown event kind %d", uint8(k))
	}
	return []byte(kindNames[k]), nil
}

// UnmarshalText reads a kind's name.
func (k *Kind) UnmarshalText(b []byte) error {
	for i, n := range kindNames {
		if n != "" && n == string(b) {
			*k = Kind(i)
			return nil
		}
	}
	return fmt.Errorf("reports: unknown event kind %q", b)
}

// ReceiptKind is the kind of a message receipt.
type ReceiptKind uint8

// Receipt kinds.
const (
	Delivered ReceiptKind = iota + 1 // the message reached a device of the recipient
	Read                             // the recipient opened it
)

func (k ReceiptKind) String() string {
	switch k {
	case Delivered:
		return "delivered"
	case Read:
		return "read"
	}
	return fmt.Sprintf("ReceiptKind(%d)", uint8(k))
}

// MarshalText writes "delivered" or "read".
func (k ReceiptKind) MarshalText() ([]byte, error) {
	if k != Delivered && k != Read {
		return nil, fmt.Errorf("reports: unknown receipt kind %d", uint8(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText reads "delivered" or "read".
func (k *ReceiptKind) UnmarshalText(b []byte) error {
	switch string(b) {
	case "delivered":
		*k = Delivered
	case "read":
		*k = Read
	default:
		return fmt.Errorf("reports: unknown receipt kind %q", b)
	}
	return nil
}

// Digest identifies a plaintext without keeping it: the first 16 bytes of its
// SHA-256. Sixteen bytes are plenty to tell a corrupted message from the one
// sent, and keep a million recorded events small. The zero Digest means "not
// known" and is never compared.
type Digest [16]byte

// DigestOf returns the digest of a plaintext. Senders and receivers must digest
// the same bytes (the message body as the user typed it, or a media file's
// plaintext).
func DigestOf(plaintext []byte) Digest {
	sum := sha256.Sum256(plaintext)
	var d Digest
	copy(d[:], sum[:])
	return d
}

// IsZero reports whether d is unknown.
func (d Digest) IsZero() bool { return d == Digest{} }

func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// MarshalText writes d in hex.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads d from hex.
func (d *Digest) UnmarshalText(b []byte) error {
	if len(b) != 2*len(d) {
		return fmt.Errorf("reports: digest %q: want %d hex digits", b, 2*len(d))
	}
	_, err := hex.Decode(d[:], b)
	return err
}

// Event is one thing a device did, on the recorder's clock. Which fields are
// set depends on Kind (see the Kind constants); the rest are zero.
type Event struct {
	Kind    Kind          `json:"kind"`
	Receipt ReceiptKind   `json:"receipt,omitzero"`
	At      time.Duration `json:"at_ns"` // since the recorder started, on the monotonic clock
	Device  string        `json:"device,omitzero"`
	Msg     string        `json:"msg,omitzero"`
	Seq     uint64        `json:"seq,omitzero"` // KindWire: the relay's queue position of the delivery
	Stream  string        `json:"stream,omitzero"`
	To      []string      `json:"to,omitzero"`
	Digest  Digest        `json:"digest,omitzero"`
	Name    string        `json:"name,omitzero"`
	Value   time.Duration `json:"value_ns,omitzero"`
	Detail  string        `json:"detail,omitzero"`
	ID      uint64        `json:"id,omitzero"`
	// Scenario and Labels say which scenario recorded the event (see
	// Recorder.ChildFor); empty for events of the run itself.
	Scenario string   `json:"scenario,omitzero"`
	Labels   []string `json:"labels,omitzero"`
}

// Scope is the scenario that recorded e.
func (e Event) Scope() Scope { return Scope{Scenario: e.Scenario, Labels: e.Labels} }
