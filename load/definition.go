// Package load runs load tests of many linked devices: users, each a phone
// with linked native web clients, arrive at a link rate, then send at an
// open-model arrival rate (k6's constant- and ramping-arrival-rate
// executors) a mix of actions, and the run is scored like `linksim run`:
// every device is real (it pairs by QR payload and holds Signal sessions)
// and every message is checked by the ledger.
package load

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/webclient/driver"
)

// Definition is a load test. The zero value is not runnable (it has no
// users); Defaults fills in everything else. Files are YAML or JSON with
// the field names in the yaml tags.
type Definition struct {
	// Name names the run in the report.
	Name string `yaml:"name"`
	// Users is how many users take part, each a phone.
	Users int `yaml:"users"`
	// Companions is how many native web clients each user links; default 1.
	Companions int `yaml:"companions"`
	// Browsers is how many users (the first ones) also link a real browser
	// page, in Chromium, paired by a screenshot of its QR code: a mixed
	// fleet. Pages receive and are scored by the ledger; they do not send.
	Browsers int `yaml:"browsers"`
	// Layout lays the browser pages out in Chromium: "context" (default: a
	// browser context per page, isolated) or "tabs" (tabs of one context,
	// cheaper).
	Layout string `yaml:"layout"`
	// Topology is how companions are linked: "multidevice" (default) or
	// "mirror" (design.md §8). Mirror companions send texts through their
	// phone; the other actions of a mirror user are the phone's.
	Topology string `yaml:"topology"`
	// Contacts is how many other users each user writes to; default 5
	// (fewer when there are fewer users).
	Contacts int `yaml:"contacts"`
	// Link is how users arrive: each registers its phone and links its
	// companions by QR payload.
	Link Arrival `yaml:"link"`
	// Messages is the arrival rate of actions once every user is linked.
	Messages Arrival `yaml:"messages"`
	// Mix weighs the actions (see Actions); default text=90, read=10.
	Mix map[string]float64 `yaml:"mix"`
	// MediaSizes are the sizes a media action picks from; default 64KiB.
	MediaSizes []Size `yaml:"media_sizes"`
	// OfflineFor is how long an offline action keeps a companion closed,
	// and an unlink action keeps it unlinked; default 2s.
	OfflineFor Duration `yaml:"offline_for"`
	// Duration is how long actions arrive; default the sum of
	// Messages.Stages, or 30s.
	Duration Duration `yaml:"duration"`
	// Drain is how long the run waits after the last action for every
	// message to arrive before the ledger judges; default 30s.
	Drain Duration `yaml:"drain"`
	// Thresholds are pass/fail rules (docs/reports.md), added to the
	// correctness ones that always apply.
	Thresholds []string `yaml:"thresholds"`
	// AbortOnFail stops the run as soon as a threshold fails on the live
	// figures (checked every second once AbortGrace has passed).
	AbortOnFail bool `yaml:"abort_on_fail"`
	// AbortGrace is how long into the message phase thresholds are not yet
	// checked live; default 5s.
	AbortGrace Duration `yaml:"abort_grace"`
	// LostAfter is how long a delivery may be outstanding before the live
	// view counts it as lost; default 10s. The final verdict is the ledger's.
	LostAfter Duration `yaml:"lost_after"`
	// PreKeys is how many one-time prekeys each device uploads; default 16.
	PreKeys int `yaml:"prekeys"`
	// KeepAlive is how often each device pings the relay; default 20 s
	// (the device's own). The relay drops a connection silent for its idle
	// timeout, so it must stay well under that: at most 5/6 of
	// RelayIdleTimeout. Every ping is a frame through Noise both ways, so a
	// longer one makes idle devices cheaper (docs/performance.md, issue 10,
	// session 7); a device also takes that long to notice a dead link.
	KeepAlive Duration `yaml:"keepalive"`
	// RelayIdleTimeout is the relays' idle timeout (linksim relay
	// --idle-timeout), default 60 s: relays the run starts get it; relays
	// named by URL must have been started with it.
	RelayIdleTimeout Duration `yaml:"relay_idle_timeout"`
	// MaxInFlight caps the actions under way at once; an action due while
	// the cap is reached is dropped and counted (k6's dropped iterations).
	// Default 2000.
	MaxInFlight int `yaml:"max_in_flight"`
	// Workers spreads the users over this many worker processes (each under
	// the 20,000-file limit, each with its own loopback source address);
	// default 1, in this process.
	Workers int `yaml:"workers"`
	// Relay is the relay backend: process (default), embedded, container,
	// the ws:// URL of a running relay, the ws:// URLs of the nodes of one
	// relay separated by commas (devices spread over them), or cluster:N
	// (N relay nodes on three NATS servers, started as processes).
	Relay string `yaml:"relay"`
	// FindMax, when its Start is set, replaces Messages and Duration with a
	// capacity search.
	FindMax FindMax `yaml:"find_max"`
}

// FindMax searches for the highest constant action rate the thresholds
// hold at: it runs Start actions/s for Step, judges that step's figures,
// and goes on at Factor times the rate until a threshold fails, actions
// had to be dropped, or Max is passed. The last rate that held is the knee.
// A warm-up at Start comes first, unjudged: the first message between two
// devices fetches a prekey bundle and builds a Signal session, which is not
// what the search measures.
type FindMax struct {
	Start  float64  `yaml:"start"`
	Factor float64  `yaml:"factor"` // default 1.5
	Step   Duration `yaml:"step"`   // default 10s
	Max    float64  `yaml:"max"`    // default 100,000
	Warmup Duration `yaml:"warmup"` // default Step; negative: none
}

// Arrival is an open-model rate: either a constant Rate, or Stages that
// ramp linearly from Start to each stage's Target over its Duration and then
// hold the last target.
type Arrival struct {
	Rate   float64 `yaml:"rate"`
	Start  float64 `yaml:"start"`
	Stages []Stage `yaml:"stages"`
	// Parallel caps how many arrivals run at once; used for linking only
	// (default 32). Messages use MaxInFlight.
	Parallel int `yaml:"parallel"`
}

// Stage is one ramp of an Arrival.
type Stage struct {
	Duration Duration `yaml:"duration"`
	Target   float64  `yaml:"target"`
}

// The actions of a mix.
const (
	ActText      = "text"      // a text message from a random device of a user to a contact
	ActMedia     = "media"     // a media file of one of MediaSizes to a contact
	ActRead      = "read"      // a device of a user marks a chat read: read receipts flow back
	ActOffline   = "offline"   // a companion closes for OfflineFor, then opens on its state again
	ActReconnect = "reconnect" // a device's link drops; it reconnects by itself
	ActUnlink    = "unlink"    // a companion is removed (by its phone or by logging out), then links again by QR payload
)

// Actions lists the action names a mix may weigh.
var Actions = []string{ActText, ActMedia, ActRead, ActOffline, ActReconnect, ActUnlink}

// Duration is a time.Duration written as "30s" in YAML and JSON.
type Duration time.Duration

// UnmarshalText reads a Go duration like 30s or 1m30s.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like 30s or 2m", b)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) d() time.Duration { return time.Duration(d) }

// MarshalText writes d as a Go duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Size is a byte count written as 64KiB, 1MiB or 1000 in YAML and JSON.
type Size int64

// ParseSize reads a byte count with an optional B, KiB, MiB or GiB suffix.
func ParseSize(s string) (Size, error) {
	num := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size like 64KiB, 1MiB or 1000", s)
	}
	return Size(n * mult), nil
}

// UnmarshalText reads a size (see ParseSize).
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	*s = v
	return err
}

// MarshalText writes the size in bytes.
func (s Size) MarshalText() ([]byte, error) { return []byte(strconv.FormatInt(int64(s), 10)), nil }

// ReadDefinition reads a definition in YAML or JSON (a JSON document is
// YAML too); unknown fields are errors, so a typo never goes unnoticed.
func ReadDefinition(r io.Reader, name string) (Definition, error) {
	var d Definition
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(&d); err != nil && !errors.Is(err, io.EOF) {
		return d, fmt.Errorf("load definition %s: %w", name, err)
	}
	return d, nil
}

// LoadDefinition reads a definition file (see ReadDefinition).
func LoadDefinition(path string) (Definition, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Definition{}, fmt.Errorf("load definition: %w", err)
	}
	return ReadDefinition(bytes.NewReader(b), path)
}

// Defaults returns d with every unset field at its default.
func (d Definition) Defaults() Definition {
	if d.Name == "" {
		d.Name = "load"
	}
	if d.Companions == 0 {
		d.Companions = 1
	}
	if d.Topology == "" {
		d.Topology = harness.MultiDevice
	}
	if d.Contacts == 0 {
		d.Contacts = 5
	}
	if d.Layout == "" {
		d.Layout = driver.LayoutContext
	}
	if d.Users > 0 && d.Contacts > d.Users-1 {
		d.Contacts = d.Users - 1
	}
	if d.Link.Parallel == 0 {
		d.Link.Parallel = 32
	}
	if len(d.Mix) == 0 {
		d.Mix = map[string]float64{ActText: 90, ActRead: 10}
	}
	if len(d.MediaSizes) == 0 {
		d.MediaSizes = []Size{64 << 10}
	}
	setDefault(&d.OfflineFor, 2*time.Second)
	if d.Duration == 0 {
		d.Duration = Duration(d.Messages.rampLength())
	}
	setDefault(&d.Duration, 30*time.Second)
	setDefault(&d.Drain, 30*time.Second)
	setDefault(&d.AbortGrace, 5*time.Second)
	setDefault(&d.LostAfter, 10*time.Second)
	if d.PreKeys == 0 {
		d.PreKeys = 16
	}
	setDefault(&d.KeepAlive, 20*time.Second)
	setDefault(&d.RelayIdleTimeout, defaultRelayIdleTimeout)
	if d.MaxInFlight == 0 {
		d.MaxInFlight = 2000
	}
	if d.Workers == 0 {
		d.Workers = 1
	}
	if d.FindMax.Start > 0 {
		if d.FindMax.Factor == 0 {
			d.FindMax.Factor = 1.5
		}
		setDefault(&d.FindMax.Step, 10*time.Second)
		setDefault(&d.FindMax.Warmup, time.Duration(d.FindMax.Step))
		if d.FindMax.Max == 0 {
			d.FindMax.Max = 100000
		}
	}
	if d.Relay == "" {
		d.Relay = "process"
	}
	return d
}

func setDefault(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

// rampLength is the sum of the stages' durations.
func (a Arrival) rampLength() time.Duration {
	var t time.Duration
	for _, s := range a.Stages {
		t += time.Duration(s.Duration)
	}
	return t
}

// Check returns every problem of d (after Defaults), one per line, or nil:
// a bad definition fails before anything starts.
func (d Definition) Check() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if d.Users < 2 {
		bad("users: %d; want at least 2 (users write to each other)", d.Users)
	}
	if d.Companions < 0 || d.Companions > 4 {
		bad("companions: %d per user; want 0 to 4 (the relay's default limit)", d.Companions)
	}
	if d.Browsers < 0 || d.Browsers > d.Users {
		bad("browsers: %d; want 0 to users (%d): the first users each link one browser page", d.Browsers, d.Users)
	}
	if d.Browsers > 0 && d.Companions == 4 {
		bad("browsers: a user with %d native companions and a browser page has %d; the relay links at most 4: use companions <= 3",
			d.Companions, d.Companions+1)
	}
	if d.Workers > 1 && d.Browsers > d.Users/d.Workers {
		bad("browsers: %d pages; with %d workers at most %d, the users of the first worker, which runs them all (one Chromium)",
			d.Browsers, d.Workers, d.Users/d.Workers)
	}
	if d.Browsers > maxBrowserPages {
		bad("browsers: %d pages; at most %d (each takes 50-100 MiB and a share of two cores)", d.Browsers, maxBrowserPages)
	}
	if d.Layout != driver.LayoutContext && d.Layout != driver.LayoutTabs {
		bad("layout: %q; want %q (a browser context per page) or %q (tabs of one context)", d.Layout, driver.LayoutContext, driver.LayoutTabs)
	}
	if d.Topology == harness.Mirror && (d.Browsers > 0 || d.Mix[ActUnlink] > 0) {
		bad("topology: mirror; browser pages and unlink are for multidevice companions only")
	}
	if d.Topology != harness.MultiDevice && d.Topology != harness.Mirror {
		bad("topology: %q; want %q or %q", d.Topology, harness.MultiDevice, harness.Mirror)
	}
	if d.Contacts < 1 && d.Users >= 2 {
		bad("contacts: %d; want at least 1", d.Contacts)
	}
	checkArrival("link", d.Link, bad)
	checkArrival("messages", d.Messages, bad)
	if d.Link.Rate == 0 && len(d.Link.Stages) > 0 && d.Link.Stages[len(d.Link.Stages)-1].Target == 0 {
		bad("link.stages: the last target is 0, so linking might never finish; end on a rate above 0")
	}
	if d.Messages.Rate == 0 && len(d.Messages.Stages) == 0 && d.FindMax.Start == 0 {
		bad("messages: no rate; give a constant rate (--rate) or stages (--ramp), or search with find_max (--find-max)")
	}
	if d.Link.Parallel < 1 {
		bad("link.parallel: %d; want at least 1", d.Link.Parallel)
	}
	total := 0.0
	for _, name := range slices.Sorted(maps.Keys(d.Mix)) {
		w := d.Mix[name]
		if !slices.Contains(Actions, name) {
			bad("mix: unknown action %q; the actions are %s", name, strings.Join(Actions, ", "))
		}
		if w < 0 {
			bad("mix: %s has weight %g; weights are 0 or more", name, w)
		}
		total += w
	}
	if total <= 0 && d.Messages.Rate+d.Messages.Start+maxTarget(d.Messages) > 0 {
		bad("mix: every weight is 0; give an action a weight, like text=1")
	}
	if d.Mix[ActMedia] > 0 && d.Users >= 2 && d.Users/max(d.Workers, 1) < d.Contacts+2 {
		bad("mix: media needs more than contacts+1 users per worker (media goes to a chat of its own); have %d users per worker and contacts %d",
			d.Users/max(d.Workers, 1), d.Contacts)
	}
	for _, a := range []string{ActOffline, ActUnlink} {
		if d.Companions == 0 && d.Mix[a] > 0 {
			bad("mix: %s needs native companions (companions is 0)", a)
		}
	}
	if ramp := d.Messages.rampLength(); time.Duration(d.Duration) < ramp {
		bad("duration: %s is shorter than messages.stages (%s)", time.Duration(d.Duration), ramp)
	}
	for _, dur := range []struct {
		name string
		v    Duration
	}{{"duration", d.Duration}, {"drain", d.Drain}, {"offline_for", d.OfflineFor}, {"abort_grace", d.AbortGrace}, {"lost_after", d.LostAfter}, {"relay_idle_timeout", d.RelayIdleTimeout}} {
		if dur.v < 0 {
			bad("%s: %s is negative", dur.name, time.Duration(dur.v))
		}
	}
	if d.PreKeys < 1 || d.PreKeys > 200 {
		bad("prekeys: %d; want 1 to 200 (the relay takes at most 200 per upload)", d.PreKeys)
	}
	if most := d.RelayIdleTimeout * 5 / 6; d.KeepAlive < Duration(time.Second) || d.KeepAlive > most {
		bad("keepalive: %s; want 1s to %s, 5/6 of relay_idle_timeout %s (the relay closes a connection silent that long; raise it to ping less often)",
			time.Duration(d.KeepAlive), time.Duration(most), time.Duration(d.RelayIdleTimeout))
	}
	if d.MaxInFlight < 1 {
		bad("max_in_flight: %d; want at least 1", d.MaxInFlight)
	}
	if d.Workers < 1 || d.Workers > 250 {
		bad("workers: %d; want 1 to 250 (one loopback source address each)", d.Workers)
	} else if d.Users >= 2 && d.Users/d.Workers < 2 {
		bad("workers: %d workers for %d users leaves a worker under 2 users", d.Workers, d.Users)
	}
	if perWorker := d.Users / max(d.Workers, 1) * (1 + d.Companions); perWorker > maxDevicesPerProcess {
		bad("workers: %d devices per process is over %d (one process may open at most 20,000 files); use workers >= %d",
			perWorker, maxDevicesPerProcess, (d.Users*(1+d.Companions)+maxDevicesPerProcess-1)/maxDevicesPerProcess)
	}
	if plan, err := parseRelay(d.Relay); err != nil {
		bad("%v", err)
	} else {
		plan.checkCapacity(d.Users*(1+d.Companions)+d.Browsers, bad)
	}
	if _, err := d.thresholds(); err != nil {
		bad("%v", err)
	}
	if fm := d.FindMax; fm.Start < 0 || fm.Start > 0 && (fm.Factor <= 1 || fm.Step <= 0 || fm.Max < fm.Start) {
		bad("find_max: start %g, factor %g, step %s, max %g; want start > 0, factor > 1, step > 0, max >= start",
			fm.Start, fm.Factor, time.Duration(fm.Step), fm.Max)
	}
	if d.FindMax.Start > 0 && len(d.Thresholds) == 0 {
		bad("find_max: needs a threshold to break, like 'msg.deliver p99<100ms'")
	}
	if d.FindMax.Start > 0 && d.Workers > 1 {
		bad("find_max: runs in one process for now; drop workers")
	}
	if len(errs) > 0 {
		return errors.New("bad load definition:\n  " + strings.Join(errs, "\n  "))
	}
	return nil
}

// defaultRelayIdleTimeout is linksim relay's own default --idle-timeout.
const defaultRelayIdleTimeout = 60 * time.Second

// maxBrowserPages bounds a mixed fleet's pages: ~200 is what this kind of
// machine holds (issue 13), and a typo of 20000 should not start that many.
const maxBrowserPages = 500

// maxDevicesPerProcess leaves room under the 20,000 open files for the
// process's own files (relay link per device, logs, media, listeners).
const maxDevicesPerProcess = 19000

func checkArrival(name string, a Arrival, bad func(string, ...any)) {
	if a.Rate < 0 || a.Start < 0 {
		bad("%s: negative rate", name)
	}
	if a.Rate > 0 && len(a.Stages) > 0 {
		bad("%s: both rate and stages; give a constant rate or stages, not both", name)
	}
	for i, s := range a.Stages {
		if s.Duration <= 0 {
			bad("%s.stages[%d]: duration %s; want more than 0", name, i, time.Duration(s.Duration))
		}
		if s.Target < 0 {
			bad("%s.stages[%d]: negative target %g", name, i, s.Target)
		}
	}
}

func maxTarget(a Arrival) float64 {
	m := 0.0
	for _, s := range a.Stages {
		m = max(m, s.Target)
	}
	return m
}

// thresholds parses d's thresholds after the default correctness ones.
func (d Definition) thresholds() (reports.Thresholds, error) {
	all := reports.DefaultThresholds()
	for _, expr := range d.Thresholds {
		if err := all.Set(expr); err != nil {
			return nil, fmt.Errorf("thresholds: %w", err)
		}
	}
	return all, nil
}

// ParseStages reads ramp stages written as DURATION:TARGET pairs separated by
// commas, like "10s:100,1m:100,10s:0".
func ParseStages(s string) ([]Stage, error) {
	var out []Stage
	for part := range strings.SplitSeq(s, ",") {
		dur, target, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("stage %q: want DURATION:TARGET like 30s:200", part)
		}
		var st Stage
		if err := st.Duration.UnmarshalText([]byte(dur)); err != nil {
			return nil, fmt.Errorf("stage %q: %w", part, err)
		}
		t, err := strconv.ParseFloat(target, 64)
		if err != nil {
			return nil, fmt.Errorf("stage %q: target %q is not a number", part, target)
		}
		st.Target = t
		out = append(out, st)
	}
	return out, nil
}

// ParseMix reads action weights written as NAME=WEIGHT pairs separated by
// commas, like "text=80,media=5,read=15".
func ParseMix(s string) (map[string]float64, error) {
	out := make(map[string]float64)
	for part := range strings.SplitSeq(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("mix %q: want NAME=WEIGHT like text=80", part)
		}
		v, err := strconv.ParseFloat(w, 64)
		if err != nil {
			return nil, fmt.Errorf("mix %q: weight %q is not a number", part, w)
		}
		out[name] = v
	}
	return out, nil
}

// sortedMix lists the actions with a weight above 0, in Actions order.
func (d Definition) sortedMix() (names []string, weights []float64) {
	for _, a := range Actions {
		if w := d.Mix[a]; w > 0 {
			names, weights = append(names, a), append(weights, w)
		}
	}
	return names, weights
}
