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
// connection starts again from the oldest unacknowledged item.
type pusher struct {
	c    *conn
	addr store.Address
	wake chan struct{} // capacity 1: a pending wake-up

	mu       sync.Mutex
	last     uint64              // highest seq pushed on this connection
	inflight map[uint64]struct{} // pushed, not yet acked
}

// startPusher starts pushing after the first Hello; a later Hello changes
// nothing.
func (c *conn) startPusher(a store.Address) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pusher != nil {
		return
	}
	c.pusher = &pusher{c: c, addr: a, wake: make(chan struct{}, 1), inflight: map[uint64]struct{}{}}
	go c.pusher.run()
}

func (p *pusher) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *pusher) run() {
	defer func() {
		if v := recover(); v != nil {
			p.c.logger().Error("panic pushing queue", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			p.c.shutdown("internal error", nil)
		}
	}()
	for {
		if !p.fill() {
			return
		}
		select {
		case <-p.wake:
		case <-p.c.ctx.Done():
			return
		}
	}
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
	}
}

// acked forgets acknowledged seqs, making room in the window.
func (p *pusher) acked(seqs []uint64) {
	p.mu.Lock()
	for _, s := range seqs {
		delete(p.inflight, s)
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
