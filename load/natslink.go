package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/linksim/linksim/harness"
)

// The coordinator-worker link over NATS, so workers can run on other
// machines. Subjects, under linksim.load.<run>:
//
//	coordinator   request/reply: "is the coordinator there?" (workers ask
//	              it to notice a coordinator gone; a second coordinator
//	              asks it to refuse a run name in use)
//	join          request/reply: a worker gives its id, gets its job (or
//	              "wait": the coordinator has not reached it yet)
//	<id>.cmd      request/reply: coordinator -> worker commands (stop)
//	<id>.out      worker -> coordinator: progress and heartbeats
//	              published; the result or failure as requests the
//	              coordinator acknowledges, in parts when larger than the
//	              server's max payload
//
// A worker that says nothing (not even its heartbeat each second) for
// NATSOptions.Silence is dead to the coordinator: the run fails naming it.

// NATSOptions says how a coordinator meets its workers over NATS.
type NATSOptions struct {
	// URL is the NATS server, like nats://10.0.0.5:4222 (comma-separate
	// several of one cluster); user:password@ or a token@ in it
	// authenticate, tls:// encrypts. "" means workers on stdin/stdout.
	URL string
	// Run names the run on the server, so runs can share one; workers
	// give the same. Letters, digits, - and _; "" means "load".
	Run string
	// Remote is how many of the workers (the last ones) join from
	// elsewhere with `linksim load worker`; the coordinator starts the
	// others itself. 0 starts them all here.
	Remote int
	// JoinTimeout bounds the wait for every worker to join; 0 means 1m.
	JoinTimeout time.Duration
	// Silence is how long a worker may say nothing before the run fails;
	// 0 means 15s.
	Silence time.Duration
	// Command starts a local worker; --run and --id are appended, the URL
	// goes in $LINKSIM_NATS_URL (not on a command line others can read).
	// nil means this linksim's `load worker`.
	Command []string
}

// NATSWorker says how a worker joins a run over NATS.
type NATSWorker struct {
	URL string // as NATSOptions.URL
	Run string // as NATSOptions.Run
	ID  int    // 1 to the run's workers
	// Relay, if set, replaces the relay URL the coordinator sends, for a
	// machine that reaches the relay by another address.
	Relay string
	// Source, if set, is the local IP address devices dial the relay from.
	Source string
	// JoinTimeout bounds the wait for the coordinator; 0 means 1m.
	JoinTimeout time.Duration
}

// natsURLEnv carries the NATS URL, credentials and all, to workers.
const natsURLEnv = "LINKSIM_NATS_URL"

// Messages only the NATS link uses.
const (
	msgAlive = "alive" // worker -> coordinator: heartbeat
	msgWait  = "wait"  // coordinator -> joining worker: ask again soon
)

// partHeader marks a part of a message that more parts follow.
const partHeader = "Linksim-Part"

var runName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func (o NATSOptions) defaults() NATSOptions {
	if o.Run == "" {
		o.Run = "load"
	}
	if o.JoinTimeout == 0 {
		o.JoinTimeout = time.Minute
	}
	if o.Silence == 0 {
		o.Silence = 15 * time.Second
	}
	return o
}

func natsSubject(run string, parts ...string) string {
	return "linksim.load." + run + "." + strings.Join(parts, ".")
}

// redactedURL is u without passwords or tokens, for messages.
func redactedURL(u string) string {
	var out []string
	for _, one := range strings.Split(u, ",") {
		p, err := url.Parse(strings.TrimSpace(one))
		if err != nil {
			out = append(out, "(unreadable URL)")
			continue
		}
		if _, password := p.User.Password(); p.User != nil && !password {
			p.User = url.User("xxxxx") // a token
		}
		out = append(out, p.Redacted())
	}
	return strings.Join(out, ",")
}

func connectNATS(rawURL, name string) (*nats.Conn, error) {
	nc, err := nats.Connect(rawURL, nats.Name(name))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", redactedURL(rawURL), err)
	}
	return nc, nil
}

// natsTransport is the coordinator's side of the NATS link.
type natsTransport struct {
	opts     NATSOptions
	log      io.Writer
	profiles string // Options.Profiles
	n        int
	nc       *nats.Conn
	command  []string
	// deadline is when every worker must have joined.
	deadline time.Time

	mu      sync.Mutex
	conns   []*natsCoordinatorConn
	jobs    []*Job // set when open reaches a worker
	joined  []bool
	arrived chan struct{} // a worker joined
}

func newNATSTransport(ctx context.Context, n int, opts NATSOptions, log io.Writer) (*natsTransport, error) {
	opts = opts.defaults()
	if !runName.MatchString(opts.Run) {
		return nil, fmt.Errorf("NATS run name %q: want letters, digits, - and _", opts.Run)
	}
	if opts.Remote < 0 || opts.Remote > n {
		return nil, fmt.Errorf("remote workers: %d of %d workers", opts.Remote, n)
	}
	nc, err := connectNATS(opts.URL, "linksim load coordinator")
	if err != nil {
		return nil, err
	}
	if _, err := nc.Request(natsSubject(opts.Run, "coordinator"), nil, time.Second); err == nil {
		nc.Close()
		return nil, fmt.Errorf("another coordinator runs %q on NATS at %s; give this run another name", opts.Run, redactedURL(opts.URL))
	}
	command := opts.Command
	if command == nil && opts.Remote < n {
		bin, err := harness.Binary()
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("workers run the linksim binary: %w", err)
		}
		command = []string{bin, "load", "worker"}
	}
	t := &natsTransport{opts: opts, log: log, n: n, nc: nc, command: command,
		jobs: make([]*Job, n), joined: make([]bool, n), arrived: make(chan struct{}, 1)}
	_, err = nc.Subscribe(natsSubject(opts.Run, "coordinator"), func(m *nats.Msg) { _ = m.Respond(nil) })
	if err == nil {
		_, err = nc.Subscribe(natsSubject(opts.Run, "join"), t.join)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("NATS at %s: %w", redactedURL(opts.URL), err)
	}
	t.deadline = time.Now().Add(opts.JoinTimeout)
	return t, nil
}

// join answers a worker asking for its job.
func (t *natsTransport) join(m *nats.Msg) {
	reply := func(msg Message) {
		raw, _ := json.Marshal(msg)
		_ = m.Respond(raw)
	}
	var ask struct{ ID int }
	if err := json.Unmarshal(m.Data, &ask); err != nil {
		reply(Message{Kind: MsgFailed, Error: "unreadable join: " + err.Error()})
		return
	}
	i := ask.ID - 1
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case i < 0 || i >= t.n:
		reply(Message{Kind: MsgFailed, Error: fmt.Sprintf("no worker %d in a run of %d workers", ask.ID, t.n)})
	case t.joined[i]:
		reply(Message{Kind: MsgFailed, Error: fmt.Sprintf("worker %d has joined already", ask.ID)})
	case t.jobs[i] == nil:
		reply(Message{Kind: msgWait})
	default:
		t.joined[i] = true
		reply(Message{Kind: MsgJob, Job: t.jobs[i]})
		select {
		case t.arrived <- struct{}{}:
		default:
		}
	}
}

func (t *natsTransport) open(ctx context.Context, i int, job Job) (*worker, error) {
	id := strconv.Itoa(i + 1)
	local := i < t.n-t.opts.Remote
	conn := &natsCoordinatorConn{nc: t.nc, cmd: natsSubject(t.opts.Run, id, "cmd"), silence: t.opts.Silence,
		msgs: make(chan Message, 16), closed: make(chan struct{})}
	conn.heard.Store(time.Now().UnixNano())
	sub, err := t.nc.Subscribe(natsSubject(t.opts.Run, id, "out"), conn.take)
	if err != nil {
		return nil, fmt.Errorf("worker %d: NATS: %w", i+1, err)
	}
	conn.sub = sub
	t.mu.Lock()
	t.conns = append(t.conns, conn)
	t.mu.Unlock()
	w := &worker{index: i, conn: conn}
	if local {
		cmd := append(append([]string(nil), t.command...), "--run", t.opts.Run, "--id", id)
		if w.proc, err = startProcess(ctx, i, cmd, append(profileEnv(t.profiles, i), natsURLEnv+"="+t.opts.URL), t.log, nil, nil); err != nil {
			conn.close()
			return nil, err
		}
		conn.proc = w.proc
	} else {
		job.Shard.Source = "" // the loopback addresses are this machine's
	}
	t.mu.Lock()
	t.jobs[i] = &job
	t.mu.Unlock()
	if err := t.awaitJoin(ctx, w); err != nil {
		conn.close()
		if w.proc != nil {
			w.proc.kill()
			err = fmt.Errorf("%w%s", err, w.output())
		}
		return nil, err
	}
	return w, nil
}

// awaitJoin waits until w has taken its job.
func (t *natsTransport) awaitJoin(ctx context.Context, w *worker) error {
	timer := time.NewTimer(time.Until(t.deadline))
	defer timer.Stop()
	var exited <-chan struct{}
	if w.proc != nil {
		exited = w.proc.exited
	}
	for {
		t.mu.Lock()
		joined := t.joined[w.index]
		t.mu.Unlock()
		if joined {
			return nil
		}
		select {
		case <-t.arrived:
		case <-exited:
			return fmt.Errorf("worker %d ended before it joined over NATS (%v)", w.index+1, w.proc.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return fmt.Errorf("waited %s for workers to join run %q on NATS at %s; missing: %s (start each with `linksim load worker --nats URL --run %s --id K`)",
				t.opts.JoinTimeout, t.opts.Run, redactedURL(t.opts.URL), t.missing(), t.opts.Run)
		}
	}
}

// missing lists the workers that have not joined.
func (t *natsTransport) missing() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ids []string
	for i, ok := range t.joined {
		if !ok {
			ids = append(ids, strconv.Itoa(i+1))
		}
	}
	return strings.Join(ids, ", ")
}

func (t *natsTransport) close() {
	for _, c := range t.conns {
		c.close()
	}
	t.nc.Close()
}

// natsCoordinatorConn is the coordinator's end of one worker's link.
type natsCoordinatorConn struct {
	nc      *nats.Conn
	sub     *nats.Subscription
	cmd     string
	silence time.Duration
	proc    *process // nil for a worker that joined from elsewhere

	heard  atomic.Int64 // unix nanoseconds of the worker's last word
	parts  []byte       // a message arriving in parts; used by take alone
	msgs   chan Message
	closed chan struct{}
	once   sync.Once
}

// take receives what the worker sends on its out subject.
func (c *natsCoordinatorConn) take(m *nats.Msg) {
	c.heard.Store(time.Now().UnixNano())
	if m.Header.Get(partHeader) != "" {
		c.parts = append(c.parts, m.Data...)
		_ = m.Respond(nil)
		return
	}
	data := m.Data
	if c.parts != nil {
		data, c.parts = append(c.parts, data...), nil
	}
	var msg Message
	if err := json.Unmarshal(data, &msg); err != nil {
		msg = Message{Kind: MsgFailed, Error: "unreadable message over NATS: " + err.Error()}
	}
	switch msg.Kind {
	case msgAlive:
	case MsgProgress: // a newer one follows; never hold the subscription up
		select {
		case c.msgs <- msg:
		default:
		}
	default:
		select {
		case c.msgs <- msg:
		case <-c.closed:
		}
	}
	if m.Reply != "" {
		_ = m.Respond(nil)
	}
}

func (c *natsCoordinatorConn) Send(m Message) error {
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := c.nc.Request(c.cmd, raw, 5*time.Second); err != nil {
		return fmt.Errorf("send %s: %w", m.Kind, err)
	}
	return nil
}

func (c *natsCoordinatorConn) Receive() (Message, error) {
	var exited <-chan struct{}
	if c.proc != nil {
		exited = c.proc.exited
	}
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for {
		select {
		case m := <-c.msgs:
			return m, nil
		default:
		}
		select {
		case m := <-c.msgs:
			return m, nil
		case <-exited:
			select { // it may have sent its last message as it ended
			case m := <-c.msgs:
				return m, nil
			default:
			}
			return Message{}, fmt.Errorf("its process ended (%v)", c.proc.err)
		case <-c.closed:
			return Message{}, io.EOF
		case <-tk.C:
			if quiet := time.Since(time.Unix(0, c.heard.Load())); quiet > c.silence {
				return Message{}, fmt.Errorf("no word from it over NATS for %s: it died, or lost its link to NATS", quiet.Round(time.Second))
			}
		}
	}
}

func (c *natsCoordinatorConn) close() {
	c.once.Do(func() {
		close(c.closed)
		_ = c.sub.Unsubscribe()
	})
}

// ServeNATSWorker joins a run over NATS as worker w.ID, runs its job and
// sends its result: what `linksim load worker` does.
func ServeNATSWorker(ctx context.Context, w NATSWorker) error {
	o := NATSOptions{Run: w.Run, JoinTimeout: w.JoinTimeout}.defaults()
	if !runName.MatchString(o.Run) {
		return fmt.Errorf("NATS run name %q: want letters, digits, - and _", o.Run)
	}
	nc, err := connectNATS(w.URL, fmt.Sprintf("linksim load worker %d", w.ID))
	if err != nil {
		return err
	}
	defer nc.Close()
	job, err := joinRun(ctx, nc, o, w.ID)
	if err != nil {
		return fmt.Errorf("worker %d: %w", w.ID, err)
	}
	if w.Relay != "" {
		job.Definition.Relay = w.Relay
	}
	if w.Source != "" {
		job.Shard.Source = w.Source
	}
	conn, err := newNATSWorkerConn(nc, o.Run, w.ID, job)
	if err != nil {
		return fmt.Errorf("worker %d: NATS: %w", w.ID, err)
	}
	defer conn.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- serve(ctx, conn) }()
	select {
	case err := <-served:
		return err
	case <-conn.gone:
		select {
		case err := <-served: // it sent its result as the coordinator ended
			return err
		default:
		}
		// A run goes on without it (devices wait out a relay that went
		// with it): nobody would read this worker's result.
		return fmt.Errorf("worker %d: %w", w.ID, conn.goneErr)
	}
}

// joinRun asks the coordinator for worker id's job until it answers or
// o.JoinTimeout passes.
func joinRun(ctx context.Context, nc *nats.Conn, o NATSOptions, id int) (*Job, error) {
	ask, _ := json.Marshal(struct{ ID int }{id})
	deadline := time.Now().Add(o.JoinTimeout)
	for {
		reply, err := nc.RequestWithContext(ctx, natsSubject(o.Run, "join"), ask)
		var m Message
		if err == nil {
			if err = json.Unmarshal(reply.Data, &m); err != nil {
				return nil, fmt.Errorf("unreadable job: %w", err)
			}
		}
		switch {
		case err == nil && m.Kind == MsgJob && m.Job != nil:
			return m.Job, nil
		case err == nil && m.Kind == MsgFailed:
			return nil, fmt.Errorf("the coordinator refused: %s", m.Error)
		case err != nil && !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded):
			return nil, fmt.Errorf("join run %q: %w", o.Run, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no coordinator of run %q gave a job within %s", o.Run, o.JoinTimeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// natsWorkerConn is a worker's end of its link; its first Receive returns
// the job it joined with.
type natsWorkerConn struct {
	nc          *nats.Conn
	out         string
	coordinator string
	job         *Job
	cmds        chan Message
	sub         *nats.Subscription
	stop        chan struct{}
	beats       sync.WaitGroup
	once        sync.Once
	// gone is closed when the coordinator has not answered for 5s;
	// goneErr says how it failed to.
	gone    chan struct{}
	goneErr error
}

func newNATSWorkerConn(nc *nats.Conn, run string, id int, job *Job) (*natsWorkerConn, error) {
	c := &natsWorkerConn{nc: nc, out: natsSubject(run, strconv.Itoa(id), "out"), coordinator: natsSubject(run, "coordinator"),
		job: job, cmds: make(chan Message, 4), stop: make(chan struct{}), gone: make(chan struct{})}
	sub, err := nc.Subscribe(natsSubject(run, strconv.Itoa(id), "cmd"), func(m *nats.Msg) {
		var msg Message
		if json.Unmarshal(m.Data, &msg) == nil {
			select {
			case c.cmds <- msg:
			default: // a stop is waiting already
			}
		}
		_ = m.Respond(nil)
	})
	if err != nil {
		return nil, err
	}
	c.sub = sub
	c.beats.Go(c.beat)
	return c, nil
}

// beat tells the coordinator every second that this worker lives, and
// asks whether the coordinator does.
func (c *natsWorkerConn) beat() {
	alive, _ := json.Marshal(Message{Kind: msgAlive})
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	missed := 0
	for {
		select {
		case <-c.stop:
			return
		case <-tk.C:
		}
		_ = c.nc.Publish(c.out, alive)
		if _, err := c.nc.Request(c.coordinator, nil, time.Second); err == nil {
			missed = 0
		} else if missed++; missed >= 5 {
			c.goneErr = fmt.Errorf("the coordinator stopped answering over NATS: %w", err)
			close(c.gone)
			return
		}
	}
}

func (c *natsWorkerConn) Send(m Message) error {
	raw, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("send %s: %w", m.Kind, err)
	}
	if m.Kind == MsgProgress {
		return c.nc.Publish(c.out, raw)
	}
	// The result is acknowledged part by part: it must arrive whole.
	size := max(1024, int(c.nc.MaxPayload())-4096)
	for len(raw) > 0 {
		msg := nats.NewMsg(c.out)
		msg.Data = raw[:min(size, len(raw))]
		raw = raw[len(msg.Data):]
		if len(raw) > 0 {
			msg.Header.Set(partHeader, "more")
		}
		if _, err := c.nc.RequestMsg(msg, 30*time.Second); err != nil {
			return fmt.Errorf("send %s to the coordinator: %w", m.Kind, err)
		}
	}
	return nil
}

// Receive returns the job first, then the coordinator's commands; an
// error once the coordinator is gone.
func (c *natsWorkerConn) Receive() (Message, error) {
	if c.job != nil {
		m := Message{Kind: MsgJob, Job: c.job}
		c.job = nil
		return m, nil
	}
	select {
	case m := <-c.cmds:
		return m, nil
	case <-c.stop:
		return Message{}, io.EOF
	case <-c.gone:
		return Message{}, c.goneErr
	}
}

func (c *natsWorkerConn) close() {
	c.once.Do(func() {
		close(c.stop)
		c.beats.Wait()
		_ = c.sub.Unsubscribe()
		_ = c.nc.Flush()
	})
}
