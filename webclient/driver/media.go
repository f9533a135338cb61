package driver

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/chromedp/chromedp"
)

// Media kinds (Message.Media) and download states (Message.MediaState).
const (
	MediaImage    = "image"
	MediaVideo    = "video"
	MediaDocument = "document"

	MediaDownloading = "downloading"
	MediaVerified    = "verified"
	MediaRejected    = "rejected"
)

// Attach sends the file at path (on this machine) in the open conversation
// with caption, as a user choosing it with the attach button would: the
// caption is typed into the composer, the file set on the hidden file
// input. It waits until the message shows with its id and returns it; it
// may still be uploading (Uploading, status pending).
func (p *Page) Attach(ctx context.Context, path, caption string) (Message, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Message{}, err
	}
	before, err := p.Messages(ctx)
	if err != nil {
		return Message{}, err
	}
	known := make(map[string]bool, len(before))
	for _, m := range before {
		known[m.ID] = true
	}
	if caption != "" {
		if err := p.typeInto(ctx, "composer", caption); err != nil {
			return Message{}, err
		}
	}
	if err := p.do(ctx, "attach "+filepath.Base(path),
		chromedp.SetUploadFiles(testID("attach-input"), []string{abs}, chromedp.NodeReady)); err != nil {
		return Message{}, err
	}
	var sent Message
	err = p.wait(ctx, fmt.Sprintf("the attached file %s to show", filepath.Base(path)), func(ctx context.Context) (bool, string, error) {
		msgs, err := p.Messages(ctx)
		if err != nil {
			return false, "", err
		}
		for _, m := range msgs {
			if m.Direction == Out && m.Media != "" && m.ID != "" && !known[m.ID] {
				sent = m
				return true, "", nil
			}
		}
		if t, _ := p.ErrorText(ctx); t != "" {
			return false, fmt.Sprintf("error %q", t), nil
		}
		return false, fmt.Sprintf("%d messages", len(msgs)), nil
	})
	return sent, err
}

// DownloadMedia clicks the download button of media message id in the open
// conversation (also after a rejection: it then tries again) and waits
// until the page verified or rejected the file; it returns the message as
// it then shows. A rejection is no error: the message's MediaState and
// MediaError tell.
func (p *Page) DownloadMedia(ctx context.Context, id string) (Message, error) {
	msgs, err := p.Messages(ctx)
	if err != nil {
		return Message{}, err
	}
	tries := -1
	for _, m := range msgs {
		if m.ID == id {
			tries = m.MediaTries
		}
	}
	if tries < 0 {
		return Message{}, fmt.Errorf("%s: download media: no msg %s in the open conversation", p.Name(), id)
	}
	if err := p.click(ctx, "download media of msg "+id,
		chromedp.CSS(string(testID("message", attr("data-id", id)))+` `+string(testID("media-download")))); err != nil {
		return Message{}, err
	}
	var got Message
	err = p.wait(ctx, "msg "+id+" to verify or reject its media", func(ctx context.Context) (bool, string, error) {
		msgs, err := p.Messages(ctx)
		if err != nil {
			return false, "", err
		}
		for _, m := range msgs {
			if m.ID == id {
				got = m
				done := m.MediaTries > tries && (m.MediaState == MediaVerified || m.MediaState == MediaRejected)
				return done, fmt.Sprintf("media state %q", m.MediaState), nil
			}
		}
		return false, "no such message", nil
	})
	return got, err
}
