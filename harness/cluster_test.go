package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/linksim/linksim/reports"
)

// echoServer answers each line with its name and the line.
func echoServer(t *testing.T, name string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintf(c, "%s %s\n", name, sc.Text())
				}
			}()
		}
	}()
	return l
}

func ask(c net.Conn, r *bufio.Reader, line string, within time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(within))
	if _, err := fmt.Fprintln(c, line); err != nil {
		return "", err
	}
	s, err := r.ReadString('\n')
	return strings.TrimSpace(s), err
}

func TestFrontFailsOverAndPartitionsHoldBytes(t *testing.T) {
	a, b := echoServer(t, "a"), echoServer(t, "b")
	var aUp atomic.Bool
	aUp.Store(true)
	g := newGate()
	f, err := newForwarder("127.0.0.1:0",
		&target{name: "a", addr: func() string { return a.Addr().String() }, up: aUp.Load, gate: g},
		&target{name: "b", addr: func() string { return b.Addr().String() }})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	c, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if got, err := ask(c, r, "1", 5*time.Second); got != "a 1" {
		t.Fatalf("first connection: got %q (%v), want the home target a", got, err)
	}
	if f.On() != "a" {
		t.Errorf("On() = %q, want a", f.On())
	}

	// Partitioned: bytes are held, not refused, and flow on heal.
	g.shut()
	if got, err := ask(c, r, "2", 300*time.Millisecond); !errors.Is(err, errTimeout(err)) || got != "" {
		t.Fatalf("through a shut gate: got %q (%v), want nothing until the deadline", got, err)
	}
	g.lift()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if s, err := r.ReadString('\n'); strings.TrimSpace(s) != "a 2" {
		t.Fatalf("after the gate lifted: got %q (%v), want the held line answered", s, err)
	}

	// Home down: a new connection goes to the next target.
	aUp.Store(false)
	c2, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got, err := ask(c2, bufio.NewReader(c2), "3", 5*time.Second); got != "b 3" {
		t.Fatalf("with a down: got %q (%v), want b", got, err)
	}

	// Home refusing connections (killed) but not yet seen down: next too.
	aUp.Store(true)
	a.Close()
	c3, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if got, err := ask(c3, bufio.NewReader(c3), "4", 5*time.Second); got != "b 4" {
		t.Fatalf("with a refusing: got %q (%v), want b", got, err)
	}
}

// errTimeout returns err when it is a timeout, so errors.Is matches only
// then.
func errTimeout(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	return io.ErrUnexpectedEOF
}

// TestNATSClusterKeepsStreamsThroughAServerKill runs the cluster
// backend's three NATS servers (linksim nats as processes), puts messages
// in a stream with three replicas, kills one server with SIGKILL, and
// checks JetStream still takes and keeps messages, and that the server
// restarted on its store catches up.
func TestNATSClusterKeepsStreamsThroughAServerKill(t *testing.T) {
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{kind: ClusterProcess, dir: t.TempDir()}
	addrs, _, err := natsProcesses(c, bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, m := range c.nats {
			m.close()
		}
	})
	if err := startMembers(t.Context(), "NATS server", c.nats); err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, a := range addrs {
		urls = append(urls, "nats://"+a)
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	// Right after start a server may not have joined JetStream's meta
	// group yet ("no suitable peers for placement"): ask again for a while.
	cfg := jetstream.StreamConfig{Name: "Q", Subjects: []string{"q.>"}, Replicas: 3}
	s, err := js.CreateStream(ctx, cfg)
	for deadline := time.Now().Add(10 * time.Second); err != nil && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		s, err = js.CreateStream(ctx, cfg)
	}
	if err != nil {
		t.Fatalf("create a stream with 3 replicas: %v", err)
	}
	// publish sends messages from..to-1, each tried again (under its id,
	// so JetStream stores it once) while a new stream leader is elected
	// after the old one died: as any JetStream client must.
	publish := func(from, to int) {
		t.Helper()
		pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		for i := from; i < to; i++ {
			err := Await(pctx, fmt.Sprintf("message %d stored", i), func() error {
				// A short try: a request to a leader that just died gets no
				// answer at all.
				try, cancel := context.WithTimeout(pctx, 2*time.Second)
				defer cancel()
				_, err := js.Publish(try, "q.m", []byte(fmt.Sprint(i)), jetstream.WithMsgID(fmt.Sprint(i)))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0, 10)
	if err := c.nats[0].kill(); err != nil {
		t.Fatal(err)
	}
	publish(10, 20) // two of three servers are a quorum
	info, err := s.Info(ctx)
	if err != nil || info.State.Msgs != 20 {
		t.Fatalf("with a server killed: %v messages (%v), want 20", info, err)
	}
	if err := c.nats[0].start(ctx); err != nil {
		t.Fatalf("restart the killed server on its store: %v", err)
	}
	// The restarted server serves the stream's 20 messages from its own
	// replica once it caught up.
	one, err := nats.Connect(urls[0])
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = Await(wctx, "the restarted server to hold all 20 messages", func() error {
		js1, err := jetstream.New(one)
		if err != nil {
			return err
		}
		st, err := js1.Stream(ctx, "Q")
		if err != nil {
			return err
		}
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		for _, r := range info.Cluster.Replicas {
			if r.Name == "nats-1" && !r.Current {
				return errors.New("nats-1 is not current")
			}
		}
		if info.State.Msgs != 20 {
			return fmt.Errorf("%d messages", info.State.Msgs)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestClusterMovesDevicesOffAKilledNode runs the process variant of the
// cluster backend: a device homed on node 1 moves to node 2 when node 1 is
// killed, and back only when its link drops again; with both nodes killed
// it is on none, so a flow that checks where devices are can fail.
func TestClusterMovesDevicesOffAKilledNode(t *testing.T) {
	env := Start(t, Config{Backend: ClusterProcess, KeepAlive: 300 * time.Millisecond})
	cl := env.Cluster()
	ctx := t.Context()
	p, err := env.NewPhone(ctx, "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	on := func(want string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err := Await(wctx, "alice/phone on "+want, func() error {
			if got := cl.NodeOf(p.Device.Name()); got != want {
				return fmt.Errorf("on %q", got)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	on("node-1")
	restart1, err := cl.KillNode(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	on("node-2")
	if err := restart1(ctx); err != nil {
		t.Fatal(err)
	}
	on("node-2") // nothing moves a live link back
	if _, err := cl.KillNode(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.KillNode(ctx, 2); err != nil {
		t.Fatal(err)
	}
	on("")
	if _, err := cl.KillNode(ctx, 2); err == nil {
		t.Error("killing a node that is down already: no error")
	}
	var faults []string
	for _, e := range env.rec.rec.Events() {
		if e.Kind == reports.KindFaultStart {
			faults = append(faults, e.Name)
		}
	}
	if want := []string{"relay node 1 killed", "relay node 1 killed", "relay node 2 killed"}; !slices.Equal(faults, want) {
		t.Errorf("faults on the timeline: %q, want %q", faults, want)
	}
}
