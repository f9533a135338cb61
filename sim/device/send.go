package device

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
)

// staleRetries bounds how often one send re-fetches device lists: lists
// changing that fast mean something is broken.
const staleRetries = 4

// NewMessageID returns a fresh random message id (16 bytes, hex).
func NewMessageID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// SendText sends text to user `to`: encrypted for every device of `to` and,
// as copies, for every other device of this user. It returns once the relay
// has stored it durably.
func (d *Device) SendText(ctx context.Context, to, text string) (string, error) {
	id := NewMessageID()
	return id, d.SendTextID(ctx, id, to, text)
}

// SendTextID is SendText with a caller-chosen message id (the harness names
// messages itself); sending the same id again is a no-op at the relay.
func (d *Device) SendTextID(ctx context.Context, id, to, text string) error {
	now := time.Now()
	c := &pb.Content{Kind: &pb.Content_Chat{Chat: &pb.Chat{Text: text, SentUnixMs: now.UnixMilli()}}}
	return d.send(ctx, to, Message{ID: id, From: d.self.User, Text: text, Sent: now, Outgoing: true}, c)
}

// checkPeer refuses a chat with our own user: our other devices get copies
// of every message, there is no chat with them.
func (d *Device) checkPeer(to string) error {
	if to == d.self.User {
		return fmt.Errorf("%s: send to %s: cannot message your own user", d.cfg.Name, to)
	}
	return nil
}

// send stores m, the message as this device shows it, in the chat with
// `to`, then fans c, what every other device reads, out to them. Text and
// media messages alike go through here.
func (d *Device) send(ctx context.Context, to string, m Message, c *pb.Content) error {
	if err := d.checkPeer(to); err != nil {
		return err
	}
	if err := d.keepSent(m.ID, to, c); err != nil {
		return fmt.Errorf("%s: send to %s: %w", d.cfg.Name, to, err)
	}
	if _, err := d.chats.store(to, m); err != nil {
		return fmt.Errorf("%s: send to %s: %w", d.cfg.Name, to, err)
	}
	if err := d.fanOut(ctx, m.ID, to, c, &Event{Text: m.Text, Media: m.Media}); err != nil {
		return fmt.Errorf("%s: send to %s: %w", d.cfg.Name, to, err)
	}
	return d.chats.setStatus(to, []string{m.ID}, StatusSent)
}

// keepSentMax bounds the messages kept for retry receipts: a retry comes
// within seconds of a delivery, and a long run must not keep every message.
const keepSentMax = 1000

// keepSent remembers what a message said so a retry receipt can be
// answered, forgetting the oldest beyond keepSentMax. It is kept as our own
// devices read it, naming the chat.
func (d *Device) keepSent(id, peer string, c *pb.Content) error {
	setChatUser(c, peer)
	raw, err := pb.Marshal(c)
	if err != nil {
		return err
	}
	st := d.cfg.State
	d.sentMu.Lock()
	defer d.sentMu.Unlock()
	if _, again, err := st.Get(prefixSent + id); err != nil || again {
		return err // a resend of a kept message keeps its place
	}
	seq, err := getUint(st, keySentSeq)
	if err != nil {
		return err
	}
	seq++
	if err := errors.Join(st.Put(prefixSent+id, raw), st.Put(sentOrderKey(seq), []byte(id)), putUint(st, keySentSeq, seq)); err != nil {
		return err
	}
	if seq <= keepSentMax {
		return nil
	}
	oldest := sentOrderKey(seq - keepSentMax)
	old, ok, err := st.Get(oldest)
	if err != nil || !ok {
		return err
	}
	return errors.Join(st.Delete(prefixSent+string(old)), st.Delete(oldest))
}

func sentOrderKey(seq uint64) string { return fmt.Sprintf("%s%016d", prefixSentOrder, seq) }

// contentFor encodes what device a reads: copies to our own devices name
// the chat (peer) they belong to, the recipient's do not. It changes c.
func (d *Device) contentFor(a e2e.Address, peer string, c *pb.Content) ([]byte, error) {
	chatUser := ""
	if a.User == d.self.User {
		chatUser = peer
	}
	setChatUser(c, chatUser)
	return pb.Marshal(c)
}

func setChatUser(c *pb.Content, user string) {
	switch k := c.Kind.(type) {
	case *pb.Content_Chat:
		k.Chat.ChatUser = user
	case *pb.Content_Media:
		k.Media.ChatUser = user
	case *pb.Content_Call:
		k.Call.ChatUser = user
	}
}

func chatUserOf(c *pb.Content) string {
	switch k := c.Kind.(type) {
	case *pb.Content_Media:
		return k.Media.GetChatUser()
	case *pb.Content_Call:
		return k.Call.GetChatUser()
	}
	return c.GetChat().GetChatUser()
}

// fanOut encrypts c for every device of peer and every other device of ours
// and sends it, refreshing stale device lists. With peer our own user it
// goes to our other devices only, and with none of them to nothing. sent,
// if set, describes a chat message for the Sent and Acked events; call
// signalling and state sync are not messages of the ledger.
func (d *Device) fanOut(ctx context.Context, id, peer string, c *pb.Content, sent *Event) error {
	d.sendMu.Lock()
	defer d.sendMu.Unlock()
	users := []string{peer, d.self.User}
	if peer == d.self.User {
		users = users[1:]
	}
	asked := false // whether the lists were fetched fresh for this send
	for attempt := 0; ; attempt++ {
		if err := d.knowLists(ctx, users); err != nil {
			return err
		}
		send := &pb.Send{MessageId: id, ListHashes: map[string]string{}}
		var targets []e2e.Address
		for _, u := range users {
			l := d.lists.get(u)
			send.ListHashes[u] = l.Hash
			for _, dev := range l.Devices {
				if a := (e2e.Address{User: u, Device: dev}); a != d.self {
					targets = append(targets, a)
				}
			}
		}
		if len(targets) == 0 {
			if asked {
				return nil
			}
			// No other device, by a cached list the relay checks only
			// when we send: a companion may have linked since. Ask.
			if err := d.refreshLists(ctx, users); err != nil {
				return err
			}
			asked = true
			continue
		}
		envs, err := d.encryptAll(ctx, targets, func(a e2e.Address) ([]byte, error) { return d.contentFor(a, peer, c) })
		if err == nil {
			send.Envelopes = envs
			if sent != nil {
				sent.Kind, sent.MessageID, sent.Chat, sent.Targets = Sent, id, peer, targets
				d.emit(*sent)
			}
			_, err = d.Call(ctx, &pb.Frame{Body: &pb.Frame_Send{Send: send}})
		}
		var re *RelayError
		if errors.As(err, &re) && attempt < staleRetries &&
			(re.Code == pb.ErrorCode_STALE_DEVICE_LIST || re.Code == pb.ErrorCode_UNKNOWN_DEVICE) {
			d.log.Debug("device list changed, sending again", "msg", id, "code", re.Code)
			if re.Lists != nil {
				d.lists.put(re.Lists.Lists...)
			} else if err := d.refreshLists(ctx, users); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if sent != nil {
			d.emit(Event{Kind: Acked, MessageID: id, Chat: peer})
		}
		return nil
	}
}

// SendDirect sends content to one device without the device-list check: a
// history sync to a new companion, or a resend after a retry receipt.
func (d *Device) SendDirect(ctx context.Context, id string, to e2e.Address, content *pb.Content) error {
	raw, err := pb.Marshal(content)
	if err != nil {
		return err
	}
	return d.sendDirect(ctx, id, to, raw)
}

func (d *Device) sendDirect(ctx context.Context, id string, to e2e.Address, raw []byte) error {
	d.sendMu.Lock()
	defer d.sendMu.Unlock()
	return d.sendDirectLocked(ctx, id, to, raw)
}

// sendDirectLocked is sendDirect for a caller holding sendMu.
func (d *Device) sendDirectLocked(ctx context.Context, id string, to e2e.Address, raw []byte) error {
	envs, err := d.encryptAll(ctx, []e2e.Address{to}, func(e2e.Address) ([]byte, error) { return raw, nil })
	if err != nil {
		return fmt.Errorf("%s: send %s to %s: %w", d.cfg.Name, id, to, err)
	}
	send := &pb.Send{MessageId: id, Envelopes: envs, Direct: true}
	if _, err := d.Call(ctx, &pb.Frame{Body: &pb.Frame_Send{Send: send}}); err != nil {
		return fmt.Errorf("%s: send %s to %s: %w", d.cfg.Name, id, to, err)
	}
	return nil
}

// encryptAll makes sure a session exists with every target, then encrypts
// each target's plaintext.
func (d *Device) encryptAll(ctx context.Context, targets []e2e.Address, plaintext func(e2e.Address) ([]byte, error)) ([]*pb.Envelope, error) {
	if err := d.ensureSessions(ctx, targets); err != nil {
		return nil, err
	}
	d.cryptoMu.Lock()
	defer d.cryptoMu.Unlock()
	envs := make([]*pb.Envelope, 0, len(targets))
	for _, a := range targets {
		pt, err := plaintext(a)
		if err != nil {
			return nil, err
		}
		t, ct, err := d.sig.Encrypt(ctx, a, pt)
		if err != nil {
			return nil, fmt.Errorf("encrypt for %s: %w", a, err)
		}
		envs = append(envs, &pb.Envelope{To: &pb.Address{User: a.User, Device: a.Device}, Type: t, Ciphertext: ct})
	}
	return envs, nil
}

// ensureSessions starts sessions with the targets we have none with.
func (d *Device) ensureSessions(ctx context.Context, targets []e2e.Address) error {
	var missing []e2e.Address
	for _, a := range targets {
		if !d.sig.HasSession(a) {
			missing = append(missing, a)
		}
	}
	return d.startSessions(ctx, missing)
}

// startSessions fetches prekey bundles for the targets, in one request, and
// starts a new session with each; a session already there is archived, so
// what the peer still sends on it decrypts.
func (d *Device) startSessions(ctx context.Context, targets []e2e.Address) error {
	if len(targets) == 0 {
		return nil
	}
	phones, err := d.unpinned(targets)
	if err != nil {
		return err
	}
	var addrs []*pb.Address
	for _, a := range append(phones, targets...) {
		addrs = append(addrs, &pb.Address{User: a.User, Device: a.Device})
	}
	ans, err := d.Call(ctx, &pb.Frame{Body: &pb.Frame_FetchBundles{FetchBundles: &pb.FetchBundles{Addresses: addrs}}})
	if err != nil {
		return fmt.Errorf("fetch bundles: %w", err)
	}
	bundles := ans.GetBundles().GetBundles()
	// Phones first: they pin the account keys companions are checked with.
	slices.SortStableFunc(bundles, func(x, y *pb.Bundle) int {
		return cmp.Compare(min(x.GetAddress().GetDevice(), 1), min(y.GetAddress().GetDevice(), 1))
	})
	d.cryptoMu.Lock()
	defer d.cryptoMu.Unlock()
	var untrusted []error
	for _, b := range bundles {
		a := e2e.Address{User: b.GetAddress().GetUser(), Device: b.GetAddress().GetDevice()}
		changed, err := d.checkBundle(b)
		if errors.Is(err, ErrUntrustedDevice) {
			d.log.Warn("refused a device its account does not vouch for", "device", a.String(), "err", err)
			d.emit(Event{Kind: UntrustedDevice, From: a, Err: err})
			untrusted = append(untrusted, err)
			continue
		}
		if err != nil {
			return err
		}
		if changed {
			d.identityChanged(a.User)
		}
		if !slices.Contains(targets, a) {
			continue // fetched for its account key only
		}
		if err := d.sig.ProcessBundle(ctx, b); err != nil {
			return fmt.Errorf("session with %s: %w", a, err)
		}
	}
	return errors.Join(untrusted...)
}

// knowLists fetches the device lists of the users not cached yet.
func (d *Device) knowLists(ctx context.Context, users []string) error {
	var unknown []string
	for _, u := range users {
		if d.lists.get(u) == nil {
			unknown = append(unknown, u)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	return d.refreshLists(ctx, unknown)
}

func (d *Device) refreshLists(ctx context.Context, users []string) error {
	ans, err := d.Call(ctx, &pb.Frame{Body: &pb.Frame_GetDevices{GetDevices: &pb.GetDevices{Users: users}}})
	if err != nil {
		return fmt.Errorf("device lists: %w", err)
	}
	d.lists.put(ans.GetDeviceLists().GetLists()...)
	return nil
}

// Devices returns user's current device ids, asking the relay.
func (d *Device) Devices(ctx context.Context, user string) ([]uint32, error) {
	if err := d.refreshLists(ctx, []string{user}); err != nil {
		return nil, fmt.Errorf("%s: %w", d.cfg.Name, err)
	}
	return d.lists.get(user).GetDevices(), nil
}

// resend answers a retry receipt: a new session with the device that could
// not decrypt, and the message again, direct to it. It holds sendMu
// throughout, so no send sees the session change between making sure it
// exists and encrypting with it. The old session is archived, not deleted:
// deleting it made whatever the peer still sent on it undecryptable, which
// asked for more retries.
func (d *Device) resend(ctx context.Context, to e2e.Address, ids []string, count uint32) error {
	if count > maxRetries {
		d.log.Warn("retry receipt beyond the cap, not answered", "from", to.String(), "count", count, "msgs", ids)
		return nil
	}
	d.sendMu.Lock()
	defer d.sendMu.Unlock()
	if err := d.startSessions(ctx, []e2e.Address{to}); err != nil {
		return err
	}
	for _, id := range ids {
		raw, ok, err := d.cfg.State.Get(prefixSent + id)
		if err != nil {
			return err
		}
		if !ok {
			d.log.Warn("retry receipt for a message no longer kept", "msg", id, "from", to.String())
			continue
		}
		var kept pb.Content
		if err := pb.Unmarshal(raw, &kept); err != nil {
			return err
		}
		pt, err := d.contentFor(to, chatUserOf(&kept), &kept)
		if err != nil {
			return err
		}
		if err := d.sendDirectLocked(ctx, id, to, pt); err != nil {
			return err
		}
	}
	return nil
}

// KnownDevices is user's device list as this device last heard it, without
// asking the relay: for its own user the relay pushes every change.
func (d *Device) KnownDevices(user string) []uint32 { return d.lists.get(user).GetDevices() }
