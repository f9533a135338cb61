//go:build js && wasm

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall/js"

	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/wire/pb"
)

// Media in the page. A file attached in the composer is read into memory
// and sent with device.SendMediaID (the device spools in memory here, up
// to device.DefaultMemorySpoolMax). A media message shows its thumbnail,
// which came inside the end-to-end encrypted message; the file itself is
// fetched only when the user clicks download, and handed out (a Blob and
// its object URL) only after device.Download verified it.

// Download states of a media message (data-media-state).
const (
	mediaDownloading = "downloading"
	mediaVerified    = "verified"
	mediaRejected    = "rejected"
)

// mediaView is what the page knows of one media message's file.
type mediaView struct {
	tries  int // downloads started, shown as data-media-tries
	state  string
	sha256 string // hex SHA-256 of the verified plaintext
	err    string
	url    string // object URL of the verified file
}

// outFile is a file attached here, waiting to be sent.
type outFile struct {
	typ        pb.MediaType
	name, mime string
	data       []byte
}

// mediaType chooses how a file is sent from its MIME type.
func mediaType(mime string) pb.MediaType {
	switch {
	case strings.HasPrefix(mime, "image/"):
		return pb.MediaType_IMAGE
	case strings.HasPrefix(mime, "video/"):
		return pb.MediaType_VIDEO
	default:
		return pb.MediaType_DOCUMENT
	}
}

func mediaKind(t pb.MediaType) string {
	switch t {
	case pb.MediaType_IMAGE:
		return "image"
	case pb.MediaType_VIDEO:
		return "video"
	default:
		return "document"
	}
}

// newAttach makes the composer's attach button and its hidden file input.
// A chosen file is read (off the UI loop: reading waits on a promise) and
// sent to the open chat with the composer's text as its caption.
func (c *conversation) newAttach() (button, input *elem) {
	input = el("input", "type", "file", "data-testid", "attach-input", "class", "attach-input", "hidden", "")
	button = el("button", "data-testid", "attach", "class", "icon-btn attach", "type", "button", "title", "Attach", "aria-label", "Attach").svg(iconAttach)
	button.on("click", func(js.Value) { input.Call("click") })
	input.on("change", func(js.Value) {
		files := input.Get("files")
		if files.Get("length").Int() == 0 {
			return
		}
		file := files.Call("item", 0)
		input.setValue("") // choosing the same file again is a new attachment
		caption := strings.TrimSpace(c.composer.value())
		c.composer.setValue("")
		peer := c.el.Call("getAttribute", "data-peer")
		if peer.IsNull() {
			return
		}
		c.m.u.spawn("attach", func() { c.m.attach(peer.String(), file, caption) })
	})
	return button, input
}

// attach reads file and queues it for peer. Not on the UI loop.
func (m *mainView) attach(peer string, file js.Value, caption string) {
	name, mime := file.Get("name").String(), file.Get("type").String()
	if size := int64(file.Get("size").Float()); size > device.DefaultMemorySpoolMax {
		m.u.post(func() {
			m.u.showError(fmt.Sprintf("%s is too large to send from the browser: %d MiB, the limit is %d MiB",
				name, size>>20, device.DefaultMemorySpoolMax>>20))
		})
		return
	}
	buf, err := await(file.Call("arrayBuffer"))
	if err != nil {
		m.u.post(func() { m.u.showError(fmt.Sprintf("Cannot read %s: %v", name, err)) })
		return
	}
	data := make([]byte, buf.Get("byteLength").Int())
	js.CopyBytesToGo(data, global.Get("Uint8Array").New(buf))
	if mime == "" {
		mime = "application/octet-stream"
	}
	f := &outFile{typ: mediaType(mime), name: name, mime: mime, data: data}
	m.u.post(func() { m.queue(peer, caption, f) })
}

// sendFile sends a queued file. Not on the UI loop.
func (m *mainView) sendFile(o outgoing) error {
	return m.src.SendMediaID(m.ctx, o.id, o.peer, device.MediaFile{
		Type: o.file.typ, Reader: bytes.NewReader(o.file.data), MimeType: o.file.mime, FileName: o.file.name, Caption: o.text,
	})
}

// download fetches, verifies and offers the file of message id in the open
// chat. UI loop.
func (m *mainView) download(id string) {
	if v := m.media[id]; v != nil && (v.state == mediaDownloading || v.state == mediaVerified) {
		return
	}
	var msg device.Message
	for _, x := range m.src.Messages(m.conv.peer) {
		if x.ID == id {
			msg = x
		}
	}
	if msg.Media == nil {
		return
	}
	tries := 1
	if v := m.media[id]; v != nil {
		tries = v.tries + 1
	}
	m.media[id] = &mediaView{state: mediaDownloading, tries: tries}
	m.u.spawn("download", func() {
		v := fetchMedia(m, msg)
		v.tries = tries
		if v.err != "" {
			console("error", fmt.Sprintf("media of msg %s rejected: %s", id, v.err))
		} else {
			console("log", fmt.Sprintf("media of msg %s verified, sha256 %s", id, v.sha256))
		}
		m.u.post(func() { m.media[id] = v })
	})
}

// fetchMedia downloads msg's file; only verified bytes reach a Blob.
func fetchMedia(m *mainView, msg device.Message) *mediaView {
	plain, err := m.src.Download(m.ctx, msg)
	if err != nil {
		return &mediaView{state: mediaRejected, err: err.Error()}
	}
	defer plain.Close()
	h := sha256.New()
	data, err := io.ReadAll(io.TeeReader(plain, h))
	if err != nil {
		return &mediaView{state: mediaRejected, err: err.Error()}
	}
	arr := global.Get("Uint8Array").New(len(data))
	js.CopyBytesToJS(arr, data)
	opts := map[string]any{"type": msg.Media.MimeType}
	blob := global.Get("Blob").New([]any{arr}, opts)
	url := global.Get("URL").Call("createObjectURL", blob).String()
	return &mediaView{state: mediaVerified, sha256: hex.EncodeToString(h.Sum(nil)), url: url}
}

// await waits for a promise. Never on the UI loop or in a callback.
func await(promise js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	done := make(chan result, 1)
	ok := js.FuncOf(func(_ js.Value, args []js.Value) any {
		done <- result{v: args[0]}
		return nil
	})
	fail := js.FuncOf(func(_ js.Value, args []js.Value) any {
		done <- result{err: errors.New(args[0].Call("toString").String())}
		return nil
	})
	defer ok.Release()
	defer fail.Release()
	promise.Call("then", ok, fail)
	r := <-done
	return r.v, r.err
}

// mediaRow is the media part of a message row.
type mediaRow struct {
	el, preview, doc, progress, download, open, err *elem
	thumb                                           []byte // shown in preview
	busy                                            bool   // download disabled
}

func newMediaRow(t pb.MediaType) *mediaRow {
	r := &mediaRow{
		preview:  el("img", "data-testid", "media-preview", "class", "media-preview", "alt", ""),
		doc:      el("div", "data-testid", "media-file", "class", "media-file"),
		progress: el("div", "data-testid", "upload-progress", "class", "upload-progress", "role", "progressbar"),
		download: el("button", "data-testid", "media-download", "class", "media-download", "type", "button"),
		open:     el("a", "data-testid", "media-open", "class", "media-open", "target", "_blank", "rel", "noopener"),
		err:      el("div", "data-testid", "media-error", "class", "media-error", "role", "alert"),
	}
	r.preview.show(false)
	r.open.setText("Open")
	r.el = el("div", "class", "media media-"+mediaKind(t)).add(r.preview, r.doc, r.progress, r.download, r.open, r.err)
	return r
}

// render shows msg's media: pending says it is uploading, v (nil before
// any download) how its download went.
func (r *mediaRow) render(msg device.Message, pending bool, v *mediaView) {
	m := msg.Media
	state, errText, url := "", "", ""
	if v != nil {
		state, errText, url = v.state, v.err, v.url
	}
	// A thumbnail came in the encrypted message, not from the blob; still
	// nothing of a message whose blob failed is shown.
	if len(m.Thumbnail) > 0 && !bytes.Equal(m.Thumbnail, r.thumb) {
		r.thumb = m.Thumbnail
		r.preview.attr("src", "data:image/jpeg;base64,"+base64.StdEncoding.EncodeToString(m.Thumbnail))
	}
	r.preview.show(len(r.thumb) > 0 && state != mediaRejected && m.Type != pb.MediaType_DOCUMENT)
	info := m.FileName
	if m.Size > 0 || !pending {
		info = strings.TrimSpace(info + " " + byteSize(m.Size))
	}
	r.doc.setText(info).show(m.Type == pb.MediaType_DOCUMENT || pending)
	r.progress.setText("Uploading…").show(pending)
	label := "Download"
	if m.Type != pb.MediaType_DOCUMENT {
		label = "Open"
	}
	switch state {
	case mediaDownloading:
		label = "Downloading…"
	case mediaRejected:
		label = "Try again"
	}
	r.download.setText(label).show(!pending && state != mediaVerified)
	if busy := state == mediaDownloading; busy != r.busy {
		r.busy = busy
		r.download.Set("disabled", busy)
	}
	if url != "" {
		r.open.attr("href", url).attr("download", or(m.FileName, "media"))
	}
	r.open.show(state == mediaVerified)
	r.err.setText(errText).show(state == mediaRejected)
}

// byteSize is n for people: 512 B, 12.3 KB, 4.0 MB.
func byteSize(n int64) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d B", n)
	case n < 1000*1000:
		return fmt.Sprintf("%.1f KB", float64(n)/1000)
	default:
		return fmt.Sprintf("%.1f MB", float64(n)/1000/1000)
	}
}

// mediaLabel is how the chat list shows a media message without caption.
func mediaLabel(m *device.Media) string {
	switch m.Type {
	case pb.MediaType_IMAGE:
		return "Photo"
	case pb.MediaType_VIDEO:
		return "Video"
	default:
		return or(m.FileName, "Document")
	}
}

const iconAttach = `<svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true"><path d="M16.5 6v11.5a4 4 0 0 1-8 0V5a2.5 2.5 0 0 1 5 0v10.5a1 1 0 0 1-2 0V6H10v9.5a2.5 2.5 0 0 0 5 0V5a4 4 0 0 0-8 0v12.5a5.5 5.5 0 0 0 11 0V6h-1.5z"/></svg>`
