package relay

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// media is the relay's media service (docs/protocol.md §12): upload tokens
// handed to devices over the Noise channel, the HTTP endpoints that take and
// serve blobs, and the sweeper that forgets old ones.
type media struct {
	r     *Relay
	blobs blobStore

	mu     sync.Mutex
	tokens map[string]uploadToken
	owned  map[store.Address][]string    // each device's tokens, oldest first
	unused map[store.Address]int         // how many of them stored nothing yet
	stored map[store.Address][]time.Time // when each device stored blobs, within MediaTTL

	uploads  sync.WaitGroup // PUTs in progress
	sweeping chan struct{}  // closed when the sweeper ended

	uploadsTotal   *prometheus.CounterVec
	downloadsTotal *prometheus.CounterVec
	uploadedBytes  prometheus.Counter
	swept          prometheus.Counter
}

// uploadToken lets its holder upload one blob: the size and hash a device
// announced. It may be used again until it expires or its blob is stored,
// so an upload that was cut can be retried.
type uploadToken struct {
	owner   store.Address
	size    int64
	sum     []byte
	expires time.Time
	used    bool // its blob was stored (by it or before it)
}

func newMedia(r *Relay, b blobStore) (*media, error) {
	m := &media{
		r: r, blobs: b, sweeping: make(chan struct{}),
		tokens: map[string]uploadToken{}, owned: map[store.Address][]string{},
		unused: map[store.Address]int{}, stored: map[store.Address][]time.Time{},
		uploadsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "linksim_relay_media_uploads_total", Help: "Media uploads by result: stored, exists, or the refusal.",
		}, []string{"result"}),
		downloadsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "linksim_relay_media_downloads_total", Help: "Media downloads (ranges included) by result: ok, missing.",
		}, []string{"result"}),
		uploadedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "linksim_relay_media_uploaded_bytes_total", Help: "Bytes of media blobs stored.",
		}),
		swept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "linksim_relay_media_expired_total", Help: "Media blobs removed after MediaTTL.",
		}),
	}
	blobCount := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "linksim_relay_media_blobs", Help: "Media blobs stored.",
	}, func() float64 { return float64(b.count()) })
	tokenCount := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "linksim_relay_media_upload_tokens", Help: "Upload tokens not yet expired (used ones included).",
	}, func() float64 {
		m.mu.Lock()
		defer m.mu.Unlock()
		return float64(len(m.tokens))
	})
	r.m.reg.MustRegister(m.uploadsTotal, m.downloadsTotal, m.uploadedBytes, m.swept, blobCount, tokenCount)
	go m.sweep()
	return m, nil
}

// sweep expires blobs, checking a few times per MediaTTL (at most hourly),
// and upload tokens, a few times per MediaTokenTTL (at least every minute),
// until the relay closes; at least every 10ms for tests' short TTLs.
func (m *media) sweep() {
	defer close(m.sweeping)
	blobTick := time.NewTicker(min(max(m.r.cfg.MediaTTL/4, 10*time.Millisecond), time.Hour))
	defer blobTick.Stop()
	tokenTick := time.NewTicker(min(max(m.r.cfg.MediaTokenTTL/4, 10*time.Millisecond), time.Minute))
	defer tokenTick.Stop()
	for {
		select {
		case <-m.r.ctx.Done():
			return
		case now := <-blobTick.C:
			n, err := m.blobs.sweep(now, m.r.cfg.MediaTTL)
			if err != nil {
				m.r.log.Error("media sweep", "err", err)
			}
			if n > 0 {
				m.swept.Add(float64(n))
				m.r.log.Info("media blobs expired", "count", n)
			}
		case now := <-tokenTick.C:
			m.mu.Lock()
			for owner := range m.owned {
				m.forget(owner, now)
			}
			m.mu.Unlock()
		}
	}
}

// forget drops owner's expired tokens and its stored-blob times older than
// MediaTTL. m.mu is held.
func (m *media) forget(owner store.Address, now time.Time) {
	toks := m.owned[owner]
	for len(toks) > 0 && !now.Before(m.tokens[toks[0]].expires) {
		if !m.tokens[toks[0]].used {
			m.unused[owner]--
		}
		delete(m.tokens, toks[0])
		toks = toks[1:]
	}
	if m.unused[owner] <= 0 {
		delete(m.unused, owner)
	}
	times := m.stored[owner]
	for len(times) > 0 && now.Sub(times[0]) >= m.r.cfg.MediaTTL {
		times = times[1:]
	}
	setOrDelete(m.owned, owner, toks)
	setOrDelete(m.stored, owner, times)
}

func setOrDelete[V any](m map[store.Address][]V, k store.Address, v []V) {
	if len(v) == 0 {
		delete(m, k)
	} else {
		m[k] = v
	}
}

// issue makes an upload token for owner, within its quotas: unused tokens
// (UPLOAD_TOKENS_QUOTA), and blobs stored per MediaTTL, counting those its
// tokens may still store (MEDIA_QUOTA).
func (m *media) issue(owner store.Address, u uploadToken, now time.Time) (string, error) {
	lim := m.r.cfg.Limits
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forget(owner, now)
	switch toks, stored := m.unused[owner], len(m.stored[owner]); {
	case toks >= lim.MaxUploadTokens:
		m.r.m.refusals.WithLabelValues(refuseTokens).Inc()
		return "", fail(pb.ErrorCode_UPLOAD_TOKENS_QUOTA, "%d upload tokens unused, at most %d: finish or let some expire", toks, lim.MaxUploadTokens)
	case toks+stored >= lim.MaxMediaBlobs:
		m.r.m.refusals.WithLabelValues(refuseMediaQuota).Inc()
		return "", fail(pb.ErrorCode_MEDIA_QUOTA, "%d blobs stored and %d tokens unused, at most %d blobs per %v", stored, toks, lim.MaxMediaBlobs, m.r.cfg.MediaTTL)
	}
	b := make([]byte, 16)
	rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	u.owner = owner
	m.tokens[tok] = u
	m.owned[owner] = append(m.owned[owner], tok)
	m.unused[owner]++
	return tok, nil
}

// used marks a token whose blob is stored: it no longer counts as unused
// (it still answers a retried PUT until it expires), and the blob counts
// against its owner's quota when this upload stored it.
func (m *media) used(tok string, stored bool, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.tokens[tok]
	if !ok || u.used {
		return
	}
	u.used = true
	m.tokens[tok] = u
	m.unused[u.owner]--
	if stored {
		m.stored[u.owner] = append(m.stored[u.owner], now)
	}
}

// close waits for the sweeper (the relay's context is already cancelled)
// and, briefly, for uploads still being written.
func (m *media) close() {
	<-m.sweeping
	done := make(chan struct{})
	go func() { m.uploads.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		m.r.log.Warn("relay closing with media uploads still running")
	}
}

// onMediaUpload answers MediaUpload with a token, or says the blob is
// already stored (its time to live starts again: it is referenced anew).
func (c *conn) onMediaUpload(me store.Address, id uint64, f *pb.Frame) (*pb.Frame, error) {
	req := f.GetMediaUpload()
	m, limit := c.r.media, c.r.cfg.MaxMediaBytes
	switch size := req.GetSize(); {
	case size == 0:
		return nil, badRequest("media upload of 0 bytes")
	case size > uint64(limit):
		return nil, fail(pb.ErrorCode_MEDIA_TOO_LARGE, "blob of %d bytes, the relay takes at most %d", size, limit)
	case len(req.GetEncSha256()) != 32:
		return nil, badRequest("enc_sha256 of %d bytes, want 32", len(req.GetEncSha256()))
	}
	now := time.Now()
	ans := &pb.MediaUploadToken{DirectPath: "/media/" + hex.EncodeToString(req.GetEncSha256())}
	if m.blobs.touch(req.GetEncSha256(), now) {
		ans.Exists = true
		m.uploadsTotal.WithLabelValues("exists").Inc()
	} else {
		expires := now.Add(c.r.cfg.MediaTokenTTL)
		tok, err := m.issue(me, uploadToken{size: int64(req.GetSize()), sum: req.GetEncSha256(), expires: expires}, now)
		if err != nil {
			return nil, err
		}
		ans.Token, ans.Url, ans.ExpiresUnixMs = tok, "/media/"+tok, expires.UnixMilli()
	}
	c.logger().Debug("media upload token", "size", req.GetSize(), "exists", ans.Exists)
	return &pb.Frame{Body: &pb.Frame_MediaUploadToken{MediaUploadToken: ans}}, nil
}

// routes adds the media endpoints to mux. Any origin may use them (CORS): a
// web app served from elsewhere (a harness, a fault proxy) uploads and
// downloads here, and nothing in them is readable without the media key —
// uploads need a token given over the Noise channel, blobs are ciphertext.
func (m *media) routes(mux *http.ServeMux) {
	mux.HandleFunc("PUT /media/{token}", cors(m.upload))
	mux.HandleFunc("GET /media/{sum}", cors(m.download))
	mux.HandleFunc("OPTIONS /media/{any}", cors(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
}

func cors(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr.Set("Access-Control-Allow-Origin", "*")
		hdr.Set("Access-Control-Allow-Methods", "GET, PUT, OPTIONS")
		hdr.Set("Access-Control-Allow-Headers", "Content-Type, Range, If-Range, Cache-Control")
		hdr.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, ETag, Location")
		h(w, r)
	}
}

func (m *media) token(tok string) (uploadToken, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.tokens[tok]
	return u, ok && time.Now().Before(u.expires)
}

// upload takes a blob: PUT /media/{token}, the body being exactly the
// announced bytes. Answers: 201 stored, 200 already stored, 403 unknown or
// expired token, 413 more bytes than announced or than the relay takes, 400
// fewer bytes or another hash. Nothing is stored unless it verified.
func (m *media) upload(w http.ResponseWriter, req *http.Request) {
	tok := req.PathValue("token")
	u, ok := m.token(tok)
	refuse := func(code int, result, format string, args ...any) {
		m.uploadsTotal.WithLabelValues(result).Inc()
		msg := fmt.Sprintf(format, args...)
		m.r.log.Info("media upload refused", "user", u.owner.User, "device", u.owner.Device, "status", code, "why", msg)
		http.Error(w, msg, code)
	}
	// Refusals come before the body is read: a client that sent
	// "Expect: 100-continue" never sends it.
	switch limit := m.r.cfg.MaxMediaBytes; {
	case !ok:
		refuse(http.StatusForbidden, "forbidden", "upload token unknown or expired: ask for a new one")
		return
	case req.ContentLength > limit:
		refuse(http.StatusRequestEntityTooLarge, "too_large", "blob of %d bytes, the relay takes at most %d", req.ContentLength, limit)
		return
	case req.ContentLength > u.size:
		refuse(http.StatusRequestEntityTooLarge, "too_large", "blob of %d bytes, the token is for %d", req.ContentLength, u.size)
		return
	case req.ContentLength >= 0 && req.ContentLength < u.size:
		refuse(http.StatusBadRequest, "short", "blob of %d bytes, the token is for %d", req.ContentLength, u.size)
		return
	}
	direct := "/media/" + hex.EncodeToString(u.sum)
	if m.blobs.touch(u.sum, time.Now()) {
		m.used(tok, false, time.Now())
		m.uploadsTotal.WithLabelValues("exists").Inc()
		writeStored(w, http.StatusOK, direct)
		return
	}
	m.uploads.Add(1)
	defer m.uploads.Done()
	start := time.Now()
	err := m.blobs.put(req.Body, u.size, u.sum)
	switch {
	case errors.Is(err, errBlobTooLarge):
		refuse(http.StatusRequestEntityTooLarge, "too_large", "more than the %d bytes the token is for", u.size)
	case errors.Is(err, errBlobShort):
		refuse(http.StatusBadRequest, "short", "%v", err)
	case errors.Is(err, errBlobHash):
		refuse(http.StatusBadRequest, "bad_hash", "the SHA-256 of the %d bytes received is not the token's", u.size)
	case errors.Is(err, errBlobCut):
		refuse(http.StatusBadRequest, "cut", "upload failed: %v", err)
	case err != nil:
		// The relay's disk: a 5xx, so the uploader tries again.
		m.r.log.Error("media store failed", "err", err)
		refuse(http.StatusInternalServerError, "storage", "the relay could not store the blob")
	default:
		m.used(tok, true, time.Now())
		m.uploadsTotal.WithLabelValues("stored").Inc()
		m.uploadedBytes.Add(float64(u.size))
		m.r.log.Info("media stored", "user", u.owner.User, "device", u.owner.Device, "size", u.size,
			"ms", time.Since(start).Milliseconds())
		writeStored(w, http.StatusCreated, direct)
	}
}

func writeStored(w http.ResponseWriter, code int, direct string) {
	w.Header().Set("Location", direct)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"direct_path": direct})
}

// download serves a blob, GET /media/{sum} with sum its hex SHA-256, with
// Range requests (http.ServeContent) so a cut download resumes. Knowing the
// hash is the only credential: the blob is ciphertext, useless without the
// media key, which only the chat's devices have.
func (m *media) download(w http.ResponseWriter, req *http.Request) {
	sum := req.PathValue("sum")
	f, err := m.blobs.open(sum)
	if errors.Is(err, fs.ErrNotExist) {
		m.downloadsTotal.WithLabelValues("missing").Inc()
		http.Error(w, "no such blob (expired, or never uploaded)", http.StatusNotFound)
		return
	}
	if err != nil {
		m.r.log.Error("media download", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	m.downloadsTotal.WithLabelValues("ok").Inc()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", strconv.Quote(sum)) // a blob never changes: If-Range can trust it
	h.Set("Cache-Control", "private, immutable")
	http.ServeContent(w, req, "", time.Time{}, f)
}
