package driver

import (
	"context"
	"fmt"
)

// visibleJS reports whether the element with a data-testid shows.
func visibleJS(id string) string {
	return `(() => { const e = document.querySelector('[data-testid="` + id + `"]'); return !!(e && e.checkVisibility()); })()`
}

// openProfile opens the profile panel unless it already shows.
func (p *Page) openProfile(ctx context.Context) error {
	shown, err := eval[bool](ctx, p, "look for the profile panel", visibleJS("profile"))
	if err != nil || shown {
		return err
	}
	if err := p.click(ctx, "open the profile", testID("profile-open")); err != nil {
		return err
	}
	return p.wait(ctx, "the profile panel", func(ctx context.Context) (bool, string, error) {
		shown, err := eval[bool](ctx, p, "look for the profile panel", visibleJS("profile"))
		return shown, "no profile panel", err
	})
}

// SetAbout opens the profile panel, replaces the about text and saves it,
// then waits until the panel shows the new text.
func (p *Page) SetAbout(ctx context.Context, text string) error {
	if err := p.openProfile(ctx); err != nil {
		return err
	}
	if err := p.typeInto(ctx, "about-input", text); err != nil {
		return err
	}
	if err := p.click(ctx, "save the about text", testID("about-save")); err != nil {
		return err
	}
	return p.wait(ctx, fmt.Sprintf("the about text %q to show", text), func(ctx context.Context) (bool, string, error) {
		about, err := p.About(ctx)
		return about == text, fmt.Sprintf("%q", about), err
	})
}

// About returns the about text the profile panel shows, opening the panel
// if needed.
func (p *Page) About(ctx context.Context) (string, error) {
	if err := p.openProfile(ctx); err != nil {
		return "", err
	}
	return eval[string](ctx, p, "read the about text", `(() => {
		const e = document.querySelector('[data-testid="about"]');
		return e ? (e.innerText || e.textContent || "").trim() : "";
	})()`)
}

// ProfileName returns the name the profile panel shows, opening the panel
// if needed.
func (p *Page) ProfileName(ctx context.Context) (string, error) {
	if err := p.openProfile(ctx); err != nil {
		return "", err
	}
	return eval[string](ctx, p, "read the profile name", `(() => {
		const e = document.querySelector('[data-testid="profile-name"]');
		return e ? (e.innerText || e.textContent || "").trim() : "";
	})()`)
}

// Logout logs the web client out from its menu. The app then wipes its
// state and shows a fresh QR code.
func (p *Page) Logout(ctx context.Context) error {
	if err := p.click(ctx, "open the menu", testID("menu")); err != nil {
		return err
	}
	return p.click(ctx, "click log out", testID("logout"))
}

// operableCSS selects the elements a user can operate.
const operableCSS = `button, a[href], input, select, textarea, [tabindex], [contenteditable="true"],
	[role="button"], [role="link"], [role="menuitem"], [role="checkbox"], [role="switch"], [role="tab"], [role="option"]`

// Control is one element a user can operate or read (a button, link, input
// or anything with a role or label), for checks that no feature is on
// offer: its test id, tag, text, aria-label and title, and whether a user
// can operate it (Operable: a button, link, form field, anything focusable
// or with a widget role) rather than only read it.
type Control struct {
	TestID, Tag, Text, Label, Title string
	Operable                        bool
}

// Controls lists every element of the page that carries a data-testid, a
// role or an aria-label, and every button, link and input.
func (p *Page) Controls(ctx context.Context) ([]Control, error) {
	return eval[[]Control](ctx, p, "list controls", `(() => { const operable = `+"`"+operableCSS+"`"+`; return Array.from(document.querySelectorAll(
		'[data-testid], [role], [aria-label], button, a, input, select, textarea')).map(e => ({
			TestID: e.dataset.testid || "", Tag: e.tagName.toLowerCase(),
			Text: (e.textContent || "").trim().slice(0, 200),
			Label: e.getAttribute("aria-label") || "", Title: e.getAttribute("title") || "",
			Operable: e.matches(operable),
		}))})()`)
}
