package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/sim/device"
)

// Options says how Run runs one process's share of a definition.
type Options struct {
	// Shard is the share of the users this process runs; the zero value
	// runs them all.
	Shard Shard
	// Progress, if set, gets a snapshot of the live figures every second
	// and a last one at the end.
	Progress func(Snapshot)
	// Stop, if set, ends the message phase early when closed (a
	// coordinator's abort); the drain and the report still happen.
	Stop <-chan struct{}
	// Log gets the harness's log lines (and the workers' stderr); nil
	// discards them.
	Log io.Writer
	// WorkerCommand starts a worker process; nil means WorkerCommand().
	WorkerCommand []string
	// NATS, if its URL is set, links the coordinator and its workers over
	// NATS instead of stdin and stdout, so workers can join from other
	// machines.
	NATS NATSOptions
	// Profiles, if set ("host:port"), has the worker processes this
	// coordinator starts serve Go's profiles: worker i on port+1+i (see
	// ProfilesEnv). The caller serves this process's own on it.
	Profiles string
}

// Shard is worker Index of Count: it runs the users [first, first+n) of
// Users (see span), who write only to each other, so its ledger is whole.
type Shard struct {
	Index, Count int
	// Source is the local IP address its devices dial the relay from, such
	// as 127.0.1.1; "" lets the system choose.
	Source string
}

// span returns the first user index and the number of users of s.
func (s Shard) span(users int) (first, n int) {
	if s.Count <= 1 {
		return 0, users
	}
	first = users * s.Index / s.Count
	return first, users*(s.Index+1)/s.Count - first
}

// Scenario names in the report.
const (
	ScenarioLink     = "load: link users"
	ScenarioMessages = "load: message mix"
)

// Run runs def (its share opts.Shard) and returns the scored report, with
// thresholds evaluated. The error is for runs that could not start (a bad
// definition, no relay); a run that started and did badly returns a report
// that did not pass.
func Run(ctx context.Context, def Definition, opts Options) (*reports.Report, error) {
	def = def.Defaults()
	if err := def.Check(); err != nil {
		return nil, err
	}
	ts, _ := def.thresholds() // Check parsed them
	r := &runner{def: def, opts: opts, ts: ts, live: newTracker(time.Duration(def.LostAfter)), rec: newRecorder(def), lastDownload: make(map[string]chan struct{}),
		pageSlots: make(chan struct{}, pagesAtOnce)}
	r.rec.AddSink(reports.SinkFunc(r.pageShown))
	cfg := harness.Config{Recorder: r.rec, Events: r.event, Device: r.deviceConfig, BrowserLayout: def.Layout, Topology: def.Topology}
	plan, _ := parseRelay(def.Relay) // Check parsed it
	return withRelay(def, opts, cfg, func(env *harness.Env) (*reports.Report, error) {
		r.env = env
		r.nodes = plan.nodeBases(env)
		return r.run(ctx, ts), nil
	})
}

// newRecorder returns the run's recorder: a streaming one, so the ledger
// judges messages as they come and memory stays bounded however long the
// run (docs/reports.md, "Streaming"). A message some device has not
// received a minute after its send (or lost_after past offline_for, or
// the drain, if longer) is judged lost then.
func newRecorder(def Definition) *reports.Recorder {
	lostAfter := max(time.Minute, time.Duration(def.LostAfter+def.OfflineFor), time.Duration(def.Drain))
	return reports.NewStreamingRecorder(reports.LedgerConfig{LostAfter: lostAfter})
}

// withRelay starts the relay def names in a harness session, calls fn with
// it, and stops everything fn started once it returns.
func withRelay(def Definition, opts Options, cfg harness.Config, fn func(*harness.Env) (*reports.Report, error)) (*reports.Report, error) {
	plan, _ := parseRelay(def.Relay) // Check parsed it
	cfg.Backend = plan.backend
	if plan.started {
		cfg.Relay.IdleTimeout = time.Duration(def.RelayIdleTimeout)
	}
	if plan.cluster {
		cfg.Nodes = plan.nodes
	}
	s := harness.NewSession(opts.Log)
	var (
		rep    *reports.Report
		runErr error
	)
	failure := s.Run(func() { rep, runErr = fn(harness.Start(s, cfg)) })
	if failure != nil {
		return nil, fmt.Errorf("load %s: %w", def.Name, failure)
	}
	return rep, runErr
}

// runner is one process's run.
type runner struct {
	def  Definition
	ts   reports.Thresholds
	opts Options
	// findMaxMeta holds the capacity search's steps for the report.
	findMaxMeta map[string]string
	env         *harness.Env
	// nodes are the relay nodes' base URLs; devices spread over them
	// (nodeOf) when there are several.
	nodes   []string
	live    *tracker
	samples *sampler
	rec     *reports.Recorder

	members []*member
	byUser  map[string]*member // by phone number
	// devices maps a device's name to its open device, for media downloads
	// (a reopened companion replaces its entry).
	devices sync.Map
	// pages maps a browser page's name to its device's address.
	pages     sync.Map
	pageSlots chan struct{} // see pagesAtOnce
	// pageErrors counts looks at a page that failed (retried next round);
	// lastPageError is the last one's error.
	pageErrors    atomic.Int64
	lastPageError atomic.Value
	mu            sync.Mutex
	// lastDownload is, per device, the download that the next one waits for.
	lastDownload map[string]chan struct{}
	// actions counts the actions under way.
	actions    sync.WaitGroup
	inflight   atomic.Int64
	downloads  atomic.Int64
	linkFailed atomic.Int64 // users that did not link
	actionErr  atomic.Int64
	relinks    atomic.Int64 // companions unlinked and linked again
	abort      atomic.Value // string: why the run was stopped early
}

func (r *runner) deviceConfig(c *device.Config) {
	c.PreKeys = r.def.PreKeys
	c.KeepAlive = time.Duration(r.def.KeepAlive)
	// The device package's reconnect backoff, not the harness's test-speed
	// one: thousands of devices retrying every 20 ms would be a storm of
	// their own.
	c.BackoffBase, c.BackoffMax = 0, 0
	if len(r.nodes) > 1 {
		c.RelayURL = wsURL(r.nodes[nodeOf(c.Name, len(r.nodes))])
	}
	if src := r.opts.Shard.Source; src != "" {
		c.Dialer = sourceDialer(src).DialContext
	}
}

// sourceDialer dials from the IP address src. IP_BIND_ADDRESS_NO_PORT
// leaves the source port to connect(), where it need only be unique per
// destination, instead of bind(), which searches for one free on src: bind
// tries one half of the ephemeral range first (connect() the other), so
// once src holds ~14,000 connections every bind walks that whole half
// (docs/performance.md, issue 10).
func sourceDialer(src string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Control: bindNoPort}
}

func bindNoPort(_, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) {
		// A kernel without the option (before 4.2) binds the port as before.
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
}

// event feeds the tracker and starts media downloads, as a user opening
// each media message would: the ledger counts media as delivered once its
// blob verified on the device.
func (r *runner) event(e device.Event) {
	r.live.event(e)
	if e.Kind != device.MediaReceived {
		return
	}
	// One device's downloads run one after another in arrival order, so
	// the ledger sees its media in the order it arrived.
	r.downloads.Add(1)
	done := make(chan struct{})
	r.mu.Lock()
	prev := r.lastDownload[e.Device]
	r.lastDownload[e.Device] = done
	r.mu.Unlock()
	go func() {
		defer r.downloads.Add(-1)
		defer close(done)
		if prev != nil {
			<-prev
		}
		if err := r.download(e.Device, e.Chat, e.MessageID); err != nil {
			r.live.fail(err)
		}
	}()
}

func (r *runner) run(ctx context.Context, ts reports.Thresholds) *reports.Report {
	stopProgress := r.progress(ctx, ts)
	first, n := r.opts.Shard.span(r.def.Users)

	r.live.setPhase(PhaseLinking)
	pages := max(0, min(first+n, r.def.Browsers)-first) // this shard's browser pages
	browserBefore := r.browserPSS(ctx, pages)
	heapBefore, relayBefore, cpuBefore := heapInUse(), relayMetrics(ctx, r.nodes), processCPU()
	linkStart := time.Now()
	linkResult := r.link(ctx, first, n, pages)
	linkTook := time.Since(linkStart)
	devices := r.live.snapshot().Linked
	cpuLink := processCPU() - cpuBefore
	heapAfter, relayAfter := heapInUse(), relayMetrics(ctx, r.nodes)
	browserAfter := r.browserPSS(ctx, pages)

	r.live.setPhase(PhaseMessaging)
	msgStart, cpuMsgBefore := time.Now(), processCPU()
	stopWatching := r.watchPages(ctx)
	msgResult := r.messages(ctx)
	r.live.setPhase(PhaseDraining)
	r.drain(ctx)
	stopWatching()
	r.live.setPhase(PhaseDone)
	cpuMsg := processCPU() - cpuMsgBefore
	stopProgress() // the last snapshot below is the final one

	rep := reports.New(r.rec, reports.Config{Name: r.def.Name, Relay: r.env.Relay().Kind()})
	msgResult.Duration = time.Since(msgStart)
	rep.Scenarios = []reports.ScenarioResult{linkResult, msgResult}
	rep.Interrupted = ctx.Err() != nil
	rep.TimeSeries = r.samples.series()
	snap := r.live.snapshot()
	rep.Meta = map[string]string{
		"users":           strconv.Itoa(n),
		"devices":         strconv.Itoa(devices),
		"link_seconds":    fmt.Sprintf("%.2f", linkTook.Seconds()),
		"devices_per_s":   fmt.Sprintf("%.1f", float64(devices)/linkTook.Seconds()),
		"actions":         strconv.FormatInt(snap.Actions, 10),
		"action_errors":   strconv.FormatInt(r.actionErr.Load(), 10),
		"link_failures":   strconv.FormatInt(r.linkFailed.Load(), 10),
		"dropped_actions": strconv.FormatInt(snap.Dropped, 10),
		"prekeys":         strconv.Itoa(r.def.PreKeys),
		"keepalive":       time.Duration(r.def.KeepAlive).String(),
		"relinks":         strconv.FormatInt(r.relinks.Load(), 10),
		"deliveries":      strconv.FormatInt(snap.Delivered, 10),
		"client_gc":       gcSettings(),
		// Everything this process did from the first action to the end
		// of the drain, for the CPU a delivery costs the clients.
		"client_msg_cpu_seconds": fmt.Sprintf("%.2f", cpuMsg.Seconds()),
	}
	if rss := peakRSS(); rss > 0 {
		rep.Meta["client_peak_rss_mib"] = fmt.Sprintf("%.1f", float64(rss)/(1<<20))
	}
	if snap.Delivered > 0 {
		rep.Meta["client_msg_cpu_us_per_delivery"] = fmt.Sprintf("%.1f", float64(cpuMsg.Microseconds())/float64(snap.Delivered))
	}
	if devices > 0 {
		rep.Meta["client_heap_kib_per_device"] = fmt.Sprintf("%.1f", float64(int64(heapAfter)-int64(heapBefore))/float64(devices)/1024)
		rep.Meta["client_link_cpu_ms_per_device"] = fmt.Sprintf("%.2f", float64(cpuLink.Milliseconds())/float64(devices))
		if relayAfter.rss > 0 && r.env.Relay().Kind() != harness.Embedded && r.opts.Shard.Count <= 1 {
			rep.Meta["relay_rss_kib_per_device"] = fmt.Sprintf("%.1f", (relayAfter.rss-relayBefore.rss)/float64(devices)/1024)
			rep.Meta["relay_link_cpu_ms_per_device"] = fmt.Sprintf("%.2f", (relayAfter.cpu-relayBefore.cpu)*1000/float64(devices))
		}
	}
	if pages > 0 {
		rep.Meta["browser_pages"] = strconv.Itoa(pages)
		rep.Meta["browser_layout"] = r.def.Layout
		rep.Meta["browser_look_errors"] = strconv.FormatInt(r.pageErrors.Load(), 10)
		if last, _ := r.lastPageError.Load().(string); last != "" {
			rep.Meta["browser_last_look_error"] = last
		}
		if browserBefore > 0 && browserAfter > 0 {
			rep.Meta["browser_mib_pss_per_page"] = fmt.Sprintf("%.1f", float64(browserAfter-browserBefore)/float64(pages)/(1<<20))
			rep.Meta["browser_mib_pss_total"] = fmt.Sprintf("%.1f", float64(browserAfter)/(1<<20))
		}
	}
	if why, _ := r.abort.Load().(string); why != "" {
		rep.Meta["aborted"] = why
	}
	maps.Copy(rep.Meta, r.findMaxMeta)
	if r.def.FindMax.Start > 0 {
		// The search's thresholds were its stopping rule, judged step by
		// step; the run as a whole is judged on correctness.
		ts = reports.DefaultThresholds()
	}
	rep.Evaluate(ts)
	if r.opts.Progress != nil {
		r.opts.Progress(snap)
	}
	return rep
}

// progress reports a snapshot every second, samples it for the report's
// time series and, with AbortOnFail, stops the message phase once a
// threshold fails on the live figures.
func (r *runner) progress(ctx context.Context, ts reports.Thresholds) (stop func()) {
	var scrape func(context.Context) relayFigures
	// An embedded relay's /metrics describe this process, clients and all;
	// with workers each would scrape the same relay once per worker.
	if r.env.Relay().Kind() != harness.Embedded && r.opts.Shard.Count <= 1 {
		scrape = func(ctx context.Context) relayFigures { return relayMetrics(ctx, r.nodes) }
	}
	r.samples = newSampler(scrape)
	done := make(chan struct{})
	var wg sync.WaitGroup
	tick := func() Snapshot {
		snap := r.live.snapshot()
		r.samples.add(ctx, snap)
		if r.opts.Progress != nil {
			r.opts.Progress(snap)
		}
		return snap
	}
	wg.Go(func() {
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		judge := liveJudge{def: r.def, ts: ts}
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			if why := judge.verdict(tick()); why != "" {
				r.abort.CompareAndSwap(nil, why)
			}
		}
	})
	// A last tick at the end, so the series and a coordinator's figures
	// hold what happened since the last whole second.
	return func() { close(done); wg.Wait(); tick() }
}

// liveJudge applies abort-on-fail to a run's successive snapshots.
type liveJudge struct {
	def            Definition
	ts             reports.Thresholds
	messagingSince time.Time
}

// verdict returns why the run should stop now, or "": only with
// AbortOnFail, and once AbortGrace of the message phase has passed.
func (j *liveJudge) verdict(s Snapshot) string {
	if s.Phase != PhaseMessaging {
		return ""
	}
	if j.messagingSince.IsZero() {
		j.messagingSince = time.Now()
	}
	if !j.def.AbortOnFail || time.Since(j.messagingSince) < time.Duration(j.def.AbortGrace) {
		return ""
	}
	return LiveFailure(s, j.ts)
}

// LiveFailure returns why ts fail on the live figures of snap, or "" while
// they hold. Thresholds on steps the live figures do not measure are left
// to the final report.
func LiveFailure(snap Snapshot, ts reports.Thresholds) string {
	rep := snap.liveReport()
	for _, t := range ts {
		res := t.Evaluate(rep)
		if !res.Passed && res.Observed != "no samples" {
			return "threshold " + res.Expr + " failed live: " + res.Message
		}
	}
	return ""
}

// link registers and links this shard's users at the link rate, at most
// Link.Parallel at once, and the browser pages of the first of them.
func (r *runner) link(ctx context.Context, first, n, pages int) reports.ScenarioResult {
	res := reports.ScenarioResult{Name: ScenarioLink, Status: reports.Passed}
	start := time.Now()
	r.live.addTarget(n*(1+r.def.Companions) + pages)
	r.members = make([]*member, n)
	slots := make(chan struct{}, r.def.Link.Parallel)
	var (
		wg     sync.WaitGroup
		errMu  sync.Mutex
		first1 error
	)
	failed := &r.linkFailed
	pace(ctx, r.def.Link, 0, func(i int) bool {
		if i >= n {
			return false
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		wg.Go(func() {
			defer func() { <-slots }()
			m, err := r.newMember(ctx, first+i)
			if err != nil {
				r.live.fail(err)
				if failed.Add(1) == 1 {
					errMu.Lock()
					first1 = err
					errMu.Unlock()
				}
				return
			}
			r.members[i] = m
		})
		return true
	})
	wg.Wait()
	res.Duration = time.Since(start)
	if f := failed.Load(); f > 0 || ctx.Err() != nil {
		res.Status = reports.Failed
		res.Failure = fmt.Sprintf("%d of %d users did not link; first: %v", f, n, errors.Join(first1, ctx.Err()))
	}
	r.members = compact(r.members)
	if len(r.members) >= 2 {
		r.setContacts()
	}
	return res
}

// compact drops the users that failed to link.
func compact(ms []*member) []*member {
	out := ms[:0]
	for _, m := range ms {
		if m != nil {
			out = append(out, m)
		}
	}
	return out
}

// messages starts actions at the message rate for Duration and waits for
// the ones under way.
func (r *runner) messages(ctx context.Context) reports.ScenarioResult {
	res := reports.ScenarioResult{Name: ScenarioMessages, Status: reports.Passed}
	if len(r.members) < 2 {
		res.Status, res.Failure = reports.Skipped, "fewer than 2 users linked"
		return res
	}
	phase, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-phase.Done():
				return
			case <-r.opts.Stop:
				cancel()
			case <-tk.C:
				if r.abort.Load() != nil {
					cancel()
				}
			}
		}
	}()
	mix := newPicker(r.def)
	if r.def.FindMax.Start > 0 {
		r.findMax(phase, ctx, mix)
	} else {
		r.paceActions(phase, ctx, mix, r.def.Messages, time.Duration(r.def.Duration))
	}
	r.actions.Wait()
	snap := r.live.snapshot()
	if n := r.actionErr.Load(); n > 0 {
		res.Status = reports.Failed
		which := "last: " + snap.LastError
		if n > 1 && snap.FirstError != snap.LastError {
			which = "first: " + snap.FirstError + "; " + which
		}
		res.Failure = fmt.Sprintf("%d of %d actions failed; %s", n, snap.Actions, which)
	}
	if why, _ := r.abort.Load().(string); why != "" {
		res.Status = reports.Failed
		res.Failure = "aborted: " + why
	}
	return res
}

// paceActions starts actions drawn from mix at rate a for d (or until
// phase ends); each runs on ctx, so a stop does not cut one short.
func (r *runner) paceActions(phase, ctx context.Context, mix picker, a Arrival, d time.Duration) {
	pace(phase, a, d, func(int) bool {
		if r.inflight.Load() >= int64(r.def.MaxInFlight) {
			r.live.drop()
			return true
		}
		r.inflight.Add(1)
		r.live.action()
		act := mix.pick()
		r.actions.Go(func() {
			defer r.inflight.Add(-1)
			if err := r.act(ctx, act); err != nil {
				r.actionErr.Add(1)
				r.live.fail(fmt.Errorf("%s: %w", act, err))
			}
		})
		return true
	})
}

// browserPSS is the memory of the Chromium of this run's pages (see
// harness.Env.BrowserPSS), 0 when the run has none or it cannot be read.
func (r *runner) browserPSS(ctx context.Context, pages int) int64 {
	if pages == 0 {
		return 0
	}
	pss, err := r.env.BrowserPSS(ctx)
	if err != nil {
		r.live.fail(err)
	}
	return pss
}

// drain waits until every message is delivered, or Drain passes.
func (r *runner) drain(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(r.def.Drain))
	defer cancel()
	_ = harness.Await(ctx, "every message delivered", func() error {
		if n := r.live.outstanding(); n > 0 {
			return fmt.Errorf("%d messages in flight", n)
		}
		if n := r.downloads.Load(); n > 0 {
			return fmt.Errorf("%d media downloads under way", n)
		}
		return nil
	})
	if r.def.Topology != harness.Mirror {
		return
	}
	// What mirror companions show comes from their phones after the
	// message is delivered: only the ledger knows it is owed. It is read a
	// few times a second, not at Await's pace.
	for ctx.Err() == nil {
		if t := r.env.Ledger().Totals; t.Delivered >= t.Expected {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}
