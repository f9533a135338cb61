package relay

import (
	"fmt"
	"reflect"
	"time"
)

// FlagSet is the part of a flag set (flag.FlagSet, or cobra's
// pflag.FlagSet) that AddFlags needs.
type FlagSet interface {
	DurationVar(p *time.Duration, name string, value time.Duration, usage string)
	IntVar(p *int, name string, value int, usage string)
	Int64Var(p *int64, name string, value int64, usage string)
	Float64Var(p *float64, name string, value float64, usage string)
}

// limitFlags names the command-line flag of every Limits field, once for
// both AddFlags (`linksim relay`) and Args (a harness starting that command).
var limitFlags = []struct {
	name, usage string
	field       func(*Limits) any
}{
	{"read-header-timeout", "HTTP: time to send a request's headers (0: 10s)", func(l *Limits) any { return &l.ReadHeaderTimeout }},
	{"http-idle-timeout", "HTTP: close a keep-alive connection idle this long (0: 30s)", func(l *Limits) any { return &l.HTTPIdleTimeout }},
	{"request-timeout", "HTTP: time to read and answer a plain request (0: 30s)", func(l *Limits) any { return &l.RequestTimeout }},
	{"media-transfer-timeout", "HTTP: time for one media upload or download (0: 10m)", func(l *Limits) any { return &l.MediaTransferTimeout }},
	{"max-conns", "open TCP connections; more get HTTP 503 (0: 19000)", func(l *Limits) any { return &l.MaxConns }},
	{"max-conns-per-source", "open TCP connections per source IP address (0: 16384)", func(l *Limits) any { return &l.MaxConnsPerSource }},
	{"prelogin-max-frame", "largest frame, in bytes, before a connection is a device (0: 16384)", func(l *Limits) any { return &l.PreLoginMaxFrame }},
	{"prelogin-max-frames", "frames a connection may send before it is a device (0: 64)", func(l *Limits) any { return &l.PreLoginMaxFrames }},
	{"max-queued-bytes", "bytes waiting in one device's queue; more is QUEUE_FULL (0: 64 MiB)", func(l *Limits) any { return &l.MaxQueuedBytes }},
	{"max-upload-tokens", "unused media upload tokens per device (0: 32)", func(l *Limits) any { return &l.MaxUploadTokens }},
	{"max-media-blobs", "media blobs one device may store per --media-ttl (0: 1000)", func(l *Limits) any { return &l.MaxMediaBlobs }},
	{"prekey-fetch-burst", "one-time prekeys a device may fetch at once (0: 256)", func(l *Limits) any { return &l.PreKeyFetchBurst }},
	{"prekey-fetch-rate", "one-time prekeys a device may fetch per second after the burst (0: 2)", func(l *Limits) any { return &l.PreKeyFetchRate }},
	{"dedup-window", "message ids remembered per sending device (0: 10000)", func(l *Limits) any { return &l.DedupWindow }},
	{"dedup-age", "how long a message id is remembered (0: 168h)", func(l *Limits) any { return &l.DedupAge }},
}

// AddFlags defines a flag for every field of l on fs; 0 takes the default.
func (l *Limits) AddFlags(fs FlagSet) {
	for _, f := range limitFlags {
		switch p := f.field(l).(type) {
		case *time.Duration:
			fs.DurationVar(p, f.name, 0, f.usage)
		case *int:
			fs.IntVar(p, f.name, 0, f.usage)
		case *int64:
			fs.Int64Var(p, f.name, 0, f.usage)
		case *float64:
			fs.Float64Var(p, f.name, 0, f.usage)
		}
	}
}

// Args are the flags (of AddFlags) that set l's non-zero fields, to start
// `linksim relay` with these limits.
func (l Limits) Args() []string {
	var args []string
	for _, f := range limitFlags {
		if v := reflect.ValueOf(f.field(&l)).Elem(); !v.IsZero() {
			args = append(args, "--"+f.name, fmt.Sprint(v.Interface()))
		}
	}
	return args
}
