package scenarios

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
	"github.com/linksim/linksim/webclient/driver"
)

// Media in the browser: the page shows a media message's thumbnail at
// once, fetches the file only when its download button is clicked, and
// offers it only once verified (data-media-state="verified" and the
// file's SHA-256 on the message, which the flows compare with the file
// sent). harness.Web records a media message as received at its first
// verified download, as native devices are.

// mediaShows waits until w's open conversation shows media message id and
// returns it.
func mediaShows(ctx context.Context, w *harness.Web, id, kind string) (driver.Message, error) {
	var found driver.Message
	err := await(ctx, fmt.Sprintf("%s to show %s msg %s", w.Name(), kind, id), func() error {
		msgs, err := w.Messages(ctx)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.ID == id {
				found = m
				if m.Media != kind {
					return fmt.Errorf("it shows it as %q media", m.Media)
				}
				return nil
			}
		}
		return fmt.Errorf("messages are %+v", msgs)
	})
	return found, err
}

// verifiedIn has w download media message f and checks that the page
// verified the file the sender sent.
func verifiedIn(ctx context.Context, w *harness.Web, f sentFile) error {
	m, err := w.DownloadMedia(ctx, f.id)
	if err != nil {
		return err
	}
	if m.MediaState != driver.MediaVerified {
		return fmt.Errorf("%s: msg %s is %q after its download, want verified; error shown: %q", w.Name(), f.id, m.MediaState, m.MediaError)
	}
	if want := hex.EncodeToString(f.sha256[:]); m.MediaSHA256 != want {
		return fmt.Errorf("%s: msg %s verified with SHA-256 %.16s…, the sender's file has %.16s…", w.Name(), f.id, m.MediaSHA256, want)
	}
	if !m.Open {
		return fmt.Errorf("%s: msg %s verified but offers no link to the file", w.Name(), f.id)
	}
	return nil
}

// downloadedTo has each device receive f and save it with DownloadTo, and
// checks the saved file's SHA-256.
func downloadedTo(ctx context.Context, dir string, f sentFile, devices ...*device.Device) error {
	for _, d := range devices {
		m, err := received(ctx, d, f)
		if err != nil {
			return err
		}
		path := filepath.Join(dir, strings.ReplaceAll(d.Name(), "/", "-")+"-"+f.id)
		if err := d.DownloadTo(ctx, m, path); err != nil {
			return err
		}
		file, err := os.Open(path)
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, file)
		file.Close()
		if err != nil {
			return err
		}
		if got := [32]byte(h.Sum(nil)); got != f.sha256 {
			return fmt.Errorf("%s saved msg %s with SHA-256 %x, the sender's file has %x", d.Name(), f.id, got[:8], f.sha256[:8])
		}
	}
	return nil
}

// browserMediaReceived: bob's phone sends alice an image and a document;
// alice's page previews the image, names the document, and verifies both.
func browserMediaReceived(ctx context.Context, env *harness.Env) error {
	alice, bob, w, _, err := historyInBrowser(ctx, env)
	if err != nil {
		return err
	}
	aliceUser, bobUser := alice.Phone.Self().User, bob.Phone.Self().User
	if err := w.OpenChat(ctx, bobUser); err != nil {
		return err
	}
	img, err := sendFile(ctx, env, bob.Phone.Device, aliceUser, pb.MediaType_IMAGE, 0)
	if err != nil {
		return err
	}
	doc, err := sendFile(ctx, env, bob.Phone.Device, aliceUser, pb.MediaType_DOCUMENT, 300<<10)
	if err != nil {
		return err
	}
	m, err := mediaShows(ctx, w, img.id, driver.MediaImage)
	if err != nil {
		return err
	}
	if !m.Preview || m.MediaState != "" {
		return fmt.Errorf("%s: image msg %s shows preview %v, media state %q; want its thumbnail, not downloaded", w.Name(), img.id, m.Preview, m.MediaState)
	}
	m, err = mediaShows(ctx, w, doc.id, driver.MediaDocument)
	if err != nil {
		return err
	}
	if want := fmt.Sprintf("%v-%d 307.2 KB", pb.MediaType_DOCUMENT, 300<<10); m.File != want { // sendFile's name
		return fmt.Errorf("%s: document msg %s shows %q, want its file name and size %q", w.Name(), doc.id, m.File, want)
	}
	for _, f := range []sentFile{img, doc} {
		if err := verifiedIn(ctx, w, f); err != nil {
			return err
		}
		if err := downloadAll(ctx, f, alice.Phone.Device); err != nil {
			return err
		}
	}
	return cleanWith(ctx, env, w)
}

// browserMediaSent: alice's page attaches an image; bob's phone and
// alice's own phone save it, verified, with the SHA-256 of the file chosen.
func browserMediaSent(ctx context.Context, env *harness.Env) error {
	alice, bob, w, _, err := historyInBrowser(ctx, env)
	if err != nil {
		return err
	}
	bobUser := bob.Phone.Self().User
	if err := w.OpenChat(ctx, bobUser); err != nil {
		return err
	}
	dir := env.TempDir()
	path, sum, err := harness.ImageFile(dir, "from-the-browser.png", 640, 480)
	if err != nil {
		return err
	}
	sent, err := w.Attach(ctx, path, "a picture from the browser")
	if err != nil {
		return err
	}
	if sent.Media != driver.MediaImage || sent.Text != "a picture from the browser" {
		return fmt.Errorf("%s shows the attached file as %q media with caption %q", w.Name(), sent.Media, sent.Text)
	}
	f := sentFile{id: sent.ID, sha256: sum}
	if err := downloadedTo(ctx, dir, f, bob.Phone.Device, alice.Phone.Device); err != nil {
		return err
	}
	m, err := received(ctx, bob.Phone.Device, f)
	if err != nil {
		return err
	}
	if m.Text != sent.Text || len(m.Media.Thumbnail) == 0 || m.Media.Width != 640 {
		return fmt.Errorf("bob's phone got msg %s with caption %q, a %d-byte thumbnail, width %d", f.id, m.Text, len(m.Media.Thumbnail), m.Media.Width)
	}
	if err := await(ctx, w.Name()+" to show its image with a preview, delivered", func() error {
		msgs, err := w.Messages(ctx)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.ID == f.id && m.Preview && !m.Uploading && driver.StatusAtLeast(m.Status, driver.StatusDelivered) {
				return nil
			}
		}
		return fmt.Errorf("messages are %+v", msgs)
	}); err != nil {
		return err
	}
	return cleanWith(ctx, env, w)
}

// browserMediaTampered: the relay's copy of an image bob's phone sent is
// damaged; alice's page rejects it, shows why and nothing of it, and opens
// it once the blob is whole again.
func browserMediaTampered(ctx context.Context, env *harness.Env) error {
	alice, bob, w, _, err := historyInBrowser(ctx, env)
	if err != nil {
		return err
	}
	if err := w.OpenChat(ctx, bob.Phone.Self().User); err != nil {
		return err
	}
	f, mine, err := sendTampered(ctx, env, bob.Phone.Device, alice.Phone.Self().User)
	if err != nil {
		return err
	}
	if _, err := mediaShows(ctx, w, f.id, driver.MediaImage); err != nil {
		return err
	}
	m, err := w.DownloadMedia(ctx, f.id)
	if err != nil {
		return err
	}
	switch {
	case m.MediaState != driver.MediaRejected:
		return fmt.Errorf("%s: the tampered msg %s is %q, want rejected", w.Name(), f.id, m.MediaState)
	case !strings.Contains(m.MediaError, e2e.ErrMediaMAC.Error()) && !strings.Contains(m.MediaError, e2e.ErrMediaHash.Error()):
		return fmt.Errorf("%s: the tampered msg %s shows error %q, want a MAC or hash mismatch", w.Name(), f.id, m.MediaError)
	case m.Preview || m.Open || m.MediaSHA256 != "":
		return fmt.Errorf("%s: the tampered msg %s shows preview %v, link %v, SHA-256 %q; want nothing of it", w.Name(), f.id, m.Preview, m.Open, m.MediaSHA256)
	}
	if got := env.Ledger().Totals.Undecryptable; got != 1 {
		return fmt.Errorf("the ledger counts %d deliveries undecryptable, want the page's refusal", got)
	}
	// Repaired, it opens on the page and on alice's phone.
	if err := env.TamperMedia(mine.Media); err != nil {
		return err
	}
	if err := verifiedIn(ctx, w, f); err != nil {
		return err
	}
	if err := downloadAll(ctx, f, alice.Phone.Device); err != nil {
		return err
	}
	if err := cleanWith(ctx, env, w); err != nil {
		return err
	}
	if got := env.Ledger().Totals.Recovered; got != 1 {
		return errors.New("the ledger does not count the page's download after the repair as a recovery")
	}
	return nil
}
