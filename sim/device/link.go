package device

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/wire"
	"github.com/linksim/linksim/sim/wire/pb"
)

// RelayError is an Error frame the relay answered a request with.
type RelayError struct {
	Code    pb.ErrorCode
	Message string
	Lists   *pb.DeviceLists // fresh lists with STALE_DEVICE_LIST
}

func (e *RelayError) Error() string {
	if e.Message == "" {
		return "relay: " + e.Code.String()
	}
	return "relay: " + e.Code.String() + ": " + e.Message
}

// Code returns the relay error code inside err, or ERROR_UNSPECIFIED.
func Code(err error) pb.ErrorCode {
	var re *RelayError
	if errors.As(err, &re) {
		return re.Code
	}
	return pb.ErrorCode_ERROR_UNSPECIFIED
}

// link is one live connection: it matches answers to requests and hands every
// push, in arrival order, to the consumer reading pushes().
type link struct {
	conn   *wire.Conn
	nextID atomic.Uint64
	// state is synced before every frame goes out (kv.Sync).
	state kv.KV

	mu      sync.Mutex
	pending map[uint64]chan *pb.Frame
	err     error // why the link ended; set once

	// queue holds pushes not yet taken. It is unbounded so the read loop
	// never waits on the consumer, which itself waits on answers.
	queue  []*pb.Frame
	notify chan struct{}
	done   chan struct{}

	// mark (Config.Mark) is told once, when the first frame went out: on a
	// new device's way to its first ref that frame is the first protobuf
	// encoding, which in a page costs tens of milliseconds.
	mark      func(string)
	firstSent sync.Once
}

func dial(ctx context.Context, cfg Config, key wire.KeyPair) (*link, error) {
	c, err := wire.DialVia(ctx, cfg.RelayURL, cfg.Dialer, key, cfg.RelayKey)
	if err != nil {
		return nil, err
	}
	l := &link{
		conn:    c,
		state:   cfg.State,
		pending: make(map[uint64]chan *pb.Frame),
		notify:  make(chan struct{}, 1),
		done:    make(chan struct{}),
		mark:    cfg.Mark,
	}
	go l.readLoop()
	return l, nil
}

func (l *link) readLoop() {
	for {
		f, err := l.conn.ReadFrame(context.Background())
		switch wire.CloseReason(err) {
		case closeReplaced:
			l.fail(ErrReplaced)
			return
		case closeRestartRequired:
			l.fail(errRestartRequired)
			return
		}
		if err != nil {
			l.fail(fmt.Errorf("connection lost: %w", err))
			return
		}
		if f.Id == 0 {
			if lo := f.GetLoggedOut(); lo != nil {
				l.fail(&LoggedOutError{Reason: lo.Reason})
				return
			}
			l.mu.Lock()
			l.queue = append(l.queue, f)
			l.mu.Unlock()
			select {
			case l.notify <- struct{}{}:
			default:
			}
			continue
		}
		l.mu.Lock()
		ch := l.pending[f.Id]
		delete(l.pending, f.Id)
		l.mu.Unlock()
		if ch != nil {
			ch <- f
		}
	}
}

// fail ends the link with err (the first reason wins) and wakes every waiter.
func (l *link) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	l.err = err
	close(l.done)
	l.conn.CloseNow()
}

// Err is why the link ended, or nil while it is up.
func (l *link) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *link) close() { l.fail(errors.New("closed")) }

// next returns the next push, waiting for one, for the link to end, or ctx.
func (l *link) next(ctx context.Context) (*pb.Frame, error) {
	for {
		l.mu.Lock()
		if len(l.queue) > 0 {
			f := l.queue[0]
			l.queue[0] = nil
			l.queue = l.queue[1:]
			l.mu.Unlock()
			return f, nil
		}
		err := l.err
		l.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-l.notify:
		case <-l.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// pendingPushes reports whether pushes are waiting, so the consumer can batch
// acks and receipts until it has caught up.
func (l *link) pendingPushes() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue) > 0
}

// call sends a request and waits for its answer. An Error answer comes back
// as a *RelayError.
func (l *link) call(ctx context.Context, f *pb.Frame) (*pb.Frame, error) {
	f.Id = l.nextID.Add(1)
	ch := make(chan *pb.Frame, 1)
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("%w: %w", errNotSent, l.err)
	}
	l.pending[f.Id] = ch
	l.mu.Unlock()
	forget := func() {
		l.mu.Lock()
		delete(l.pending, f.Id)
		l.mu.Unlock()
	}
	if err := l.write(ctx, f); err != nil {
		forget()
		return nil, err
	}
	answered := func(ans *pb.Frame) (*pb.Frame, error) {
		if e := ans.GetError(); e != nil {
			return nil, &RelayError{Code: e.Code, Message: e.Message, Lists: e.DeviceLists}
		}
		return ans, nil
	}
	select {
	case ans := <-ch:
		return answered(ans)
	case <-l.done:
		// The answer may have come just before the end: a companion
		// removing itself gets Ok, then LoggedOut.
		select {
		case ans := <-ch:
			return answered(ans)
		default:
		}
		forget()
		return nil, l.Err()
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	}
}

// post sends a frame that gets no answer (Ack).
func (l *link) post(ctx context.Context, f *pb.Frame) error { return l.write(ctx, f) }

// write sends f once the state it may rest on is durable: a crash must not
// lose what an ack, a receipt or a ciphertext (sent with a session's next
// key) told the relay.
func (l *link) write(ctx context.Context, f *pb.Frame) error {
	if err := kv.Sync(l.state); err != nil {
		err = fmt.Errorf("state not saved: %w", err)
		l.fail(err)
		return fmt.Errorf("%w: %w", errNotSent, err)
	}
	if err := l.conn.WriteFrame(ctx, f); err != nil {
		return l.writeFailed(ctx, err)
	}
	l.firstSent.Do(func() { l.mark("frame.sent") })
	return nil
}

// writeFailed ends the link after a failed write and returns why it ended.
// A write fails on a WebSocket the relay closed without saying why; the
// read loop, which gets the close frame, ends the link with the relay's
// reason (replaced, restart required), so it is waited for.
func (l *link) writeFailed(ctx context.Context, err error) error {
	if !errors.Is(err, net.ErrClosed) {
		l.fail(fmt.Errorf("connection lost: %w", err))
		return l.Err()
	}
	select {
	case <-l.done:
		return l.Err()
	case <-ctx.Done():
		l.fail(fmt.Errorf("connection lost: %w", err))
		return l.Err()
	}
}

// Close reasons the device acts on: a newer connection of the same device
// replaced this one; the relay wants a just-linked companion to connect
// again (docs/protocol.md §16.4).
const (
	closeReplaced        = "replaced"
	closeRestartRequired = "restart required"
)

// errRestartRequired ends a link the relay asked the device to make again
// at once, without backoff.
var errRestartRequired = errors.New("the relay asked to reconnect")

// ErrReplaced means another connection of this device (the same keys, from
// another process or tab) took over at the relay. It is final: reconnecting
// would take the link back, and the two would replace each other for ever.
// The device's state stays; Open it again to use it here.
var ErrReplaced = errors.New("replaced: this device connected from elsewhere")

// LoggedOutError means the relay removed this device: its state is void.
type LoggedOutError struct{ Reason string }

func (e *LoggedOutError) Error() string { return "logged out by the relay: " + e.Reason }

// keepAlive pings every interval, so the relay does not drop a quiet link as
// idle and a half-open link is found: a ping unanswered within the interval
// ends the link.
func (l *link) keepAlive(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, every)
			_, err := l.call(pctx, &pb.Frame{Body: &pb.Frame_Ping{Ping: &pb.Ping{}}})
			cancel()
			if err != nil && ctx.Err() == nil && l.Err() == nil {
				l.fail(fmt.Errorf("keepalive: %w", err))
				return
			}
		}
	}
}
