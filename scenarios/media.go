package scenarios

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
)

var mediaFlows = []Flow{
	{
		Feature: "Media", Outcome: "images, videos and documents reach every device of both users, and each verifies",
		Labels: []string{Media}, Timeout: 60 * time.Second,
		Run: mediaEveryType,
		// Three files, each owed to the 3 devices other than its sender's.
		Expect: harness.Expect{Messages: 3, Deliveries: 3 * 3, Devices: 4},
	},
	{
		Feature: "Media", Outcome: "a 50 MiB video crosses a bandwidth-limited link and verifies",
		Labels: []string{Media, Fault}, Timeout: 60 * time.Second, Configure: faulty,
		Run:    mediaLarge,
		Expect: harness.Expect{Messages: 1, Deliveries: 1, Devices: 1},
	},
	{
		Feature: "Media", Outcome: "an upload cut by a link reset completes by retry and is stored once",
		Labels: []string{Media, Reconnect, Fault}, Timeout: 60 * time.Second, Configure: faulty,
		Run:    mediaUploadReset,
		Expect: harness.Expect{Messages: 1, Deliveries: 2, Devices: 2},
	},
	{
		Feature: "Media", Outcome: "a blob tampered with at the relay is rejected by every device, and opens once repaired",
		Labels: []string{Media, Security, Fault}, Timeout: 60 * time.Second,
		Run:    mediaTampered,
		Expect: harness.Expect{Messages: 1, Deliveries: 3, Devices: 3},
	},
	{
		Feature: "Media", Outcome: "media sent while a web client is closed is downloadable when it comes back",
		Labels: []string{Media, Reconnect}, Timeout: 60 * time.Second,
		Run:    mediaOffline,
		Expect: harness.Expect{Messages: 2, Deliveries: 2 * 2, Devices: 2},
	},
	{
		Feature: "Media", Outcome: "a history too large for a message reaches a new web client through the media store",
		Labels: []string{Media, Pairing}, Timeout: 60 * time.Second,
		Run: mediaHistory,
		// 12 texts and an image to bob's phone, before he links.
		Expect: harness.Expect{Messages: 13, Deliveries: 13, Devices: 1},
	},
}

// sentFile is a file a flow sent, for the receivers to verify.
type sentFile struct {
	id     string
	sha256 [32]byte
}

// sendFile writes a file of the given type (an image of ~size bytes'
// worth of pixels, or random bytes) and sends it from d to user to.
func sendFile(ctx context.Context, env *harness.Env, d *device.Device, to string, typ pb.MediaType, size int64) (sentFile, error) {
	dir, name := env.TempDir(), fmt.Sprintf("%v-%d", typ, size)
	var path, mime string
	var sum [32]byte
	var width, height uint32
	var err error
	switch typ {
	case pb.MediaType_IMAGE:
		path, sum, err = harness.ImageFile(dir, name+".png", 640, 480)
		mime = "image/png"
	case pb.MediaType_VIDEO:
		path, sum, err = harness.RandomFile(dir, name+".mp4", size, uint64(size))
		mime, width, height = "video/mp4", 1280, 720
	default:
		path, sum, err = harness.RandomFile(dir, name+".pdf", size, uint64(size))
		mime = "application/pdf"
	}
	if err != nil {
		return sentFile{}, err
	}
	id, err := d.SendMedia(ctx, to, device.MediaFile{Type: typ, Path: path, MimeType: mime,
		FileName: name, Caption: fmt.Sprintf("%v from %s", typ, d.Name()), Width: width, Height: height})
	return sentFile{id: id, sha256: sum}, err
}

// findMessage returns d's message id from any chat.
func findMessage(d *device.Device, id string) (device.Message, error) {
	for _, c := range d.Chats() {
		for _, m := range d.Messages(c.Peer) {
			if m.ID == id {
				return m, nil
			}
		}
	}
	return device.Message{}, fmt.Errorf("%s has no msg %s", d.Name(), id)
}

// received waits until d has media message f and returns it.
func received(ctx context.Context, d *device.Device, f sentFile) (device.Message, error) {
	var m device.Message
	err := await(ctx, d.Name()+" to receive media msg "+f.id, func() (err error) {
		m, err = findMessage(d, f.id)
		if err == nil && m.Media == nil {
			err = fmt.Errorf("%s shows msg %s without its media", d.Name(), f.id)
		}
		return err
	})
	return m, err
}

// downloadAll makes every device receive f, download it and check its
// SHA-256 against what was sent.
func downloadAll(ctx context.Context, f sentFile, devices ...*device.Device) error {
	for _, d := range devices {
		m, err := received(ctx, d, f)
		if err != nil {
			return err
		}
		r, err := d.Download(ctx, m)
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, r)
		r.Close()
		if err != nil {
			return fmt.Errorf("%s reading msg %s: %w", d.Name(), f.id, err)
		}
		if got := [32]byte(h.Sum(nil)); got != f.sha256 {
			return fmt.Errorf("%s downloaded msg %s with SHA-256 %x, the sender's file has %x", d.Name(), f.id, got[:8], f.sha256[:8])
		}
	}
	return nil
}

// others is every device of the users but the sender.
func others(sender *device.Device, users ...*harness.User) []*device.Device {
	var out []*device.Device
	for _, u := range users {
		for _, d := range u.Devices() {
			if d != sender {
				out = append(out, d)
			}
		}
	}
	return out
}

func mediaEveryType(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 1, 1)
	if err != nil {
		return err
	}
	sends := []struct {
		from *device.Device
		to   *harness.User
		typ  pb.MediaType
		size int64
	}{
		{alice.Phone.Device, bob, pb.MediaType_IMAGE, 0},    // phone to web (and phone), copy to alice's web
		{alice.Device(0), bob, pb.MediaType_VIDEO, 3 << 20}, // web to phone, copy to alice's phone
		{bob.Device(0), alice, pb.MediaType_DOCUMENT, 1 << 20},
	}
	for _, s := range sends {
		f, err := sendFile(ctx, env, s.from, s.to.Phone.Self().User, s.typ, s.size)
		if err != nil {
			return err
		}
		if err := downloadAll(ctx, f, others(s.from, alice, bob)...); err != nil {
			return err
		}
		// What a chat shows before any download: a preview.
		m, _ := findMessage(bob.Device(0), f.id)
		if s.typ != pb.MediaType_DOCUMENT && len(m.Media.Thumbnail) == 0 {
			return fmt.Errorf("%s shows %v msg %s without a thumbnail", bob.Device(0).Name(), s.typ, f.id)
		}
		if s.typ == pb.MediaType_IMAGE && (m.Media.Width != 640 || m.Media.Height != 480) {
			return fmt.Errorf("%s shows the 640x480 image as %dx%d", bob.Device(0).Name(), m.Media.Width, m.Media.Height)
		}
	}
	return clean(ctx, env)
}

// largeRate limits the sender's link in mediaLarge: 50 MiB take about 6 s.
const largeRate = 8 << 10 // KB/s

func mediaLarge(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 0, 0)
	if err != nil {
		return err
	}
	lift, err := withFault(env, alice.Phone.Name(), func(l *harness.NetLink) (func(), error) { return l.Bandwidth(largeRate) })
	if err != nil {
		return err
	}
	defer lift()
	const size = 50 << 20
	start := time.Now()
	f, err := sendFile(ctx, env, alice.Phone.Device, bob.Phone.Self().User, pb.MediaType_VIDEO, size)
	if err != nil {
		return err
	}
	// The limit must have been real: the blob cannot have gone faster.
	if took, least := time.Since(start), time.Duration(size/1024/largeRate)*time.Second*9/10; took < least {
		return fmt.Errorf("50 MiB uploaded in %s through a %d KB/s link; it cannot take less than %s", took, largeRate, least)
	}
	if err := downloadAll(ctx, f, bob.Phone.Device); err != nil {
		return err
	}
	return clean(ctx, env)
}

func mediaUploadReset(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 0, 1)
	if err != nil {
		return err
	}
	path, err := env.Net(alice.Phone.Name())
	if err != nil {
		return err
	}
	// 4 MiB take 2 s: time to cut them a quarter of the way. The limit
	// stays on: Toxiproxy takes up to 10 s to lift it from a link that
	// was reset mid-transfer, and the retry may as well be slow too.
	if _, err := path.Bandwidth(2 << 10); err != nil {
		return err
	}
	sent := make(chan error, 1)
	var f sentFile
	go func() {
		var err error
		f, err = sendFile(ctx, env, alice.Phone.Device, bob.Phone.Self().User, pb.MediaType_DOCUMENT, 4<<20)
		sent <- err
	}()
	if err := await(ctx, "the upload to be under way", func() error {
		_, uploading, err := env.StoredMedia()
		if err == nil && (len(uploading) == 0 || uploading[0] < 1<<20) {
			err = fmt.Errorf("uploads in progress at the relay: %v bytes", uploading)
		}
		return err
	}); err != nil {
		return err
	}
	if err := path.Reset(); err != nil {
		return err
	}
	select {
	case err := <-sent:
		if err != nil {
			return fmt.Errorf("the upload did not recover from the reset: %w", err)
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	m, err := findMessage(alice.Phone.Device, f.id)
	if err != nil {
		return err
	}
	if err := await(ctx, "the relay to hold the blob once and no partial upload", func() error {
		blobs, uploading, err := env.StoredMedia()
		if err == nil && (!slices.Equal(blobs, []string{hex.EncodeToString(m.Media.FileEncSHA256)}) || len(uploading) != 0) {
			err = fmt.Errorf("the relay holds blobs %v and uploads of %v bytes", blobs, uploading)
		}
		return err
	}); err != nil {
		return err
	}
	if cut, err := relayCounter(env, `linksim_relay_media_uploads_total{result="cut"}`); err != nil || cut < 1 {
		return fmt.Errorf("the relay counted %v cut uploads (%v); the reset should have cut one", cut, err)
	}
	if err := downloadAll(ctx, f, bob.Devices()...); err != nil {
		return err
	}
	return clean(ctx, env)
}

func mediaTampered(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 1, 1)
	if err != nil {
		return err
	}
	f, mine, err := sendTampered(ctx, env, alice.Phone.Device, bob.Phone.Self().User)
	if err != nil {
		return err
	}
	targets := others(alice.Phone.Device, alice, bob)
	for _, d := range targets {
		m, err := received(ctx, d, f)
		if err != nil {
			return err
		}
		r, err := d.Download(ctx, m)
		if r != nil {
			r.Close()
			return fmt.Errorf("%s showed the tampered blob of msg %s", d.Name(), f.id)
		}
		if !errors.Is(err, e2e.ErrMediaMAC) && !errors.Is(err, e2e.ErrMediaHash) {
			return fmt.Errorf("%s downloading the tampered msg %s: %v, want a MAC or hash mismatch", d.Name(), f.id, err)
		}
	}
	// Each refusal is in the ledger as undecryptable...
	if got := env.Ledger().Totals.Undecryptable; got != len(targets) {
		return fmt.Errorf("the ledger counts %d deliveries undecryptable, want the %d refused", got, len(targets))
	}
	// ...until the blob is whole again: the rejected message was kept,
	// and opens now.
	if err := env.TamperMedia(mine.Media); err != nil {
		return err
	}
	if err := downloadAll(ctx, f, targets...); err != nil {
		return err
	}
	if err := clean(ctx, env); err != nil {
		return err
	}
	if got := env.Ledger().Totals.Recovered; got != len(targets) {
		return fmt.Errorf("the ledger counts %d deliveries recovered, want %d", got, len(targets))
	}
	return nil
}

func mediaOffline(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 0, 1)
	if err != nil {
		return err
	}
	bob.Webs[0].Close()
	var files []sentFile
	for _, typ := range []pb.MediaType{pb.MediaType_IMAGE, pb.MediaType_DOCUMENT} {
		f, err := sendFile(ctx, env, alice.Phone.Device, bob.Phone.Self().User, typ, 256<<10)
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	if _, err := env.Reopen(ctx, bob, 0); err != nil {
		return err
	}
	for _, f := range files {
		if err := downloadAll(ctx, f, bob.Device(0), bob.Phone.Device); err != nil {
			return err
		}
	}
	return clean(ctx, env)
}

// mediaHistory gives alice's phone more history than fits inline (12
// messages of 8 KiB, and an image), then links a web client.
func mediaHistory(ctx context.Context, env *harness.Env) error {
	alice, bob, err := aliceAndBob(ctx, env, 0, 0)
	if err != nil {
		return err
	}
	bobUser := bob.Phone.Self().User
	long := strings.Repeat("history that does not fit in a message. ", 200) // 8 KiB
	for i := range 12 {
		if _, err := alice.Phone.SendText(ctx, bobUser, fmt.Sprintf("#%d %s", i, long)); err != nil {
			return err
		}
	}
	img, err := sendFile(ctx, env, alice.Phone.Device, bobUser, pb.MediaType_IMAGE, 0)
	if err != nil {
		return err
	}
	web, err := env.AddWeb(ctx, alice)
	if err != nil {
		return err
	}
	if err := await(ctx, web.Name()+" to show the whole history", func() error {
		if got, want := len(web.Messages(bobUser)), len(alice.Phone.Messages(bobUser)); got != want {
			return fmt.Errorf("%s shows %d messages with bob, the phone %d", web.Name(), got, want)
		}
		return nil
	}); err != nil {
		return err
	}
	blobs, _, err := env.StoredMedia()
	if err != nil {
		return err
	}
	if len(blobs) != 2 {
		return fmt.Errorf("the relay holds %d blobs, want the image and the history bundle", len(blobs))
	}
	// The image came with the history, and opens like any other; on bob's
	// phone, it is an ordinary delivery.
	if err := downloadAll(ctx, img, alice.Device(0), bob.Phone.Device); err != nil {
		return err
	}
	return clean(ctx, env)
}

// relayCounter reads one sample of the relay's Prometheus metrics.
func relayCounter(env *harness.Env, sample string) (float64, error) {
	resp, err := http.Get(env.Relay().URL() + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no sample %s in the relay's metrics", sample)
}

// sendTampered sends an image from d to user to, then damages the relay's
// copy of its blob; it returns the file and d's own message (whose Media
// TamperMedia takes again to repair the blob).
func sendTampered(ctx context.Context, env *harness.Env, d *device.Device, to string) (sentFile, device.Message, error) {
	f, err := sendFile(ctx, env, d, to, pb.MediaType_IMAGE, 0)
	if err != nil {
		return f, device.Message{}, err
	}
	mine, err := findMessage(d, f.id)
	if err != nil {
		return f, mine, err
	}
	return f, mine, env.TamperMedia(mine.Media)
}
