package harness

import (
	"io"
	"net"
	"sync"
	"time"
)

// forwarder is a TCP listener that forwards each connection it accepts to
// the first of its targets that is up and answers, as a load balancer with
// health checks in front of a cluster does: a device's front prefers its
// home relay node and fails over to the next; a relay node's link to a NATS
// server has that one target. Bytes to and from a target whose gate is shut
// are held, not dropped or refused, as in a network partition where TCP
// keeps retransmitting; they flow again when the gate opens.
type forwarder struct {
	l       net.Listener
	targets []*target

	quit chan struct{} // closed by Close: held bytes are dropped

	mu    sync.Mutex
	conns map[net.Conn]*target // both sides of each forwarded connection
	done  bool
	wg    sync.WaitGroup
}

// target is one place a forwarder sends connections to.
type target struct {
	name string
	addr func() string // host:port; may change when the target restarts
	up   func() bool   // whether health checks pass; nil: always
	gate *gate         // shut while the target is partitioned away
}

func newForwarder(listen string, targets ...*target) (*forwarder, error) {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	f := &forwarder{l: l, targets: targets, quit: make(chan struct{}), conns: make(map[net.Conn]*target)}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

// Addr is where the forwarder listens, host:port.
func (f *forwarder) Addr() string { return f.l.Addr().String() }

func (f *forwarder) accept() {
	defer f.wg.Done()
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.forward(c)
		}()
	}
}

// forward connects c to the first target that is up and accepts a
// connection; with none, c is closed, as a balancer with no healthy backend
// does.
func (f *forwarder) forward(c net.Conn) {
	for _, t := range f.targets {
		if t.up != nil && !t.up() {
			continue
		}
		up, err := net.DialTimeout("tcp", t.addr(), time.Second)
		if err != nil {
			continue
		}
		if !f.track(t, c, up) {
			return
		}
		done, stop := make(chan struct{}, 2), make(chan struct{})
		go func() { t.gate.copy(up, c, stop, f.quit); done <- struct{}{} }()
		go func() { t.gate.copy(c, up, stop, f.quit); done <- struct{}{} }()
		<-done // either side ending ends both, even one holding bytes
		close(stop)
		c.Close()
		up.Close()
		<-done
		f.untrack(c, up)
		return
	}
	c.Close()
}

func (f *forwarder) track(t *target, conns ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		f.conns[c] = t
	}
	return true
}

func (f *forwarder) untrack(conns ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range conns {
		delete(f.conns, c)
	}
}

// On names the target the forwarder's connections go to now ("" when it
// has none): where a device is connected.
func (f *forwarder) On() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.conns {
		return t.name
	}
	return ""
}

// Close stops listening and ends every forwarded connection.
func (f *forwarder) Close() error {
	err := f.l.Close()
	f.mu.Lock()
	if !f.done {
		close(f.quit)
	}
	f.done = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
	return err
}

// gate holds the bytes of connections through a partition: shut, nothing
// crosses; open again, what was held flows. A nil gate is always open.
type gate struct {
	mu   sync.Mutex
	open chan struct{} // closed while the gate is open
}

func newGate() *gate {
	g := &gate{open: make(chan struct{})}
	close(g.open)
	return g
}

// shut holds every byte from now on; it reports false if the gate was shut
// already.
func (g *gate) shut() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		g.open = make(chan struct{})
		return true
	default:
		return false
	}
}

// lift lets bytes through again.
func (g *gate) lift() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

func (g *gate) isShut() bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		return false
	default:
		return true
	}
}

// wait blocks until the gate is open (true) or a stop channel is closed
// (false).
func (g *gate) wait(stop, quit <-chan struct{}) bool {
	if g == nil {
		return true
	}
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
		return true
	case <-stop:
		return false
	case <-quit:
		return false
	}
}

// copy moves bytes from src to dst, holding each read until the gate is
// open; it gives up held bytes when stop or quit is closed.
func (g *gate) copy(dst io.Writer, src io.Reader, stop, quit <-chan struct{}) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !g.wait(stop, quit) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
