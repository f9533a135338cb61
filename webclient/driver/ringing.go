package driver

import "context"

// Ringing is the notice that a call rings on the phone
// ([data-testid="phone-ringing"]), as shown.
type Ringing struct {
	Shown bool
	Peer  string // the caller (data-peer)
	Text  string
	// Operable counts the controls inside the notice: calls are answered
	// on the phone, so the reference app has none.
	Operable int
}

// Ringing reads the ringing notice.
func (p *Page) Ringing(ctx context.Context) (Ringing, error) {
	return eval[Ringing](ctx, p, "read the ringing notice", `(() => {
		const n = document.querySelector('[data-testid="phone-ringing"]');
		if (!n || !n.checkVisibility()) return {Shown: false, Peer: "", Text: "", Operable: 0};
		return {Shown: true, Peer: n.dataset.peer || "", Text: (n.innerText || n.textContent || "").trim(),
			Operable: n.querySelectorAll(`+"`"+operableCSS+"`"+`).length};
	})()`)
}
