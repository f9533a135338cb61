package relay

import (
	"github.com/linksim/linksim/sim/wire"
	"github.com/linksim/linksim/sim/wire/pb"
)

// Bounds on the requests read from one connection that wait while an
// earlier one of the same connection is handled. Past either, the read loop
// stops reading until the handler catches up: back-pressure on the client
// (and on its socket) instead of memory held by the relay. A device
// pipelines a handful of requests (a send, its receipts, a bundle fetch);
// the byte bound keeps a client that pipelines big frames at about one
// frame's worth, as when the read loop handled each before the next.
const (
	maxWaitingRequests = 32
	maxWaitingBytes    = wire.MaxFrame
)

// waitingRequest is a request read while an earlier one was handled.
type waitingRequest struct {
	f    *pb.Frame
	size int // encoded bytes, counted against maxWaitingBytes
}

// answeredAtOnce reports whether the read loop handles f itself, ahead of
// the connection's earlier requests. A Ping is answered at once, so that a
// device's keep-alive does not wait for its own Send's disk commit; an Ack
// gets no answer and only submits a lazy delete. Both change nothing that a
// later request could depend on.
func answeredAtOnce(f *pb.Frame) bool {
	return f.GetPing() != nil || f.GetAck() != nil
}

// inOrder has f handled after every request read before it, one at a time:
// later requests see earlier requests' effects. The goroutine that handles
// them runs only while there are some, so an idle connection has none. It
// blocks the read loop while the waiting requests are at their bounds.
func (c *conn) inOrder(f *pb.Frame) {
	size := pb.Size(f)
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.handling && len(c.waiting) > 0 &&
		(len(c.waiting) >= maxWaitingRequests || c.waitingBytes+size > maxWaitingBytes) {
		c.room.Wait()
	}
	if !c.handling {
		c.handling = true
		c.handlers.Add(1)
		go c.handleInOrder(f)
		return
	}
	c.waiting = append(c.waiting, waitingRequest{f: f, size: size})
	c.waitingBytes += size
}

// handleInOrder handles f, then the requests that were read meanwhile, and
// returns once none waits. Requests of a connection being closed are dropped
// unanswered, as the read loop drops those it reads from then on.
func (c *conn) handleInOrder(f *pb.Frame) {
	defer c.handlers.Done()
	for ; f != nil; f = c.nextWaiting() {
		if !c.isClosing() {
			c.handleSurviving(f)
		}
	}
}

// handleSurviving handles f; a panic ends only this connection.
func (c *conn) handleSurviving(f *pb.Frame) {
	defer c.survive()
	c.handle(f)
}

// nextWaiting takes the oldest waiting request, or, with none, marks the
// handling over and returns nil.
func (c *conn) nextWaiting() *pb.Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.waiting) == 0 {
		c.handling, c.waiting = false, nil // the drained slice's array is freed
		return nil
	}
	w := c.waiting[0]
	c.waiting[0] = waitingRequest{}
	c.waiting = c.waiting[1:]
	c.waitingBytes -= w.size
	c.room.Signal()
	return w.f
}
