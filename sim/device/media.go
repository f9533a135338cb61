package device

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
)

// Media is a media message's attachment as a device keeps it: where the
// encrypted blob is, the key that opens it and the hashes that prove it
// intact. Download fetches it.
type Media struct {
	Type          pb.MediaType
	DirectPath    string // on the relay: /media/<FileEncSHA256 in hex>
	Key           []byte
	FileSHA256    []byte
	FileEncSHA256 []byte
	Size          int64 // plaintext bytes
	MimeType      string
	FileName      string
	Thumbnail     []byte // a small JPEG, for images and videos
	Width, Height uint32
}

// Proto is m as messages carry it (without caption, time or chat, which
// belong to the message). A nil m gives nil.
func (m *Media) Proto() *pb.Media {
	if m == nil {
		return nil
	}
	return &pb.Media{
		Type: m.Type, DirectPath: m.DirectPath, MediaKey: m.Key, FileSha256: m.FileSHA256,
		FileEncSha256: m.FileEncSHA256, FileLength: uint64(m.Size), MimeType: m.MimeType,
		FileName: m.FileName, Thumbnail: m.Thumbnail, Width: m.Width, Height: m.Height,
	}
}

// mediaOf checks what a message says about its media. It refuses a
// descriptor no download could verify, and a direct path other than the
// blob's own (/media/<its SHA-256 in hex>), so a message cannot make the
// device fetch anything else.
func mediaOf(p *pb.Media) (*Media, error) {
	m := &Media{
		Type: p.GetType(), DirectPath: p.GetDirectPath(), Key: p.GetMediaKey(), FileSHA256: p.GetFileSha256(),
		FileEncSHA256: p.GetFileEncSha256(), Size: int64(p.GetFileLength()), MimeType: p.GetMimeType(),
		FileName: p.GetFileName(), Thumbnail: p.GetThumbnail(), Width: p.GetWidth(), Height: p.GetHeight(),
	}
	switch {
	case len(m.Key) != e2e.MediaKeySize:
		return nil, fmt.Errorf("media key of %d bytes", len(m.Key))
	case len(m.FileSHA256) != sha256.Size || len(m.FileEncSHA256) != sha256.Size:
		return nil, errors.New("media without its hashes")
	case m.Size < 0:
		return nil, fmt.Errorf("media of %d bytes", m.Size)
	case m.DirectPath != "/media/"+hex.EncodeToString(m.FileEncSHA256):
		return nil, fmt.Errorf("media direct path %q is not its blob's", m.DirectPath)
	}
	return m, nil
}

// MediaFile is a file to send as a media message.
type MediaFile struct {
	// Type is IMAGE, VIDEO or DOCUMENT.
	Type pb.MediaType
	// Path names the file to send; or else Reader yields its bytes. Either
	// is read once, as it is encrypted.
	Path   string
	Reader io.Reader
	// MimeType, FileName and Caption are shown by the receiving devices.
	MimeType, FileName, Caption string
	// Width and Height describe a video (an image's are read from it).
	Width, Height uint32
}

func (f MediaFile) open() (io.Reader, func(), error) {
	if f.Reader != nil {
		return f.Reader, func() {}, nil
	}
	file, err := os.Open(f.Path)
	if err != nil {
		return nil, nil, err
	}
	return file, func() { file.Close() }, nil
}

// SendMedia sends a file to user `to` like SendText sends text: the file is
// encrypted with a fresh media key, uploaded to the relay's media store
// (retried when the upload is cut), and the message carrying the key and
// hashes goes to every device of `to` and every other device of ours. Images
// get a thumbnail, videos a placeholder poster. It returns the message id
// once the relay has stored the message.
func (d *Device) SendMedia(ctx context.Context, to string, f MediaFile) (string, error) {
	id := NewMessageID()
	return id, d.SendMediaID(ctx, id, to, f)
}

// SendMediaID is SendMedia with a caller-chosen message id (a web client
// shows the message as pending under it while the file uploads).
func (d *Device) SendMediaID(ctx context.Context, id, to string, f MediaFile) error {
	if err := d.checkPeer(to); err != nil {
		return err
	}
	fail := func(err error) error {
		return fmt.Errorf("%s: send %v to %s: %w", d.cfg.Name, f.Type, to, err)
	}
	if f.Type != pb.MediaType_IMAGE && f.Type != pb.MediaType_VIDEO && f.Type != pb.MediaType_DOCUMENT {
		return fail(errors.New("a media message is an image, a video or a document"))
	}
	src, closeSrc, err := f.open()
	if err != nil {
		return fail(err)
	}
	defer closeSrc()
	var probe *imageProbe
	if f.Type == pb.MediaType_IMAGE {
		// The thumbnail is made from the same read as the encryption.
		probe = newImageProbe()
		src = probe.tee(src)
	}
	m, err := d.upload(ctx, id, f.Type, src)
	if err != nil {
		if probe != nil {
			probe.result()
		}
		return fail(err)
	}
	m.MimeType, m.FileName, m.Width, m.Height = f.MimeType, f.FileName, f.Width, f.Height
	switch {
	case probe != nil:
		m.Thumbnail, m.Width, m.Height = probe.result()
	case f.Type == pb.MediaType_VIDEO:
		m.Thumbnail = videoPoster()
	}
	now := time.Now()
	p := m.Proto()
	p.Caption, p.SentUnixMs = f.Caption, now.UnixMilli()
	msg := Message{ID: id, From: d.self.User, Text: f.Caption, Sent: now, Outgoing: true, Media: m}
	return d.send(ctx, to, msg, &pb.Content{Kind: &pb.Content_Media{Media: p}})
}

// receiveMedia stores an arriving media message; its blob is fetched when
// someone calls Download. A history bundle is fetched and imported at once.
func (d *Device) receiveMedia(from e2e.Address, id string, p *pb.Media, delivered map[string][]string) error {
	if p.GetType() == pb.MediaType_HISTORY {
		return d.receiveHistory(from, nil, p)
	}
	m, err := mediaOf(p)
	if err != nil {
		d.log.Warn("media message that cannot be verified", "msg", id, "from", from.String(), "err", err)
		d.emit(Event{Kind: MediaRejected, MessageID: id, From: from, Err: err})
		return nil
	}
	msg := Message{ID: id, From: from.User, Text: p.GetCaption(), Sent: sentTime(p.GetSentUnixMs()), Media: m}
	return d.receiveMessage(from, msg, p.GetChatUser(), Event{Kind: MediaReceived, Media: m}, delivered)
}

// Download fetches the media of msg, verifies it, and only then returns its
// plaintext, kept in the device's Spool (a file in Config.MediaDir natively,
// memory in a browser) until the reader is closed. A blob that fails its MAC
// or hash check is rejected with an error wrapping e2e.ErrMediaMAC or
// e2e.ErrMediaHash, and nothing of it is shown.
func (d *Device) Download(ctx context.Context, msg Message) (io.ReadCloser, error) {
	var plain io.ReadCloser
	err := d.downloading(ctx, msg, func(m *Media) (err error) {
		plain, err = d.downloadSpooled(ctx, m)
		return err
	})
	return plain, err
}

type removeOnClose struct{ *os.File }

func (r removeOnClose) Close() error {
	err := r.File.Close()
	return errors.Join(err, os.Remove(r.Name()))
}

// DownloadTo is Download into the file at path, which appears (or is
// replaced) only once the media verified. It needs a file system: in a
// browser use Download.
func (d *Device) DownloadTo(ctx context.Context, msg Message, path string) error {
	return d.downloading(ctx, msg, func(m *Media) error { return d.download(ctx, m, path) })
}

// downloading runs get for msg's media and reports MediaDownloaded or
// MediaRejected.
func (d *Device) downloading(ctx context.Context, msg Message, get func(*Media) error) error {
	if msg.Media == nil {
		return fmt.Errorf("%s: download msg %s: not a media message", d.cfg.Name, msg.ID)
	}
	start := time.Now()
	err := get(msg.Media)
	ev := Event{MessageID: msg.ID, From: e2e.Address{User: msg.From}, Media: msg.Media, Took: time.Since(start)}
	if err != nil {
		err = fmt.Errorf("%s: download msg %s from %s: %w", d.cfg.Name, msg.ID, msg.From, err)
		if ctx.Err() == nil {
			ev.Kind, ev.Err = MediaRejected, err
			d.emit(ev)
		}
		return err
	}
	ev.Kind = MediaDownloaded
	d.emit(ev)
	return nil
}

// download fetches and verifies m into path.
func (d *Device) download(ctx context.Context, m *Media, path string) error {
	dec, err := e2e.NewMediaDecrypter(m.Proto(), d.cfg.MediaDir)
	if err != nil {
		return err
	}
	if err := d.fetch(ctx, m.DirectPath, dec); err != nil {
		dec.Abort()
		return err
	}
	return dec.Commit(path)
}

// downloadSpooled fetches m into a spool file and returns its plaintext
// once it verified; on failure the spool file is discarded unread.
func (d *Device) downloadSpooled(ctx context.Context, m *Media) (io.ReadCloser, error) {
	f, err := d.spool().Create()
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	dec, err := e2e.NewMediaDecrypterTo(m.Proto(), f)
	if err == nil {
		if err = d.fetch(ctx, m.DirectPath, dec); err != nil {
			dec.Abort()
		}
	}
	if err == nil {
		err = dec.Verify()
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return spooled{io.NewSectionReader(f, 0, m.Size), f}, nil
}
