package device

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
)

// HistoryBundle is h with our synced state added, so that a new companion
// starts in step: what SendHistory or a scan carries.
func (d *Device) HistoryBundle(h *pb.HistorySync) *pb.HistorySync {
	h.AppState = d.state.mutations(func(Setting) bool { return true })
	return h
}

// SendHistory sends the history bundle h (HistoryBundle) to our companion
// `to`: inline when it is small, otherwise uploaded as a blob with the
// message pointing to it.
func (d *Device) SendHistory(ctx context.Context, to e2e.Address, h *pb.HistorySync) error {
	id := NewMessageID()
	content := &pb.Content{Kind: &pb.Content_HistorySync{HistorySync: h}}
	// A larger bundle goes through the media store as an encrypted blob
	// (type HISTORY), as WhatsApp does: a phone with years of chats would
	// otherwise hit the frame limit, and a blob download resumes where a
	// message cannot.
	if pb.Size(h) > e2e.HistoryInline {
		raw, err := pb.Marshal(h)
		if err != nil {
			return fmt.Errorf("%s: history for %s: %w", d.cfg.Name, to, err)
		}
		m, err := d.upload(ctx, id, pb.MediaType_HISTORY, bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("%s: history for %s: %w", d.cfg.Name, to, err)
		}
		content = &pb.Content{Kind: &pb.Content_Media{Media: m.Proto()}}
	}
	return d.SendDirect(ctx, id, to, content)
}

// receiveHistory imports a history bundle from our phone: h itself, or the
// blob that blob describes, fetched and verified first. The push loop waits
// meanwhile, so messages that arrive after the history are stored after it.
func (d *Device) receiveHistory(from e2e.Address, h *pb.HistorySync, blob *pb.Media) error {
	if from != (e2e.Address{User: d.self.User, Device: 0}) {
		d.log.Warn("history sync from a device other than our phone", "from", from.String())
		return nil
	}
	d.cfg.Mark("history.decrypted")
	if blob != nil {
		var err error
		if h, err = d.fetchHistory(blob); err != nil {
			// The delivery is acked all the same: Signal would not
			// decrypt it a second time. The companion then lacks the
			// history, as if the phone had sent none; new messages
			// still arrive.
			err = fmt.Errorf("%s: history sync: %w", d.cfg.Name, err)
			d.log.Error("history sync blob rejected", "err", err)
			d.emit(Event{Kind: MediaRejected, From: from, Media: &Media{Type: pb.MediaType_HISTORY}, Err: err})
			return nil
		}
	}
	return d.showHistory(from, h)
}

// showHistory imports h from our phone, from, and lists its chats.
func (d *Device) showHistory(from e2e.Address, h *pb.HistorySync) error {
	if err := d.importHistory(from, h); err != nil {
		return err
	}
	d.cfg.Mark("history.imported")
	if len(h.Chats) > 0 {
		d.emit(Event{Kind: HistoryShown, From: from})
	}
	return nil
}

func (d *Device) fetchHistory(blob *pb.Media) (*pb.HistorySync, error) {
	m, err := mediaOf(blob)
	if err != nil {
		return nil, err
	}
	plain, err := d.downloadSpooled(d.ctx, m)
	if err != nil {
		return nil, err
	}
	defer plain.Close()
	raw, err := io.ReadAll(plain)
	if err != nil {
		return nil, err
	}
	return decodeHistory(raw)
}

// decodeHistory parses a history bundle fetched from the media store or
// carried by the phone's scan.
func decodeHistory(raw []byte) (*pb.HistorySync, error) {
	var h pb.HistorySync
	if err := pb.Unmarshal(raw, &h); err != nil {
		return nil, errors.Join(errors.New("bundle does not decode"), err)
	}
	return &h, nil
}
