package device

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/linksim/linksim/sim/kv"
)

// Status is how far an outgoing message got, as ticks show it.
type Status int

const (
	StatusPending   Status = iota // not yet acked by the relay
	StatusSent                    // stored by the relay (one tick)
	StatusDelivered               // decrypted by a recipient device (two ticks)
	StatusRead                    // read on a recipient device (two blue ticks)
)

// Message is one message of a chat, as a device stores it.
type Message struct {
	ID       string
	From     string // the sending user
	Text     string
	Sent     time.Time
	Outgoing bool // sent by this user, from this or another of its devices
	Status   Status
	// Media is set for a media message (Text is then its caption): what
	// Download needs to fetch and verify it.
	Media *Media `json:",omitempty"`
	// Placeholder marks a message that arrived but could not be decrypted
	// yet: "Waiting for this message". The sender was asked to send it
	// again; when it comes, it takes the placeholder's place.
	Placeholder bool `json:",omitempty"`
	// Notice marks a line the device itself adds to a chat, not a message
	// anyone sent: "Your security code with ... changed."
	Notice bool `json:",omitempty"`
}

// PlaceholderText is what a client shows for a placeholder message.
const PlaceholderText = "Waiting for this message. This may take a while."

// Bounds of a time that a device stores (as JSON, which takes years 0 to
// 9999 only).
var (
	earliestSent = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	latestSent   = time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC)
)

// sentTime is a sender's sent_unix_ms as a time a device can store: the
// sender's clock is not ours to trust, and a message with an absurd time
// must still be kept.
func sentTime(unixMs int64) time.Time {
	t := time.UnixMilli(unixMs)
	if t.Before(earliestSent) {
		return earliestSent
	}
	if t.After(latestSent) {
		return latestSent
	}
	return t
}

// Chat summarises one conversation.
type Chat struct {
	Peer   string
	Name   string
	Last   Message
	Unread int
	Count  int
	// Synced across the user's devices (appstate.go); pinned chats list
	// first, archived ones last.
	Archived, Pinned, Muted bool
}

// chats is a device's conversations: in memory for reading, in State so a
// reopened device keeps them.
type chats struct {
	st   kv.KV
	self string

	mu    sync.Mutex
	by    map[string]*chat
	names map[string]string
}

type chat struct {
	msgs   []Message
	index  map[string]int
	unread int
}

func newChats(st kv.KV, self string) *chats {
	return &chats{st: st, self: self, by: make(map[string]*chat), names: make(map[string]string)}
}

func msgKey(peer string, seq int) string { return fmt.Sprintf("%s%s/%09d", prefixMsg, peer, seq) }

func (c *chats) load() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.st.Scan(prefixMsg, func(key string, v []byte) error {
		var m Message
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("corrupt message %s: %w", key, err)
		}
		peer := key[len(prefixMsg):strings.LastIndexByte(key, '/')]
		c.add(peer, m)
		return nil
	})
	if err != nil {
		return err
	}
	return c.st.Scan(prefixName, func(key string, v []byte) error {
		c.names[key[len(prefixName):]] = string(v)
		return nil
	})
}

func (c *chats) chat(peer string) *chat {
	ch := c.by[peer]
	if ch == nil {
		ch = &chat{index: make(map[string]int)}
		c.by[peer] = ch
	}
	return ch
}

// add appends m to peer's chat in memory, or puts it in the place of the
// placeholder with its id; it returns the message's position, or false when
// the chat already has a message with that id.
func (c *chats) add(peer string, m Message) (int, bool) {
	ch := c.chat(peer)
	if pos, dup := ch.index[m.ID]; dup {
		if !ch.msgs[pos].Placeholder || m.Placeholder {
			return 0, false
		}
		ch.msgs[pos] = m // counted unread already, as the placeholder
		return pos, true
	}
	ch.index[m.ID] = len(ch.msgs)
	ch.msgs = append(ch.msgs, m)
	if !m.Outgoing && m.Status < StatusRead {
		ch.unread++
	}
	return len(ch.msgs) - 1, true
}

// store adds m to peer's chat and persists it; false means a duplicate.
func (c *chats) store(peer string, m Message) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.chat(peer)
	var replaced *Message
	if pos, ok := ch.index[m.ID]; ok {
		old := ch.msgs[pos]
		replaced = &old
	}
	pos, ok := c.add(peer, m)
	if !ok {
		return false, nil
	}
	if err := c.persist(peer, pos); err != nil {
		// Not kept, so not shown: storing it again must not count as a
		// duplicate.
		if replaced != nil {
			ch.msgs[pos] = *replaced
			return false, err
		}
		delete(ch.index, m.ID)
		ch.msgs = ch.msgs[:pos]
		if !m.Outgoing && m.Status < StatusRead {
			ch.unread--
		}
		return false, err
	}
	return true, nil
}

func (c *chats) persist(peer string, pos int) error {
	raw, err := marshalMessage(c.by[peer].msgs[pos])
	if err != nil {
		return err
	}
	return c.st.Put(msgKey(peer, pos), raw)
}

// setStatus raises the status of outgoing messages (never lowers it: a late
// delivered receipt must not undo a read one).
func (c *chats) setStatus(peer string, ids []string, s Status) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.by[peer]
	if ch == nil {
		return nil
	}
	for _, id := range ids {
		pos, ok := ch.index[id]
		if !ok || ch.msgs[pos].Status >= s {
			continue
		}
		ch.msgs[pos].Status = s
		if err := c.persist(peer, pos); err != nil {
			return err
		}
	}
	return nil
}

// markRead clears peer's unread count and returns the ids newly read, by
// sender, and the id of the chat's last message, which they go up to.
func (c *chats) markRead(peer string) (map[string][]string, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.by[peer]
	if ch == nil || len(ch.msgs) == 0 {
		return nil, "", nil
	}
	read := make(map[string][]string)
	for pos := range ch.msgs {
		m := &ch.msgs[pos]
		if m.Outgoing || m.Status >= StatusRead || m.Placeholder {
			continue
		}
		m.Status = StatusRead
		read[m.From] = append(read[m.From], m.ID)
		if err := c.persist(peer, pos); err != nil {
			return nil, "", err
		}
	}
	ch.unread = 0
	return read, ch.msgs[len(ch.msgs)-1].ID, nil
}

// markReadUpTo marks the incoming messages of peer's chat up to and
// including message id read, as another of our devices read them: no
// receipts (that device sent them). An id not here yet marks nothing.
func (c *chats) markReadUpTo(peer, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.by[peer]
	if ch == nil {
		return nil
	}
	last, ok := ch.index[id]
	if !ok {
		return nil
	}
	ch.unread = 0
	for pos := range ch.msgs {
		m := &ch.msgs[pos]
		if m.Outgoing || m.Status >= StatusRead {
			continue
		}
		if pos > last {
			ch.unread++
			continue
		}
		if m.Placeholder {
			continue
		}
		m.Status = StatusRead
		if err := c.persist(peer, pos); err != nil {
			return err
		}
	}
	return nil
}

func (c *chats) setName(user, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names[user] = name
	return c.st.Put(prefixName+user, []byte(name))
}

func (c *chats) list() []Chat {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Chat, 0, len(c.by))
	for peer, ch := range c.by {
		if len(ch.msgs) == 0 {
			continue
		}
		out = append(out, Chat{Peer: peer, Name: c.nameOf(peer), Last: ch.msgs[len(ch.msgs)-1], Unread: ch.unread, Count: len(ch.msgs)})
	}
	slices.SortFunc(out, func(a, b Chat) int {
		return cmp.Or(b.Last.Sent.Compare(a.Last.Sent), cmp.Compare(a.Peer, b.Peer))
	})
	return out
}

func (c *chats) nameOf(user string) string {
	if n := c.names[user]; n != "" {
		return n
	}
	return user
}

func (c *chats) messages(peer string) []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch := c.by[peer]; ch != nil {
		return slices.Clone(ch.msgs)
	}
	return nil
}

func (c *chats) contacts() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.names))
	for u, n := range c.names {
		out[u] = n
	}
	return out
}

// Chats lists the device's conversations, most recent first.
func (d *Device) Chats() []Chat { return d.flagged(d.chats.list()) }

// Messages returns the messages of the chat with peer, oldest first.
func (d *Device) Messages(peer string) []Message { return d.chats.messages(peer) }

// SetContactName names a user in this device's chats.
func (d *Device) SetContactName(user, name string) error { return d.chats.setName(user, name) }

// Contacts returns the names this device knows, by user.
func (d *Device) Contacts() map[string]string { return d.chats.contacts() }
