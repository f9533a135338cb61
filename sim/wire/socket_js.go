package wire

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall/js"
)

// jsSocket is the page's own WebSocket. Its event handlers only queue what
// happened and return: a handler that blocked on Go would stall the page's
// event loop, and with it every IndexedDB callback the reader may wait for.
type jsSocket struct {
	ws       js.Value
	handlers []js.Func

	mu     sync.Mutex
	queue  [][]byte
	limit  int64
	closed error         // set once the socket closed; reads drain the queue first
	wake   chan struct{} // signalled (capacity 1) when queue or closed change
}

// CloseError is how the peer (or the browser) closed the WebSocket.
type CloseError struct {
	Code   int
	Reason string
}

func (e CloseError) Error() string {
	return fmt.Sprintf("websocket closed: status %d, reason %q", e.Code, e.Reason)
}

var (
	errMessageTooBig = errors.New("websocket message too big")
	errClosedHere    = errors.New("websocket closed by this side")
)

func dialSocket(ctx context.Context, url string, _ DialFunc) (socket, error) {
	// dial is ignored: in a browser the page's WebSocket opens the
	// connection, and no source address can be chosen.
	s := &jsSocket{limit: 32 << 10, wake: make(chan struct{}, 1)}
	opened := make(chan struct{})
	var once sync.Once
	ws, err := construct(url)
	if err != nil {
		return nil, err
	}
	s.ws = ws
	ws.Set("binaryType", "arraybuffer")
	s.on("open", func(js.Value) { once.Do(func() { close(opened) }) })
	s.on("message", func(ev js.Value) { s.received(ev.Get("data")) })
	s.on("close", func(ev js.Value) {
		s.shut(CloseError{Code: ev.Get("code").Int(), Reason: ev.Get("reason").String()})
		s.release()
		once.Do(func() { close(opened) })
	})
	// An error event is always followed by a close event, which ends the
	// socket; there is nothing more in it for a script to read.
	select {
	case <-opened:
		// In the page's start-up timeline (webclient/driver.Timeline) this
		// splits the wait for the socket from the Noise handshake's work.
		js.Global().Get("performance").Call("mark", "linksim.ws.open")
	case <-ctx.Done():
		s.closeNow()
		return nil, ctx.Err()
	}
	s.mu.Lock()
	err = s.closed
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("websocket: %w", err)
	}
	return s, nil
}

// construct calls new WebSocket(url), which throws on a malformed URL.
func construct(url string) (ws js.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("websocket: %v", r)
		}
	}()
	return js.Global().Get("WebSocket").New(url), nil
}

func (s *jsSocket) on(event string, f func(js.Value)) {
	h := js.FuncOf(func(_ js.Value, args []js.Value) any {
		f(args[0])
		return nil
	})
	s.handlers = append(s.handlers, h)
	s.ws.Call("addEventListener", event, h)
}

// release drops the handlers once the socket closed: no event follows the
// close event.
func (s *jsSocket) release() {
	for _, h := range s.handlers {
		h.Release()
	}
	s.handlers = nil
}

func (s *jsSocket) received(data js.Value) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed != nil {
		return
	}
	if data.Type() == js.TypeString {
		s.closed = errTextMessage
		s.ws.Call("close", statusNormalClosure, "text message")
	} else if n := data.Get("byteLength").Int(); int64(n) > s.limit {
		s.closed = fmt.Errorf("read %d bytes, limit %d: %w", n, s.limit, errMessageTooBig)
		// Browsers may only send 1000 or 3000-4999: the reason says why.
		s.ws.Call("close", statusNormalClosure, "message too big")
	} else {
		msg := make([]byte, n)
		js.CopyBytesToGo(msg, js.Global().Get("Uint8Array").New(data))
		s.queue = append(s.queue, msg)
	}
	s.signal()
}

// shut records why the socket ended, unless it already had.
func (s *jsSocket) shut(err error) {
	s.mu.Lock()
	if s.closed == nil {
		s.closed = err
	}
	s.mu.Unlock()
	s.signal()
}

func (s *jsSocket) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *jsSocket) read(ctx context.Context) ([]byte, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			msg := s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return msg, nil
		}
		err := s.closed
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			// As coder/websocket does: a read given up ends the socket.
			s.closeNow()
			return nil, ctx.Err()
		}
	}
}

func (s *jsSocket) write(ctx context.Context, msg []byte) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed != nil {
		return fmt.Errorf("write: %w", closed)
	}
	defer func() {
		if r := recover(); r != nil { // send throws unless the socket is open
			err = fmt.Errorf("write: %v", r)
		}
	}()
	buf := js.Global().Get("Uint8Array").New(len(msg))
	js.CopyBytesToJS(buf, msg)
	s.ws.Call("send", buf)
	return nil
}

func (s *jsSocket) setReadLimit(n int64) {
	s.mu.Lock()
	s.limit = n
	s.mu.Unlock()
}

// close starts the closing handshake. A page may only send code 1000 or
// 3000-4999, so other codes go as 1000 with the reason.
func (s *jsSocket) close(code int, reason string) error {
	if code != statusNormalClosure && (code < 3000 || code > 4999) {
		code = statusNormalClosure
	}
	s.shut(errClosedHere)
	s.ws.Call("close", code, reason)
	return nil
}

// closeNow closes the socket; a page cannot drop a WebSocket without the
// closing handshake, so the peer sees a normal close.
func (s *jsSocket) closeNow() error { return s.close(statusNormalClosure, "") }

// CloseReason is the reason the peer gave in the WebSocket close frame that
// ended a connection, if err (from ReadFrame or WriteFrame) is that close;
// otherwise "".
func CloseReason(err error) string {
	var ce CloseError
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return ""
}
