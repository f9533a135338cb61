package relay

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Limits bound what clients can make the relay hold or spend, so that one
// client cannot exhaust its files, memory, disk or CPU (docs/protocol.md
// §13). The zero value takes every default; a zero field takes the default
// named in its comment.
type Limits struct {
	// ReadHeaderTimeout bounds reading an HTTP request's headers, the first
	// request of a new connection included. Default 10s.
	ReadHeaderTimeout time.Duration
	// HTTPIdleTimeout closes an HTTP keep-alive connection that waits this
	// long for its next request. Default 30s.
	HTTPIdleTimeout time.Duration
	// RequestTimeout bounds reading and answering one plain HTTP request
	// (not /ws, not a media transfer). Default 30s.
	RequestTimeout time.Duration
	// MediaTransferTimeout bounds one media upload or download. Default 10m.
	MediaTransferTimeout time.Duration
	// MaxConns caps the relay's open TCP connections, WebSockets included;
	// more are refused with HTTP 503. The default, 19,000, leaves room in a
	// 20,000-file limit for the store, media files and refusals.
	MaxConns int
	// MaxConnsPerSource caps the open connections from one IP address.
	// Default 16,384: one load-test worker's devices (one address) fit, and
	// one address cannot take every place.
	MaxConnsPerSource int
	// PreLoginMaxFrame is the largest frame (encoded bytes) taken from a
	// connection that is not a device yet; a larger one ends it (WebSocket
	// status 1009) before it is decrypted or decoded. Default 16 KiB: a
	// Register or PairFinish with the most prekeys (200) takes under 9 KiB.
	PreLoginMaxFrame int
	// PreLoginMaxFrames is how many frames a connection may send before it
	// is a device; the next ends it (close reason "too many requests
	// before login"). A pairing companion sends about 15. Default 64.
	PreLoginMaxFrames int
	// MaxQueuedBytes caps the bytes waiting in one device's queue; a Send
	// or receipt that would exceed it fails with QUEUE_FULL. Default 64 MiB.
	MaxQueuedBytes int64
	// MaxUploadTokens caps the unexpired media upload tokens of one device
	// (UPLOAD_TOKENS_QUOTA). Default 32.
	MaxUploadTokens int
	// MaxMediaBlobs caps the media blobs one device may store per MediaTTL
	// (MEDIA_QUOTA). Counted in memory since the relay started. Default 1,000.
	MaxMediaBlobs int
	// PreKeyFetchBurst and PreKeyFetchRate limit the one-time prekeys one
	// device may take with FetchBundles: a bucket of Burst refilled at Rate
	// per second (RATE_LIMITED). Defaults 256 and 2.
	PreKeyFetchBurst int
	PreKeyFetchRate  float64
	// DedupWindow is how many message ids the relay remembers per sender
	// device, at most, to ack a resent Send once (§8); past it, the
	// oldest are forgotten in bulk, down to 15/16 of it. Default 10,000.
	DedupWindow int
	// DedupAge forgets a remembered message id after this long at most
	// (in bulk, with those 1/16 of it younger). Default 7 days.
	DedupAge time.Duration
}

func (l Limits) withDefaults() Limits {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	def(&l.ReadHeaderTimeout, 10*time.Second)
	def(&l.HTTPIdleTimeout, 30*time.Second)
	def(&l.RequestTimeout, 30*time.Second)
	def(&l.MediaTransferTimeout, 10*time.Minute)
	defInt(&l.MaxConns, 19_000)
	defInt(&l.MaxConnsPerSource, 16_384)
	defInt(&l.PreLoginMaxFrame, 16<<10)
	defInt(&l.PreLoginMaxFrames, 64)
	if l.MaxQueuedBytes <= 0 {
		l.MaxQueuedBytes = 64 << 20
	}
	defInt(&l.MaxUploadTokens, 32)
	defInt(&l.MaxMediaBlobs, 1_000)
	defInt(&l.PreKeyFetchBurst, 256)
	if l.PreKeyFetchRate <= 0 {
		l.PreKeyFetchRate = 2
	}
	defInt(&l.DedupWindow, 10_000)
	def(&l.DedupAge, 7*24*time.Hour)
	return l
}

// Reasons a limit refused something, the label of
// linksim_relay_refusals_total.
const (
	refuseConns          = "connections"
	refuseSourceConns    = "source_connections"
	refusePreLogin       = "prelogin_frame"
	refusePreLoginFrames = "prelogin_frames"
	refuseQueueFull      = "queue_full"
	refuseTokens         = "upload_tokens"
	refuseMediaQuota     = "media_quota"
	refusePreKeyRate     = "prekey_rate"
)

func newRefusals() *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "linksim_relay_refusals_total", Help: "Requests and connections refused by a limit, by reason.",
	}, []string{"reason"})
	for _, r := range []string{refuseConns, refuseSourceConns, refusePreLogin, refusePreLoginFrames, refuseQueueFull, refuseTokens, refuseMediaQuota, refusePreKeyRate} {
		v.WithLabelValues(r) // listed at 0, so a scrape shows every reason
	}
	return v
}
