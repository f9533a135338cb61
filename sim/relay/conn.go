package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire"
	"github.com/linksim/linksim/sim/wire/pb"
)

// sendQueue bounds the frames waiting for one connection's writer. The
// delivery window (256) plus answers and pushes fit easily; a connection
// that still falls this far behind is closed rather than allowed to hold
// memory or stall whoever pushes to it. It resumes from its durable queue
// when it reconnects. The queue is a slice grown as frames come, so an
// idle connection holds none of it.
const sendQueue = 1024

// closeWait bounds how long a connection that ends waits for its writer to
// finish the close handshake.
const closeWait = 5 * time.Second

var connIDs atomic.Uint64

// conn is one WebSocket after the Noise handshake. Its read loop runs on a
// goroutine of its own (not the HTTP handler's): it answers pings and takes
// acks itself, and hands the other requests to a goroutine that handles
// them in order while there are some (order.go); a writer goroutine owns
// the socket's write side while there is something to write; a pusher
// goroutine (after Hello) feeds it the device's queue while there is
// something to push. An idle connection runs its read loop only.
type conn struct {
	r   *Relay
	id  uint64
	wc  *wire.Conn
	key []byte // the peer's Noise static key

	// ctx is cancelled when the connection is over; everything the
	// connection started stops with it.
	ctx    context.Context
	cancel context.CancelFunc

	closeOnce  sync.Once
	writerDone chan struct{} // closed once the writer is gone for good

	mu      sync.Mutex
	log     *slog.Logger
	addr    *store.Address // nil while anonymous
	mirror  bool           // the device is a mirror companion (§19)
	session *session       // pairing, while the companion shows refs
	pusher  *pusher        // after Hello
	detach  func()         // from the router, once a device
	closing bool
	// The send queue: frames wait in out for the writer, which runs
	// only while there are some (or a close to make).
	out        []*pb.Frame
	unsent     int  // frames in out and in the writer's hands
	writing    bool // a writer goroutine runs
	writerGone bool
	closeReq   *closeReq
	// Requests handled in order (order.go): one is handled while handling;
	// the ones read meanwhile wait, and the read loop waits for room.
	handling     bool
	waiting      []waitingRequest
	waitingBytes int
	room         sync.Cond      // on mu: a waiting request was taken
	handlers     sync.WaitGroup // the goroutine handling requests, if any
}

type closeReq struct {
	reason string
	final  *pb.Frame // written last, e.g. LoggedOut
}

// serveWS accepts a WebSocket, runs the handshake and starts serving the
// connection.
func (r *Relay) serveWS(w http.ResponseWriter, req *http.Request) {
	if r.isClosed() {
		http.Error(w, "relay closing", http.StatusServiceUnavailable)
		return
	}
	// Any origin may connect: devices authenticate by their Noise key, and a
	// web app routed through a fault proxy connects from another origin.
	ws, err := websocket.Accept(smallBuffers{w}, req, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		r.log.Info("websocket accept failed", "remote", req.RemoteAddr, "err", err)
		return
	}
	hctx, cancel := context.WithTimeout(r.ctx, r.cfg.HandshakeTimeout)
	wc, err := wire.Accept(hctx, ws, r.key)
	cancel()
	if err != nil {
		r.m.handshakeFailures.Inc()
		r.log.Info("handshake failed", "remote", req.RemoteAddr, "err", err)
		ws.CloseNow()
		return
	}
	c := &conn{
		r: r, id: connIDs.Add(1), wc: wc, key: wc.RemoteKey(),
		writerDone: make(chan struct{}),
	}
	c.room.L = &c.mu
	c.ctx, c.cancel = context.WithCancel(r.ctx)
	c.log = r.log.With("conn", c.id, "remote", req.RemoteAddr)
	// Until it is a device, a connection may send only small requests: a
	// big frame would cost CPU to decode before anyone is known.
	wc.SetFrameLimit(r.cfg.Limits.PreLoginMaxFrame)
	if !r.track(c) {
		wc.Close("relay closing")
		return
	}
	// The connection outlives this handler on a goroutine of its own, so
	// that what the HTTP server holds while a handler runs (the request,
	// its headers, the response, and a stack grown by the handshake) is
	// freed: an idle connection keeps only its read loop's shallow stack.
	go func() {
		defer r.untrack(c)
		r.m.conns.Inc()
		defer r.m.conns.Dec()
		c.run()
	}()
}

// run serves the connection on the calling goroutine and cleans up after it.
func (c *conn) run() {
	defer c.end()
	defer c.survive()
	c.identify()
	c.readLoop()
}

// survive, deferred, turns a panic of the calling goroutine into the end
// of this connection alone. A last line of defence: input is validated, so
// a panic is our bug.
func (c *conn) survive() {
	if p := recover(); p != nil {
		c.logger().Error("panic serving connection", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		c.shutdown("internal error", nil)
	}
}

// identify looks the proven Noise key up (protocol §3).
func (c *conn) identify() {
	d, err := c.r.st.DeviceByKey(c.key)
	switch {
	case err == nil:
		c.becomeDevice(d.Address, d.Mirror)
		c.logger().Info("device connected")
	case errors.Is(err, store.ErrRemoved):
		c.log.Info("removed device connected", "user", d.User, "device", d.Device)
		c.shutdown("logged out", loggedOut("removed"))
	case errors.Is(err, store.ErrNotFound):
		c.log.Debug("anonymous connection")
	default:
		c.log.Error("looking up device", "err", err)
		c.shutdown("internal error", nil)
	}
}

// becomeDevice binds the connection to a device and replaces the device's
// older connection, if any.
func (c *conn) becomeDevice(a store.Address, mirror bool) {
	c.wc.SetFrameLimit(wire.MaxFrame)
	c.mu.Lock()
	c.addr, c.mirror = &a, mirror
	c.log = c.log.With("user", a.User, "device", a.Device)
	c.mu.Unlock()
	detach, err := c.r.router.Attach(a, c.onEvent)
	if err != nil {
		c.logger().Error("attaching to the router", "err", err)
		c.shutdown("internal error", nil)
		return
	}
	c.mu.Lock()
	c.detach = detach
	c.mu.Unlock()
}

func (c *conn) device() (store.Address, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.addr == nil {
		return store.Address{}, false
	}
	return *c.addr, true
}

// isMirror reports whether the device is a mirror companion.
func (c *conn) isMirror() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mirror
}

func (c *conn) logger() *slog.Logger {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log
}

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

func (c *conn) readLoop() {
	anonymous := 0 // frames read while the connection was no device
	for {
		rctx, cancel := context.WithTimeout(c.ctx, c.r.cfg.IdleTimeout)
		f, err := c.wc.ReadFrame(rctx)
		idle := rctx.Err() == context.DeadlineExceeded
		cancel()
		if err != nil {
			c.readFailed(err, idle)
			return
		}
		if c.isClosing() {
			continue // keep reading so the close handshake completes
		}
		if _, ok := c.device(); !ok {
			if anonymous++; anonymous > c.r.cfg.Limits.PreLoginMaxFrames {
				c.r.m.refusals.WithLabelValues(refusePreLoginFrames).Inc()
				c.logger().Info("too many frames before login, closing")
				c.shutdown("too many requests before login", nil)
				continue
			}
		}
		c.r.m.frame("in", f)
		if answeredAtOnce(f) {
			c.handle(f)
		} else {
			c.inOrder(f)
		}
	}
}

// readFailed sorts out why a read failed: a frame that decrypted but does
// not decode is answered (protocol §2); anything else just ends the
// connection.
func (c *conn) readFailed(err error, idle bool) {
	log := c.logger()
	switch {
	case idle:
		log.Info("closing idle connection")
	case errors.Is(err, websocket.ErrMessageTooBig):
		if _, ok := c.device(); !ok {
			c.r.m.refusals.WithLabelValues(refusePreLogin).Inc()
		}
		log.Info("message too big, connection closed", "err", err)
	case errors.Is(err, wire.ErrDecode) || errors.Is(err, wire.ErrFrameTooLarge):
		log.Info("undecodable frame", "err", err)
		c.shutdown("bad frame", errFrame(0, pb.ErrorCode_BAD_REQUEST, "frame does not decode"))
	case websocket.CloseStatus(err) != -1:
		log.Debug("peer closed", "err", err)
	default:
		log.Info("read failed", "err", err)
	}
}

// end runs when the read loop is over: it lets the request being handled
// finish (the ones read behind it are dropped, as if never read: nobody is
// left to answer, and a client that reconnects sends them again) and the
// writer finish its close handshake, then stops everything the connection
// started.
func (c *conn) end() {
	c.shutdown("", nil)
	c.handlers.Wait()
	select {
	case <-c.writerDone:
	case <-time.After(closeWait):
	}
	c.cancel()
	c.wc.CloseNow()
	<-c.writerDone
	c.mu.Lock()
	detach := c.detach
	c.mu.Unlock()
	if detach != nil {
		detach()
	}
	c.r.pair.ended(c)
	c.logger().Debug("connection ended")
}

// send queues a frame for the writer without ever blocking: a connection
// whose queue is full is closed at once. Once the connection is closing,
// frames are dropped.
func (c *conn) send(f *pb.Frame) bool {
	c.mu.Lock()
	if c.closing || c.ctx.Err() != nil {
		c.mu.Unlock()
		return false // the writer has drained, or is about to
	}
	if c.unsent >= sendQueue {
		c.closing = true // drop what is still read
		log := c.log
		c.mu.Unlock()
		log.Warn("send queue full, closing the connection", "queued", sendQueue)
		c.r.m.slowCloses.Inc()
		go c.wc.CloseNow() // the writer may be stuck in a write; don't wait for it
		return false
	}
	c.out = append(c.out, f)
	c.unsent++
	c.startWriter()
	c.mu.Unlock()
	return true
}

// answer sends the answer to request id.
func (c *conn) answer(id uint64, f *pb.Frame) {
	f.Id = id
	c.send(f)
}

// shutdown asks the writer to send what is queued, then final (if any), then
// close the socket with reason. Later calls do nothing; frames read from now
// on are dropped.
func (c *conn) shutdown(reason string, final *pb.Frame) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closing = true
		c.closeReq = &closeReq{reason: reason, final: final}
		c.startWriter()
		c.mu.Unlock()
	})
}

// startWriter starts the writer unless it runs or is gone. Callers hold mu.
func (c *conn) startWriter() {
	if !c.writing && !c.writerGone {
		c.writing = true
		go c.writer()
	}
}

// writer writes the queued frames in order and returns once there are
// none, or, after a close request, once the socket is closed.
func (c *conn) writer() {
	for {
		c.mu.Lock()
		batch, req := c.out, c.closeReq
		c.out = nil
		if len(batch) == 0 && req == nil {
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		if len(batch) == 0 {
			switch {
			case req.final != nil && !c.write(req.final):
				c.wc.CloseNow()
			case req.reason == "":
				c.wc.CloseNow()
			default:
				c.wc.Close(req.reason)
			}
			c.writerEnded()
			return
		}
		for _, f := range batch {
			if !c.write(f) {
				c.wc.CloseNow()
				c.writerEnded()
				return
			}
		}
		c.mu.Lock()
		c.unsent -= len(batch)
		c.mu.Unlock()
	}
}

// writerEnded marks the writer gone for good: nothing is written any more.
func (c *conn) writerEnded() {
	c.mu.Lock()
	c.writing, c.writerGone, c.out = false, true, nil
	c.mu.Unlock()
	close(c.writerDone)
}

// write sends one frame; false means the socket is unusable.
func (c *conn) write(f *pb.Frame) bool {
	ctx, cancel := context.WithTimeout(c.ctx, c.r.cfg.IdleTimeout)
	defer cancel()
	err := c.wc.WriteFrame(ctx, f)
	if errors.Is(err, wire.ErrFrameTooLarge) {
		// Requests are checked so that answers fit; this is our bug, and
		// the socket is still fine.
		c.logger().Error("frame too large to send", "type", bodyName(f))
		return true
	}
	if err != nil {
		c.logger().Debug("write failed", "err", err)
		return false
	}
	c.r.m.frame("out", f)
	return true
}

// poke tells the connection's pusher that its queue has new items.
func (c *conn) poke() {
	c.mu.Lock()
	p := c.pusher
	c.mu.Unlock()
	if p != nil {
		p.poke()
	}
}

func loggedOut(reason string) *pb.Frame {
	return &pb.Frame{Body: &pb.Frame_LoggedOut{LoggedOut: &pb.LoggedOut{Reason: reason}}}
}
