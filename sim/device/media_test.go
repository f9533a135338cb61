package device

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/relay"
	"github.com/linksim/linksim/sim/wire/pb"
)

// twoPhones registers alice and bob on a fresh in-process relay. Their
// events go to the channel returned; once it is full, further events are
// dropped rather than block the devices.
func twoPhones(t testing.TB, cfg relay.Config) (dataDir string, alice, bob *Device, events chan Event) {
	t.Helper()
	dataDir = t.TempDir()
	cfg.DataDir = dataDir
	srv, err := relay.Serve(cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	events = make(chan Event, 1000)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	open := func(name, user string) *Device {
		cfg := Config{Name: name, RelayURL: srv.WSURL(), RelayKey: srv.Key(), MediaDir: t.TempDir(),
			Events: func(e Event) {
				select {
				case events <- e:
				default:
				}
			}}
		d, err := Register(ctx, cfg, user, name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	return dataDir, open("alice", "+15550100"), open("bob", "+15550101"), events
}

// await returns the next event of kind, skipping others.
func await(t *testing.T, events chan Event, kind EventKind) Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-events:
			if e.Kind == kind {
				return e
			}
		case <-timeout:
			t.Fatalf("no %v event within 10s", kind)
		}
	}
}

func TestSendMediaDownloadAndTamper(t *testing.T) {
	dataDir, alice, bob, events := twoPhones(t, relay.Config{NoSync: true})
	ctx := context.Background()
	var pic bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 640, 360))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	png.Encode(&pic, img)
	want := sha256.Sum256(pic.Bytes())

	id, err := alice.SendMedia(ctx, bob.Self().User, MediaFile{Type: pb.MediaType_IMAGE, Reader: bytes.NewReader(pic.Bytes()),
		MimeType: "image/png", FileName: "pic.png", Caption: "look"})
	if err != nil {
		t.Fatal(err)
	}
	got := await(t, events, MediaReceived)
	if got.MessageID != id || got.Device != "bob" {
		t.Fatalf("MediaReceived %+v, want msg %s on bob", got, id)
	}
	msgs := bob.Messages(alice.Self().User)
	if len(msgs) != 1 || msgs[0].Media == nil || msgs[0].Text != "look" {
		t.Fatalf("bob's chat with alice: %+v, want the image with its caption", msgs)
	}
	m := msgs[0].Media
	if m.Width != 640 || m.Height != 360 || m.FileName != "pic.png" {
		t.Errorf("image descriptor: %dx%d %q, want 640x360 pic.png", m.Width, m.Height, m.FileName)
	}
	if thumb, err := jpeg.Decode(bytes.NewReader(m.Thumbnail)); err != nil || thumb.Bounds().Dx() != thumbSide {
		t.Errorf("thumbnail: %v (err %v), want a JPEG %d wide", thumb, err, thumbSide)
	}
	r, err := bob.Download(ctx, msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(r)
	r.Close()
	if sha256.Sum256(plain) != want {
		t.Fatalf("bob downloaded %d bytes that are not alice's picture", len(plain))
	}

	// Flip one byte of the stored blob: bob must refuse it.
	blob := filepath.Join(dataDir, "media", "blobs", hex.EncodeToString(m.FileEncSHA256))
	raw, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0x80
	os.WriteFile(blob, raw, 0o600)
	r, err = bob.Download(ctx, msgs[0])
	if !errors.Is(err, e2e.ErrMediaMAC) || r != nil {
		t.Fatalf("download of a tampered blob: %v, want e2e.ErrMediaMAC and no plaintext", err)
	}
	if e := await(t, events, MediaRejected); e.MessageID != id {
		t.Errorf("MediaRejected for %s, want %s", e.MessageID, id)
	}
	if left, _ := os.ReadDir(bob.cfg.MediaDir); len(left) != 0 {
		t.Errorf("bob's media dir holds %d files after the downloads, want none", len(left))
	}
}

func TestMediaURL(t *testing.T) {
	for relayURL, want := range map[string]string{
		"ws://127.0.0.1:8080/ws":         "http://127.0.0.1:8080/media/x",
		"wss://relay.example/ws":         "https://relay.example/media/x",
		"ws://proxy:9/prefix/ws?debug=1": "http://proxy:9/prefix/media/x",
	} {
		d := &Device{cfg: Config{RelayURL: relayURL}}
		if got, err := d.mediaURL("/media/x"); err != nil || got != want {
			t.Errorf("media URL for %s: %q (%v), want %q", relayURL, got, err, want)
		}
	}
	if _, err := (&Device{cfg: Config{RelayURL: "http://relay/ws"}}).mediaURL("/media/x"); err == nil {
		t.Error("an http:// relay URL gave a media URL; want an error")
	}
}

func TestMediaOfRefusesOtherPaths(t *testing.T) {
	sum := sha256.Sum256([]byte("blob"))
	ok := &pb.Media{MediaKey: make([]byte, 32), FileSha256: make([]byte, 32), FileEncSha256: sum[:], DirectPath: "/media/" + hex.EncodeToString(sum[:])}
	if _, err := mediaOf(ok); err != nil {
		t.Fatalf("valid descriptor refused: %v", err)
	}
	other := sha256.Sum256([]byte("another blob"))
	for _, path := range []string{"/healthz", "/media/../relay.key", "/media/" + hex.EncodeToString(other[:]), "http://evil" + ok.DirectPath, ""} {
		bad := &pb.Media{MediaKey: ok.MediaKey, FileSha256: ok.FileSha256, FileEncSha256: ok.FileEncSha256, DirectPath: path}
		if _, err := mediaOf(bad); err == nil {
			t.Errorf("direct path %q accepted", path)
		}
	}
}

func TestThumbnails(t *testing.T) {
	for _, size := range []image.Point{{4000, 3000}, {50, 400}, {10, 10}} {
		img := image.NewRGBA(image.Rect(0, 0, size.X, size.Y))
		img.Set(0, 0, color.White)
		var enc bytes.Buffer
		jpeg.Encode(&enc, img, nil)
		p := newImageProbe()
		io.Copy(io.Discard, p.tee(&enc))
		thumb, w, h := p.result()
		got, err := jpeg.Decode(bytes.NewReader(thumb))
		if err != nil || int(w) != size.X || int(h) != size.Y {
			t.Fatalf("%v: thumbnail error %v, size %dx%d", size, err, w, h)
		}
		if b := got.Bounds(); max(b.Dx(), b.Dy()) > thumbSide {
			t.Errorf("%v: thumbnail %v, want it to fit %d×%d", size, b, thumbSide, thumbSide)
		}
	}
	p := newImageProbe()
	io.Copy(io.Discard, p.tee(bytes.NewReader([]byte("not an image at all"))))
	if thumb, w, h := p.result(); thumb != nil || w != 0 || h != 0 {
		t.Errorf("thumbnail of a non-image: %d bytes %dx%d, want none", len(thumb), w, h)
	}
	if _, err := jpeg.Decode(bytes.NewReader(videoPoster())); err != nil {
		t.Errorf("video poster: %v", err)
	}
}
