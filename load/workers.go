package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/reports"
)

// WorkerCommand is the command that starts a worker process: the linksim
// binary running `load --worker`, the same one the process relay backend
// runs (this binary when it is linksim, else $LINKSIM_BIN, else one built
// from the module).
func WorkerCommand() ([]string, error) {
	bin, err := harness.Binary()
	if err != nil {
		return nil, fmt.Errorf("workers run the linksim binary: %w", err)
	}
	return []string{bin, "load", "--worker"}, nil
}

// workerSource is worker i's loopback source address: 127.0.1.(i+1), so
// each worker has its own ~28,000 ephemeral ports towards the relay.
func workerSource(i int) string { return "127.0.1." + strconv.Itoa(i+1) }

// coordinateWorkers starts the relay, spreads def's users over def.Workers
// worker processes, merges their live figures for update and their reports
// into one.
func coordinateWorkers(ctx context.Context, def Definition, opts Options, update func(Snapshot)) (*reports.Report, error) {
	t, err := newTransport(ctx, def, opts)
	if err != nil {
		return nil, err
	}
	defer t.close()
	ts, _ := def.thresholds()        // Check parsed them
	plan, _ := parseRelay(def.Relay) // Check parsed it
	return withRelay(def, opts, harness.Config{}, func(env *harness.Env) (*reports.Report, error) {
		c := &coordinator{def: def, ts: ts, env: env, nodes: plan.nodeBases(env), transport: t, update: update}
		return c.run(ctx)
	})
}

// coordinator runs the workers of one run.
type coordinator struct {
	def       Definition
	ts        reports.Thresholds
	env       *harness.Env
	nodes     []string // the relay nodes' base URLs
	transport transport
	update    func(Snapshot)

	// samples draws the merged figures and the relay's into the report's
	// time series, on the coordinator's clock.
	samples *sampler
	began   time.Time

	mu      sync.Mutex
	latest  []Snapshot
	abort   string
	stopped bool
}

// worker is one worker as the coordinator sees it.
type worker struct {
	index  int
	conn   Conn
	proc   *process // nil for a worker that joined from elsewhere
	report *reports.Report
	err    error
}

// output is the end of what w printed, for an error, or "".
func (w *worker) output() string {
	if w.proc == nil {
		return ""
	}
	return w.proc.stderr.last()
}

func (c *coordinator) run(ctx context.Context) (*reports.Report, error) {
	n := c.def.Workers
	c.latest = make([]Snapshot, n)
	job := c.def
	// Every worker gets every node, and spreads its devices over them.
	urls := make([]string, len(c.nodes))
	for i, base := range c.nodes {
		urls[i] = wsURL(base)
	}
	job.Relay = strings.Join(urls, ",")
	job.AbortOnFail = false // the coordinator judges the merged figures
	relayBefore := relayMetrics(ctx, c.nodes)
	// This process runs the relay and no devices, so even an embedded
	// relay's process figures are the relay's.
	c.samples = newSampler(func(ctx context.Context) relayFigures { return relayMetrics(ctx, c.nodes) })
	c.began = time.Now()

	workers := make([]*worker, n)
	var wg sync.WaitGroup
	for i := range workers {
		w, err := c.transport.open(ctx, i, Job{Definition: job, Shard: Shard{Index: i, Count: n, Source: sourceFor(i, urls[0])}})
		if err != nil {
			c.stop("", workers[:i])
			for _, w := range workers[:i] {
				if w.proc != nil {
					w.proc.kill()
				}
			}
			return nil, err
		}
		c.mu.Lock()
		workers[i] = w
		stopped := c.stopped
		c.mu.Unlock()
		if stopped { // another worker has failed meanwhile
			_ = w.conn.Send(Message{Kind: MsgStop})
		}
		wg.Go(func() {
			if c.listen(w); w.err != nil {
				// The run has failed: the others need not play it out.
				c.stop(fmt.Sprintf("worker %d failed", w.index+1), workers)
			}
		})
	}
	done := make(chan struct{})
	var relayLinked relayFigures
	var ticker sync.WaitGroup
	ticker.Go(func() { relayLinked = c.watch(ctx, done, workers) })
	wg.Wait()
	close(done)
	ticker.Wait()

	var errs []error
	var merged *reports.Report
	interrupted := ctx.Err() != nil
	for _, w := range workers {
		if w.err != nil {
			errs = append(errs, fmt.Errorf("worker %d: %w%s", w.index+1, w.err, w.output()))
			continue
		}
		interrupted = interrupted || w.report.Interrupted
		for i := range w.report.Scenarios {
			w.report.Scenarios[i].Name += fmt.Sprintf(" (worker %d)", w.index+1)
		}
		if merged == nil {
			merged = w.report
		} else {
			merged.Merge(w.report)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	merged.Name, merged.Relay = c.def.Name, c.env.Relay().Kind()
	merged.Interrupted = interrupted
	merged.Meta = c.meta(workers, relayBefore, relayLinked)
	merged.TimeSeries = c.samples.series()
	merged.Evaluate(c.ts)
	return merged, nil
}

// listen takes w's messages until its result, then waits for it to exit.
func (c *coordinator) listen(w *worker) {
	defer func() {
		if w.proc == nil {
			return
		}
		<-w.proc.exited
		if err := w.proc.err; err != nil && w.err == nil && w.report == nil {
			w.err = err
		}
	}()
	for {
		m, err := w.conn.Receive()
		if err != nil {
			w.err = fmt.Errorf("link lost before its result: %w", err)
			return
		}
		switch m.Kind {
		case MsgProgress:
			c.heard(w.index, m.Progress)
		case MsgResult:
			c.heard(w.index, m.Progress)
			w.report, w.err = reports.ReadJSON(bytes.NewReader(m.Report))
			return
		case MsgFailed:
			w.err = errors.New(m.Error)
			return
		}
	}
}

// heard keeps a worker's newest figures, if the message had any.
func (c *coordinator) heard(worker int, figures *Snapshot) {
	if figures == nil {
		return
	}
	c.mu.Lock()
	c.latest[worker] = *figures
	c.mu.Unlock()
}

// watch merges the workers' figures every second for the live view, stops
// every worker when a threshold fails live (abort-on-fail), and returns the
// relay's figures once every device is linked.
func (c *coordinator) watch(ctx context.Context, done <-chan struct{}, workers []*worker) (relayLinked relayFigures) {
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	judge := liveJudge{def: c.def, ts: c.ts}
	linked := false
	merge := func() Snapshot {
		snap := c.merged()
		snap.At = time.Since(c.began) // workers' clocks started one after another
		c.samples.add(ctx, snap)
		c.update(snap)
		return snap
	}
	for {
		select {
		case <-done:
			// Every worker's last figures, sent before its result, are in.
			merge()
			return relayLinked
		case <-tk.C:
		}
		snap := merge()
		if snap.Phase == PhaseMessaging && !linked {
			linked = true // every worker has linked its devices
			relayLinked = relayMetrics(ctx, c.nodes)
		}
		if why := judge.verdict(snap); why != "" {
			c.stop(why, workers)
		}
	}
}

func (c *coordinator) stop(why string, workers []*worker) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	c.stopped, c.abort = true, why
	for _, w := range workers {
		if w != nil { // nil: not started yet; it is stopped as it starts
			_ = w.conn.Send(Message{Kind: MsgStop}) // a worker already gone needs no stop
		}
	}
}

// merged is the sum of the workers' latest snapshots.
func (c *coordinator) merged() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	var s Snapshot
	for _, w := range c.latest {
		s.Merge(w)
	}
	return s
}

// meta sums the workers' figures for the merged report.
func (c *coordinator) meta(workers []*worker, relayBefore, relayLinked relayFigures) map[string]string {
	sum := func(key string) (total float64) {
		for _, w := range workers {
			v, _ := strconv.ParseFloat(w.report.Meta[key], 64)
			total += v
		}
		return total
	}
	maxOf := func(key string) (m float64) {
		for _, w := range workers {
			v, _ := strconv.ParseFloat(w.report.Meta[key], 64)
			m = max(m, v)
		}
		return m
	}
	devices, linkSecs := sum("devices"), maxOf("link_seconds")
	meta := map[string]string{
		"workers":                strconv.Itoa(len(workers)),
		"users":                  strconv.FormatFloat(sum("users"), 'f', 0, 64),
		"devices":                strconv.FormatFloat(devices, 'f', 0, 64),
		"link_seconds":           fmt.Sprintf("%.2f", linkSecs),
		"actions":                strconv.FormatFloat(sum("actions"), 'f', 0, 64),
		"action_errors":          strconv.FormatFloat(sum("action_errors"), 'f', 0, 64),
		"link_failures":          strconv.FormatFloat(sum("link_failures"), 'f', 0, 64),
		"dropped_actions":        strconv.FormatFloat(sum("dropped_actions"), 'f', 0, 64),
		"relinks":                strconv.FormatFloat(sum("relinks"), 'f', 0, 64),
		"deliveries":             strconv.FormatFloat(sum("deliveries"), 'f', 0, 64),
		"client_msg_cpu_seconds": fmt.Sprintf("%.2f", sum("client_msg_cpu_seconds")),
		"prekeys":                strconv.Itoa(c.def.PreKeys),
		"keepalive":              time.Duration(c.def.KeepAlive).String(),
		"client_gc":              workers[0].report.Meta["client_gc"],
	}
	// The workers' peaks, added: at most what they held at once.
	if rss := sum("client_peak_rss_mib"); rss > 0 {
		meta["client_peak_rss_mib"] = fmt.Sprintf("%.1f", rss)
	}
	if d := sum("deliveries"); d > 0 {
		meta["client_msg_cpu_us_per_delivery"] = fmt.Sprintf("%.1f", sum("client_msg_cpu_seconds")*1e6/d)
	}
	if linkSecs > 0 {
		meta["devices_per_s"] = fmt.Sprintf("%.1f", devices/linkSecs)
	}
	if devices > 0 {
		meta["client_heap_kib_per_device"] = fmt.Sprintf("%.1f", sum("client_heap_kib_per_device")/float64(len(workers)))
		meta["client_link_cpu_ms_per_device"] = fmt.Sprintf("%.2f", sum("client_link_cpu_ms_per_device")/float64(len(workers)))
		if relayLinked.rss > 0 && c.env.Relay().Kind() != harness.Embedded {
			meta["relay_rss_kib_per_device"] = fmt.Sprintf("%.1f", (relayLinked.rss-relayBefore.rss)/devices/1024)
			meta["relay_link_cpu_ms_per_device"] = fmt.Sprintf("%.2f", (relayLinked.cpu-relayBefore.cpu)*1000/devices)
		}
	}
	// Browser pages are the first users', all in the first worker (Check).
	for k, v := range workers[0].report.Meta {
		if strings.HasPrefix(k, "browser_") {
			meta[k] = v
		}
	}
	if c.abort != "" {
		meta["aborted"] = c.abort
	}
	return meta
}

// ServeWorker runs the job a coordinator sends on in and answers on out:
// what `linksim load --worker` does.
func ServeWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	return serve(ctx, newStdioConn(in, out))
}

// serve runs the job that comes first over conn, sending progress and
// then its result back over it.
func serve(ctx context.Context, conn Conn) error {
	m, err := conn.Receive()
	if err != nil {
		return fmt.Errorf("worker: read job: %w", err)
	}
	if m.Kind != MsgJob || m.Job == nil {
		return fmt.Errorf("worker: first message is %q, want a job", m.Kind)
	}
	stop := make(chan struct{})
	go func() {
		for {
			m, err := conn.Receive()
			if err != nil || m.Kind == MsgStop {
				// A coordinator gone is a stop too: nobody reads the result.
				close(stop)
				return
			}
		}
	}()
	// The workers a coordinator starts share its machine.
	tuneGC(m.Job.Shard.Count)
	var last Snapshot // Run's final tick comes after its last whole second
	rep, err := Run(ctx, m.Job.Definition, Options{
		Shard: m.Job.Shard, Stop: stop,
		Progress: func(s Snapshot) {
			last = s
			_ = conn.Send(Message{Kind: MsgProgress, Progress: &s})
		},
	})
	if err != nil {
		return errors.Join(err, conn.Send(Message{Kind: MsgFailed, Error: err.Error()}))
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		return errors.Join(err, conn.Send(Message{Kind: MsgFailed, Error: err.Error()}))
	}
	// The result carries the final figures too: a transport may drop a
	// progress message.
	return conn.Send(Message{Kind: MsgResult, Report: raw, Progress: &last})
}

// tailBuffer keeps the last max bytes written to it: a worker's stderr, for
// the error when it fails.
type tailBuffer struct {
	max int

	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = b.buf[over:]
	}
	return len(p), nil
}

// last returns the kept output as a suffix for an error, or "".
func (b *tailBuffer) last() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) == 0 {
		return ""
	}
	return "; its last output:\n" + string(b.buf)
}
