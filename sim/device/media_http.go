package device

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
)

// mediaAttempts bounds how often one upload or download is tried: enough
// to ride out a few cut connections, few enough to give up on a dead relay.
const mediaAttempts = 6

// HTTP status codes the media store answers with (net/http is not linked
// into the web app, see media_fetch_js.go).
const (
	statusOK             = 200
	statusCreated        = 201
	statusPartialContent = 206
	statusForbidden      = 403
)

// mediaRequest is one request to the relay's media store, made by
// roundTrip: net/http natively (media_client.go), the page's fetch in a
// browser (media_fetch_js.go).
type mediaRequest struct {
	method, url string
	header      map[string]string
	// body and its size, for a PUT.
	body io.Reader
	size int64
}

// mediaResponse is the media store's answer; the caller closes body.
type mediaResponse struct {
	status       int
	contentRange string
	body         io.ReadCloser
}

// httpStatusError is an HTTP answer other than success.
type httpStatusError struct {
	code int
	msg  string
}

func (e *httpStatusError) Error() string {
	return fmt.Sprintf("relay media store: %d: %s", e.code, e.msg)
}

// retryable reports whether trying again may help: the connection broke, or
// the relay had trouble. A refusal (too large, wrong hash, no such blob) or
// a blob that failed verification will not change.
func retryable(err error) bool {
	var he *httpStatusError
	if errors.As(err, &he) {
		return he.code >= 500 || he.code == statusForbidden // 403: a new token helps
	}
	return !errors.Is(err, e2e.ErrMediaMAC) && !errors.Is(err, e2e.ErrMediaHash) && !errors.Is(err, context.Canceled) &&
		!errors.Is(err, ErrSpoolFull)
}

// mediaURL is where path is on the relay, reached the way the device reaches
// the relay: ws://host/ws gives http://host (through a fault proxy too, since
// it forwards raw TCP).
func (d *Device) mediaURL(path string) (string, error) {
	u, err := url.Parse(d.cfg.RelayURL)
	if err != nil {
		return "", fmt.Errorf("relay URL: %w", err)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return "", fmt.Errorf("relay URL %q is not ws:// or wss://", d.cfg.RelayURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/ws") + path
	u.RawQuery, u.Fragment = "", ""
	return u.String(), nil
}

// upload encrypts src into a spool file (its hash must be known before the
// upload starts, and a retry must send the same bytes again), then puts the
// blob in the relay's media store. It reports MediaUploaded for message id.
func (d *Device) upload(ctx context.Context, id string, t pb.MediaType, src io.Reader) (*Media, error) {
	start := time.Now()
	spool, err := d.spool().Create()
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	defer spool.Close()
	key := e2e.NewMediaKey()
	sums, err := e2e.EncryptMedia(spool, src, key, t)
	if err != nil {
		return nil, err
	}
	direct, err := d.putBlob(ctx, spool, sums)
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	m := &Media{Type: t, DirectPath: direct, Key: key, FileSHA256: sums.FileSHA256, FileEncSHA256: sums.FileEncSHA256, Size: sums.FileLength}
	d.emit(Event{Kind: MediaUploaded, MessageID: id, Media: m, Took: time.Since(start)})
	return m, nil
}

// putBlob gets an upload token and PUTs the blob, retrying with backoff when
// the upload is cut, with the same token while it is valid. It returns the
// blob's direct path.
func (d *Device) putBlob(ctx context.Context, blob io.ReaderAt, sums e2e.MediaSums) (string, error) {
	var tok *pb.MediaUploadToken
	for attempt := 1; ; attempt++ {
		if tok == nil || time.Now().UnixMilli() >= tok.GetExpiresUnixMs() {
			req := &pb.MediaUpload{Size: uint64(sums.EncLength), EncSha256: sums.FileEncSHA256}
			ans, err := d.Call(ctx, &pb.Frame{Body: &pb.Frame_MediaUpload{MediaUpload: req}})
			if err != nil {
				return "", fmt.Errorf("token: %w", err)
			}
			if tok = ans.GetMediaUploadToken(); tok == nil {
				return "", fmt.Errorf("token: relay answered %T", ans.GetBody())
			}
			if tok.GetExists() {
				return tok.GetDirectPath(), nil // someone uploaded these very bytes
			}
		}
		err := d.put(ctx, tok.GetUrl(), io.NewSectionReader(blob, 0, sums.EncLength))
		if err == nil {
			return tok.GetDirectPath(), nil
		}
		var he *httpStatusError
		if errors.As(err, &he) && he.code == statusForbidden {
			tok = nil
		}
		if !retryable(err) || attempt == mediaAttempts || ctx.Err() != nil {
			return "", fmt.Errorf("attempt %d: %w", attempt, err)
		}
		d.log.Info("media upload failed, retrying", "attempt", attempt, "err", err)
		if err := d.pause(ctx, d.backoff(attempt)); err != nil {
			return "", err
		}
	}
}

// do makes req to path on the relay's media store. Cancelling it (what a
// stalled body's watch does) ends the transfer; the caller calls cancel
// once done with the response.
func (d *Device) do(ctx context.Context, path string, req mediaRequest) (*mediaResponse, context.CancelFunc, error) {
	u, err := d.mediaURL(path)
	if err != nil {
		return nil, nil, err
	}
	req.url = u
	ctx, cancel := context.WithCancel(ctx)
	if req.body != nil {
		req.body = watch(req.body, d.cfg.CallTimeout, cancel)
	}
	resp, err := roundTrip(ctx, req)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return resp, cancel, nil
}

func (d *Device) put(ctx context.Context, path string, body *io.SectionReader) error {
	resp, cancel, err := d.do(ctx, path, mediaRequest{
		method: "PUT",
		header: map[string]string{"Content-Type": "application/octet-stream", "Expect": "100-continue"},
		body:   body,
		size:   body.Size(),
	})
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.body.Close()
	if resp.status != statusOK && resp.status != statusCreated {
		return statusError(resp)
	}
	return nil
}

func statusError(resp *mediaResponse) error {
	msg, _ := io.ReadAll(io.LimitReader(resp.body, 512))
	return &httpStatusError{code: resp.status, msg: strings.TrimSpace(string(msg))}
}

// fetch downloads the blob at path into dec. A download that is cut resumes
// where it stopped, with a Range request, so the bytes already verified on
// the way are not fetched again.
func (d *Device) fetch(ctx context.Context, path string, dec *e2e.MediaDecrypter) error {
	for attempt := 1; ; attempt++ {
		err := d.get(ctx, path, dec)
		if err == nil {
			return nil
		}
		if !retryable(err) || attempt == mediaAttempts || ctx.Err() != nil {
			return fmt.Errorf("fetch %s (attempt %d, %d of %d bytes): %w", path, attempt, dec.Written(), dec.Size(), err)
		}
		d.log.Info("media download failed, resuming", "attempt", attempt, "at", dec.Written(), "err", err)
		if err := d.pause(ctx, d.backoff(attempt)); err != nil {
			return err
		}
	}
}

func (d *Device) get(ctx context.Context, path string, dec *e2e.MediaDecrypter) error {
	// A browser's HTTP cache could hand back a copy that already failed
	// verification (a blob damaged at the relay, since repaired): always
	// ask the relay.
	header := map[string]string{"Cache-Control": "no-cache"}
	at := dec.Written()
	if at > 0 {
		header["Range"] = fmt.Sprintf("bytes=%d-", at)
	}
	resp, cancel, err := d.do(ctx, path, mediaRequest{method: "GET", header: header})
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.body.Close()
	body := io.Reader(resp.body)
	switch {
	case resp.status == statusPartialContent && at > 0:
		if !strings.HasPrefix(resp.contentRange, fmt.Sprintf("bytes %d-", at)) {
			return fmt.Errorf("asked for bytes from %d, got range %q", at, resp.contentRange)
		}
	case resp.status == statusOK:
		// The whole blob, though a range was asked for: skip what we have.
		if _, err := io.CopyN(io.Discard, body, at); err != nil {
			return err
		}
	default:
		return statusError(resp)
	}
	// A body that ends early without an error is a blob shorter than the
	// message says: Commit finds it, retrying would not help.
	_, err = io.Copy(dec, watch(body, d.cfg.CallTimeout, cancel))
	return err
}

// pause sleeps wait, unless ctx ends or the device closes first.
func (d *Device) pause(ctx context.Context, wait time.Duration) error {
	select {
	case <-time.After(wait):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-d.ctx.Done():
		return ErrClosed
	}
}

// watch returns r, calling stall when no Read returns for idle, counted
// from the last one (or from now). A transfer through a link that went
// silent (a blackhole) is cancelled and retried instead of hanging, while a
// slow one that still moves goes on. The timer keeps running after the last
// Read, so an upload whose answer never comes is cancelled too; stall must
// be harmless once the transfer is over (a context's cancel is).
func watch(r io.Reader, idle time.Duration, stall func()) io.Reader {
	return &watched{r: r, idle: idle, timer: time.AfterFunc(idle, stall)}
}

type watched struct {
	r     io.Reader
	idle  time.Duration
	timer *time.Timer
}

func (w *watched) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	w.timer.Reset(w.idle)
	return n, err
}
