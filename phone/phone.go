// Package phone is the simulated primary device: it owns an account, its
// contacts and chats, scans companions' QR codes (as text, or as an image
// through a simulated camera) to link them, sends them the chat history, and
// unlinks them.
package phone

import (
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/linksim/linksim/phone/camera"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
)

const (
	// keyKeyIndex holds the last companion key index given out, so a
	// restarted phone never hands out one twice.
	keyKeyIndex = "phone/key-index"
	// historyPerChat bounds how many recent messages of each chat a new
	// companion gets.
	historyPerChat = 100
)

// Phone is an account's primary device. Its device methods (SendText, Chats,
// MarkRead, SetAbout, ...) are promoted from device.Device.
type Phone struct {
	*device.Device
	mirror *mirrors
}

// Register creates the account user, with this phone as device 0.
func Register(ctx context.Context, cfg device.Config, user, pushName string) (*Phone, error) {
	cfg, m := withMirror(cfg)
	d, err := device.Register(ctx, cfg, user, pushName)
	if err != nil {
		return nil, err
	}
	return started(d, m)
}

// Open resumes a phone kept in cfg.State.
func Open(ctx context.Context, cfg device.Config) (*Phone, error) {
	cfg, m := withMirror(cfg)
	d, err := device.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if !d.Primary() {
		d.Close()
		return nil, fmt.Errorf("%s: open: the state holds companion %s, not a phone", cfg.Name, d.Self())
	}
	return started(d, m)
}

// started is the phone of d, serving its mirror companions.
func started(d *device.Device, m *mirrors) (*Phone, error) {
	p := &Phone{Device: d, mirror: m}
	if err := m.start(p); err != nil {
		d.Close()
		return nil, fmt.Errorf("%s: mirror companions: %w", d.Name(), err)
	}
	return p, nil
}

// AddContact names a user in the phone's contacts, and so on every linked
// companion (synced, docs/protocol.md §18) and in the history a new
// companion receives.
func (p *Phone) AddContact(ctx context.Context, user, name string) error {
	return p.SetContact(ctx, user, name)
}

// Scan links the companion whose QR payload is qr: it signs the companion's
// device identity, seals the history into the scan, and waits for the relay
// to link it. A companion that did not take that history (or a history too
// large for the scan) gets it as a message after the link, and so does one
// that took it if the history changed meanwhile. It returns the new
// device's id.
func (p *Phone) Scan(ctx context.Context, qr string) (uint32, error) {
	q, err := e2e.ParseQR(qr)
	if err != nil {
		return 0, fmt.Errorf("%s: scan: %w", p.Name(), err)
	}
	k, err := p.nextKeyIndex(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: scan: %w", p.Name(), err)
	}
	scanned, err := p.VouchFor(ctx, k)
	if err != nil {
		return 0, fmt.Errorf("%s: scan: %w", p.Name(), err)
	}
	defer scanned()
	id := &pb.DeviceIdentity{User: p.Self().User, Device: k, TimestampUnix: time.Now().Unix(), KeyIndex: k}
	signed, err := e2e.SignDeviceIdentity(p.Signal(), id, q.IdentityKey, q.AdvSecret)
	if err != nil {
		return 0, fmt.Errorf("%s: scan: %w", p.Name(), err)
	}
	history := p.HistoryBundle(historyOf(p))
	sealed, err := sealHistory(history, q, signed)
	if err != nil {
		return 0, fmt.Errorf("%s: scan: %w", p.Name(), err)
	}
	scan := &pb.PairScan{Ref: q.Ref, CompanionNoiseKey: q.NoiseKey, CompanionIdentityKey: q.IdentityKey, Identity: signed, History: sealed}
	// The device id is the phone's choice (k): a scan the relay took shows
	// as k in the account's list.
	ans, err := p.CallUnlessDone(ctx, &pb.Frame{Body: &pb.Frame_PairScan{PairScan: scan}}, func(have []uint32) bool {
		return slices.Contains(have, k)
	})
	if err != nil {
		return 0, fmt.Errorf("%s: scan: %w", p.Name(), err)
	}
	// An answer lost with the link leaves it unknown whether the
	// companion took the history: it gets it again, and skips what it holds.
	dev := k
	if ans != nil {
		dev = ans.GetLinked().GetDevice()
		if ans.GetLinked().GetHistoryTaken() {
			// What the phone received between sealing and the link
			// reached the companion neither way.
			now := p.HistoryBundle(historyOf(p))
			if proto.Equal(now, history) {
				return dev, nil
			}
			history = now
		}
	}
	if err := p.SendHistory(ctx, e2e.Address{User: p.Self().User, Device: dev}, history); err != nil {
		return dev, fmt.Errorf("%s: linked device %d but history sync failed: %w", p.Name(), dev, err)
	}
	return dev, nil
}

// sealHistory is history sealed for the companion of q and the scan's
// signed identity, or nil when it is too large for a scan (it then goes
// as a message, through the media store).
func sealHistory(history *pb.HistorySync, q e2e.QR, signed *pb.SignedDeviceIdentityHMAC) ([]byte, error) {
	raw, err := pb.Marshal(history)
	if err != nil || len(raw) > e2e.HistoryInline {
		return nil, err
	}
	return e2e.SealHistory(q.IdentityKey, q.AdvSecret, signed.Details, raw)
}

// ScanImage reads the QR code in img through cam, then links it like Scan.
func (p *Phone) ScanImage(ctx context.Context, img image.Image, cam camera.Camera) (uint32, error) {
	qr, err := cam.Scan(img)
	if err != nil {
		return 0, fmt.Errorf("%s: scan image: %w", p.Name(), err)
	}
	return p.Scan(ctx, qr)
}

// nextKeyIndex is one more than any companion id the account has used: the
// relay refuses a device id it has seen before.
func (p *Phone) nextKeyIndex(ctx context.Context) (uint32, error) {
	var last uint32
	if raw, ok, err := p.State().Get(keyKeyIndex); err != nil {
		return 0, err
	} else if ok && len(raw) == 4 {
		last = binary.BigEndian.Uint32(raw)
	}
	devices, err := p.Devices(ctx, p.Self().User)
	if err != nil {
		return 0, err
	}
	for _, d := range devices {
		last = max(last, d)
	}
	next := last + 1
	return next, p.State().Put(keyKeyIndex, binary.BigEndian.AppendUint32(nil, next))
}

// historyOf is what the phone shows: its contacts (in the order of their
// ids, so that two takes of the same compare equal) and the recent
// messages of every chat.
func historyOf(p *Phone) *pb.HistorySync {
	h := &pb.HistorySync{}
	contacts := p.Contacts()
	for _, user := range slices.Sorted(maps.Keys(contacts)) {
		h.Contacts = append(h.Contacts, &pb.Contact{User: user, Name: contacts[user]})
	}
	for _, c := range p.Chats() {
		msgs := p.Messages(c.Peer)
		hc := &pb.HistoryChat{Peer: c.Peer}
		for _, m := range msgs[max(0, len(msgs)-historyPerChat):] {
			hc.Messages = append(hc.Messages, historyMessage(m))
		}
		h.Chats = append(h.Chats, hc)
	}
	return h
}

func historyMessage(m device.Message) *pb.HistoryMessage {
	return &pb.HistoryMessage{
		MessageId: m.ID, FromUser: m.From, Text: m.Text, SentUnixMs: m.Sent.UnixMilli(), Status: uint32(m.Status),
		Media: m.Media.Proto(),
	}
}

// LinkedDevices lists the account's companions (device ids other than 0).
func (p *Phone) LinkedDevices(ctx context.Context) ([]uint32, error) {
	all, err := p.Devices(ctx, p.Self().User)
	if err != nil {
		return nil, err
	}
	var out []uint32
	for _, d := range all {
		if d != 0 {
			out = append(out, d)
		}
	}
	return out, nil
}

// Unlink removes one companion; it is cut off at once.
func (p *Phone) Unlink(ctx context.Context, dev uint32) error {
	return p.RemoveDevices(ctx, []uint32{dev}, false)
}

// UnlinkAll removes every companion.
func (p *Phone) UnlinkAll(ctx context.Context) error {
	return p.RemoveDevices(ctx, nil, true)
}
