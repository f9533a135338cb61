package driver

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Chat is one row of the chat list, as shown.
type Chat struct {
	Peer   string // the peer's user (data-peer)
	Name   string
	Last   string // the last message's text
	Time   string
	Unread int // 0 when no badge shows
	// Synced from any of the user's devices (data-pinned, data-muted,
	// data-archived).
	Pinned, Muted, Archived bool
}

// Message is one message of the open conversation, as shown.
type Message struct {
	ID        string
	Direction string // "in" or "out"
	Status    string // pending, sent, delivered or read ("" for incoming)
	Text      string
	Time      string
	Ticks     string // the ticks' text or label, as shown

	// Of a media message (Media is "" for text; Text is the caption):
	Media       string // image, video or document (data-media)
	MediaState  string // "" before a download, then downloading, verified or rejected
	MediaSHA256 string // hex SHA-256 of the verified file
	MediaError  string // why the file was rejected, as shown
	Preview     bool   // a preview (thumbnail or poster) shows
	File        string // the file's name and size, as shown
	Uploading   bool   // upload progress shows
	Open        bool   // the link to the verified file shows
	MediaTries  int    // downloads started in the page (data-media-tries)
}

// Directions and statuses of a Message.
const (
	In  = "in"
	Out = "out"

	StatusPending   = "pending"
	StatusSent      = "sent"
	StatusDelivered = "delivered"
	StatusRead      = "read"
)

// StatusAtLeast reports whether status s is want or further along
// (pending < sent < delivered < read).
func StatusAtLeast(s, want string) bool {
	rank := map[string]int{StatusPending: 1, StatusSent: 2, StatusDelivered: 3, StatusRead: 4}
	return rank[s] >= rank[want] && rank[want] > 0
}

// A child's text is its visible text, falling back to aria-label and title
// (ticks may be drawn, with the words only in a label).
const childTextJS = `const txt = (el, id) => {
	const c = el.querySelector('[data-testid="' + id + '"]');
	if (!c) return "";
	return (c.innerText || c.textContent || "").trim() || c.getAttribute("aria-label") || c.getAttribute("title") || "";
};`

type chatRow struct {
	Peer, Name, Last, Time, Unread string
	Pinned, Muted, Archived        bool
}

// Chats returns the chat list, top to bottom.
func (p *Page) Chats(ctx context.Context) ([]Chat, error) {
	rows, err := eval[[]chatRow](ctx, p, "read chat list", `(() => {`+childTextJS+`
		return Array.from(document.querySelectorAll('[data-testid="chat-list"] [data-testid="chat"]')).map(c => ({
			Peer: c.dataset.peer || "", Name: txt(c, "chat-name"), Last: txt(c, "chat-last"),
			Time: txt(c, "chat-time"), Unread: txt(c, "chat-unread"),
			Pinned: c.dataset.pinned === "true", Muted: c.dataset.muted === "true", Archived: c.dataset.archived === "true",
		}));
	})()`)
	if err != nil {
		return nil, err
	}
	chats := make([]Chat, len(rows))
	for i, r := range rows {
		chats[i] = Chat{Peer: r.Peer, Name: r.Name, Last: r.Last, Time: r.Time, Pinned: r.Pinned, Muted: r.Muted, Archived: r.Archived}
		if u := strings.TrimSpace(r.Unread); u != "" {
			if chats[i].Unread, err = strconv.Atoi(u); err != nil {
				return nil, fmt.Errorf("%s: chat %s shows unread badge %q, not a number", p.Name(), r.Peer, u)
			}
		}
	}
	return chats, nil
}

// WaitChats waits until the chat list shows at least n chats. Between
// looks it watches the page's DOM (watchDOM) rather than polling it.
func (p *Page) WaitChats(ctx context.Context, n int) error {
	listed := fmt.Sprintf(`document.querySelectorAll('[data-testid="chat-list"] [data-testid="chat"]').length >= %d`, n)
	return p.wait(ctx, fmt.Sprintf("%d chats listed", n), func(ctx context.Context) (bool, string, error) {
		chats, err := p.Chats(ctx)
		if err != nil || len(chats) >= n {
			return err == nil, "", err
		}
		ok, err := p.watchDOM(ctx, "watch the chat list", listed)
		return ok, fmt.Sprintf("%d chats: %+v", len(chats), chats), err
	})
}

// OpenChat opens the conversation with peer from the chat list and waits
// until it shows.
func (p *Page) OpenChat(ctx context.Context, peer string) error {
	if err := p.click(ctx, "open chat "+peer, testID("chat", attr("data-peer", peer))); err != nil {
		return err
	}
	return p.wait(ctx, "the conversation with "+peer, func(ctx context.Context) (bool, string, error) {
		open, err := p.OpenPeer(ctx)
		return open == peer, fmt.Sprintf("conversation %q open", open), err
	})
}

// OpenPeer returns the peer of the open conversation, "" when none is open.
func (p *Page) OpenPeer(ctx context.Context) (string, error) {
	return eval[string](ctx, p, "read open conversation", `(() => {
		const c = document.querySelector('[data-testid="conversation"]');
		return c && c.checkVisibility() ? (c.dataset.peer || "") : "";
	})()`)
}

// Messages returns the open conversation's messages, top to bottom.
func (p *Page) Messages(ctx context.Context) ([]Message, error) {
	return eval[[]Message](ctx, p, "read messages", `(() => {`+childTextJS+`
		return Array.from(document.querySelectorAll('[data-testid="conversation"] [data-testid="message"]')).map(m => ({
			ID: m.dataset.id || "", Direction: m.dataset.direction || "", Status: m.dataset.status || "",
			Text: txt(m, "message-text"), Time: txt(m, "message-time"), Ticks: txt(m, "message-ticks"),
			Media: m.dataset.media || "", MediaState: m.dataset.mediaState || "", MediaSHA256: m.dataset.mediaSha256 || "",
			MediaError: txt(m, "media-error"), File: txt(m, "media-file"),
			Preview: !!m.querySelector('[data-testid="media-preview"]')?.checkVisibility(),
			Uploading: !!m.querySelector('[data-testid="upload-progress"]')?.checkVisibility(),
			Open: !!m.querySelector('[data-testid="media-open"]')?.checkVisibility(),
			MediaTries: parseInt(m.dataset.mediaTries || "0", 10),
		}));
	})()`)
}

// Send types text into the composer of the open conversation and clicks
// send, then waits until the message shows with its id and returns it.
func (p *Page) Send(ctx context.Context, text string) (Message, error) {
	before, err := p.Messages(ctx)
	if err != nil {
		return Message{}, err
	}
	known := make(map[string]bool, len(before))
	for _, m := range before {
		known[m.ID] = true
	}
	if err := p.typeInto(ctx, "composer", text); err != nil {
		return Message{}, err
	}
	if err := p.click(ctx, "click send", testID("send")); err != nil {
		return Message{}, err
	}
	var sent Message
	err = p.wait(ctx, fmt.Sprintf("the sent message %q to show", text), func(ctx context.Context) (bool, string, error) {
		msgs, err := p.Messages(ctx)
		if err != nil {
			return false, "", err
		}
		for _, m := range msgs {
			if m.Direction == Out && m.Text == text && m.ID != "" && !known[m.ID] {
				sent = m
				return true, "", nil
			}
		}
		return false, fmt.Sprintf("%d messages", len(msgs)), nil
	})
	return sent, err
}
