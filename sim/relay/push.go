package relay

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// maxAckSeqs bounds one Ack; a device never has more than window items
// unacknowledged, so anything beyond is noise.
const maxAckSeqs = 4 * window

// pusher feeds one connected device its queue in seq order, keeping at most
// window deliveries unacknowledged (§8). The queue itself is durable; the
// pusher only remembers what it pushed on this connection, so a new
// connection starts again from the oldest unacknowledged item. Its goroutine
// runs only while it may have something to push: a poke starts it, and it
// ends once the queue is drained or the window full.
type pusher struct {
	c    *conn
	addr store.Address

	mu       sync.Mutex
	running  bool                // a goroutine fills the window
	again    bool                // poked while running: fill once more
	stopped  bool                // pushing is over for good
	last     uint64              // highest seq pushed on this connection
	inflight map[uint64]struct{} // pushed, not yet acked; nil when none
}

// startPusher starts pushing after the first Hello; a later Hello changes
// nothing.
func (c *conn) startPusher(a store.Address) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pusher != nil {
		return
	}
	c.pusher = &pusher{c: c, addr: a}
	c.pusher.poke()
}

// poke makes the pusher look at the queue: it starts the goroutine, or
// has the running one look again.
func (p *pusher) poke() {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.stopped:
	case p.running:
		p.again = true
	default:
		p.running = true
		go p.run()
	}
}

func (p *pusher) run() {
	defer func() {
		if v := recover(); v != nil {
			p.c.logger().Error("panic pushing queue", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			p.c.shutdown("internal error", nil)
			p.stop()
		}
	}()
	for {
		if !p.fill() {
			p.stop()
			return
		}
		p.mu.Lock()
		if !p.again || p.c.ctx.Err() != nil {
			p.running = false // under mu: a poke from now on starts a goroutine
			p.mu.Unlock()
			return
		}
		p.again = false
		p.mu.Unlock()
	}
}

// stop ends pushing on this connection for good.
func (p *pusher) stop() {
	p.mu.Lock()
	p.running, p.stopped = false, true
	p.mu.Unlock()
}

// fill pushes queued items until the window is full or the queue drained.
// It returns false when pushing must stop for good.
func (p *pusher) fill() bool {
	for {
		p.mu.Lock()
		room, after := window-len(p.inflight), p.last
		p.mu.Unlock()
		if room <= 0 {
			return true
		}
		items, err := p.c.r.st.Read(p.addr, after, room)
		if errors.Is(err, store.ErrNotFound) {
			return false // the device was removed
		}
		if err != nil {
			if p.c.ctx.Err() != nil {
				return false // the relay is closing
			}
			p.c.logger().Error("reading queue", "err", err)
			p.c.shutdown("internal error", nil)
			return false
		}
		if len(items) == 0 {
			return true
		}
		p.mu.Lock()
		if p.inflight == nil {
			p.inflight = make(map[uint64]struct{}, len(items))
		}
		for _, d := range items {
			p.inflight[d.Seq] = struct{}{}
			p.last = d.Seq
		}
		p.mu.Unlock()
		if brk := p.c.r.cfg.breakPush; brk != nil {
			items = brk(p.addr, items)
		}
		for _, d := range items {
			if !p.c.send(&pb.Frame{Body: &pb.Frame_Delivery{Delivery: d}}) {
				return false
			}
		}
		p.c.r.m.deliveries.Add(float64(len(items)))
		if len(items) < room {
			return true // drained; an item enqueued since comes with a poke
		}
	}
}

// acked forgets acknowledged seqs, making room in the window.
func (p *pusher) acked(seqs []uint64) {
	p.mu.Lock()
	for _, s := range seqs {
		delete(p.inflight, s)
	}
	if len(p.inflight) == 0 {
		p.inflight = nil // a map keeps its size; an idle device needs none
	}
	p.mu.Unlock()
	p.poke()
}

// onAck deletes acknowledged items from the device's queue (through the
// device's acker) and makes room in the window. Acks get no answer, so a
// bad one is only logged.
func (c *conn) onAck(me store.Address, ack *pb.Ack) {
	seqs := ack.GetSeqs()
	if len(seqs) == 0 {
		return
	}
	if len(seqs) > maxAckSeqs {
		c.logger().Info("ack with too many seqs, ignoring the excess", "seqs", len(seqs))
		seqs = seqs[:maxAckSeqs]
	}
	c.r.acks.submit(me, seqs)
	c.mu.Lock()
	p := c.pusher
	c.mu.Unlock()
	if p != nil {
		p.acked(seqs)
	}
}
