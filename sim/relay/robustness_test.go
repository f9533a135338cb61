package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/flynn/noise"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/linksim/linksim/sim/wire"
	"github.com/linksim/linksim/sim/wire/pb"
)

// rawConn is a Noise client without wire's safety nets, to send what a
// well-behaved client never would.
type rawConn struct {
	ws         *websocket.Conn
	send, recv *noise.CipherState
	budget     time.Duration // per write; waitFor when zero
}

func rawDial(t *testing.T, s *Server) *rawConn {
	t.Helper()
	return rawDialWith(t, s, nil)
}

func rawDialWith(t *testing.T, s *Server, opts *websocket.DialOptions) *rawConn {
	t.Helper()
	kp, _ := wire.GenerateKey()
	return rawDialAs(t, s, opts, kp)
}

// rawDialAs connects with the static key kp: a registered device's, or new.
func rawDialAs(t *testing.T, s *Server, opts *websocket.DialOptions, kp wire.KeyPair) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, s.WSURL(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	ws.SetReadLimit(8 << 20)
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: noise.NewCipherSuite(noise.DH25519, noise.CipherAESGCM, noise.HashSHA256),
		Pattern:     noise.HandshakeXX, Initiator: true, Prologue: []byte(wire.Prologue), StaticKeypair: kp,
	})
	if err != nil {
		t.Fatal(err)
	}
	msg, _, _, _ := hs.WriteMessage(nil, nil)
	if err := ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
		t.Fatal(err)
	}
	_, msg, err = ws.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := hs.ReadMessage(nil, msg); err != nil {
		t.Fatal(err)
	}
	msg, cs1, cs2, _ := hs.WriteMessage(nil, nil)
	if err := ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
		t.Fatal(err)
	}
	return &rawConn{ws: ws, send: cs1, recv: cs2}
}

// writePlain encrypts any plaintext as one frame message, in segments.
func (r *rawConn) writePlain(t *testing.T, plain []byte) {
	t.Helper()
	if err := r.write(plain); err != nil {
		t.Fatal(err)
	}
}

func (r *rawConn) writeFrame(f *pb.Frame) error {
	plain, err := wire.Encode(f)
	if err != nil {
		return err
	}
	return r.write(plain)
}

func (r *rawConn) write(plain []byte) error {
	const seg = noise.MaxMsgLen - 16
	var out []byte
	for first := true; first || len(plain) > 0; first = false {
		n := min(len(plain), seg)
		out, _ = r.send.Encrypt(out, nil, plain[:n])
		plain = plain[n:]
	}
	budget := r.budget
	if budget == 0 {
		budget = waitFor
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	return r.ws.Write(ctx, websocket.MessageBinary, out)
}

func (r *rawConn) readFrame() (*pb.Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, msg, err := r.ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	var plain []byte
	for len(msg) > 0 {
		n := min(len(msg), noise.MaxMsgLen)
		if plain, err = r.recv.Decrypt(plain, nil, msg[:n]); err != nil {
			return nil, err
		}
		msg = msg[n:]
	}
	return wire.Decode(plain)
}

// expectClosed reads until the relay ends the connection; a frame arriving
// first is an error.
func (r *rawConn) expectClosed(t *testing.T) {
	t.Helper()
	if f, err := r.readFrame(); err == nil {
		t.Fatalf("read %v, want the connection closed", f)
	} else if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("connection still open")
	}
}

// stillServes checks that the relay serves a new device normally.
func stillServes(t *testing.T, s *Server) {
	t.Helper()
	c := dial(t, s, "bystander")
	c.ok(frame(&pb.Ping{}), "pong")
}

func TestNonNoiseClients(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{HandshakeTimeout: 500 * time.Millisecond})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		typ  websocket.MessageType
		msg  []byte
	}{
		{"text", websocket.MessageText, []byte("hello")},
		{"garbage handshake", websocket.MessageBinary, bytes.Repeat([]byte{0x42}, 200)},
		{"silent", 0, nil}, // never sends: the handshake times out
	} {
		ws, _, err := websocket.Dial(ctx, s.WSURL(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.msg != nil {
			ws.Write(ctx, tc.typ, tc.msg)
		}
		rctx, cancel := context.WithTimeout(ctx, waitFor)
		for {
			_, _, err = ws.Read(rctx)
			if err != nil {
				break
			}
		}
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: connection still open", tc.name)
		}
		ws.CloseNow()
	}
	stillServes(t, s)
}

func TestGarbageAfterHandshake(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{})
	r := rawDial(t, s)
	junk := make([]byte, 100)
	rand.Read(junk)
	r.ws.Write(context.Background(), websocket.MessageBinary, junk)
	r.expectClosed(t) // no Error frame: the cipher stream is broken
	stillServes(t, s)
}

func TestUndecodableFrame(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{})
	r := rawDial(t, s)
	r.writePlain(t, []byte{0xff, 0xff, 0xff, 0xff})
	f, err := r.readFrame()
	if err != nil || f.GetId() != 0 || f.GetError().GetCode() != pb.ErrorCode_BAD_REQUEST {
		t.Fatalf("undecodable frame answered %v, %v; want BAD_REQUEST with id 0", f, err)
	}
	r.expectClosed(t)
	stillServes(t, s)
}

func TestOversizedFrames(t *testing.T) {
	t.Parallel()
	// Anonymous connections may send frames as large as devices here.
	s := startRelay(t, Config{Limits: Limits{PreLoginMaxFrame: wire.MaxFrame}})
	// Decrypts to one byte more than MaxFrame: answered, then closed.
	r := rawDial(t, s)
	r.writePlain(t, make([]byte, wire.MaxFrame+1))
	f, err := r.readFrame()
	if err != nil || f.GetError().GetCode() != pb.ErrorCode_BAD_REQUEST {
		t.Fatalf("oversized frame answered %v, %v; want BAD_REQUEST", f, err)
	}
	r.expectClosed(t)
	// A WebSocket message far over the limit: closed before decryption.
	r = rawDial(t, s)
	r.ws.Write(context.Background(), websocket.MessageBinary, make([]byte, 3<<20))
	r.expectClosed(t)
	stillServes(t, s)
}

// TestWrongRelayKey: a device that pinned another key refuses the relay.
func TestWrongRelayKey(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{})
	other, _ := wire.GenerateKey()
	kp, _ := wire.GenerateKey()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := wire.Dial(ctx, s.WSURL(), kp, other.Public); !errors.Is(err, wire.ErrRelayKey) {
		t.Fatalf("dial with the wrong pinned key: %v", err)
	}
	stillServes(t, s)
}

// TestSlowReaderClosed: a device that sends requests but never reads its
// answers fills its send queue and is closed; others are not held up.
func TestSlowReaderClosed(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{})
	alice := phone(t, s, "alice", "+15550100")
	users := make([]string, maxUsers)
	for i := range users {
		users[i] = "+15550100"
	}
	// A small receive buffer, so that a few answers fill the socket; the
	// relay's send buffer is the kernel's to size.
	r := rawDialWith(t, s, &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				c.(*net.TCPConn).SetReadBuffer(4096)
			}
			return c, err
		},
	}}})
	keys, _ := newClient(t, "slow").keys.Keys(0)
	r.writeFrame(&pb.Frame{Id: 1, Body: &pb.Frame_Register{Register: &pb.Register{User: "+15550199", Keys: keys}}})
	// Big answers pile up: the socket buffers fill, then the send queue.
	// (Thousands of requests: generous time for a loaded machine.)
	r.budget = 30 * time.Second
	deadline := time.Now().Add(r.budget)
	for id := uint64(2); ; id++ {
		if time.Now().After(deadline) {
			t.Fatalf("still open after %d requests nobody read", id)
		}
		f := frame(&pb.GetDevices{Users: users})
		f.Id = id
		if err := r.writeFrame(f); err != nil {
			t.Logf("relay closed the connection after %d requests", id)
			break
		}
		if id%200 == 0 {
			alice.ok(frame(&pb.Ping{}), "pong") // others are served meanwhile
		}
	}
	if m := scrape(t, s); !strings.Contains(m, "linksim_relay_slow_closes_total 1") {
		t.Fatal("the slow connection was not closed for a full send queue")
	}
	stillServes(t, s)
}

func scrape(t testing.TB, s relayAddr) string {
	t.Helper()
	resp, err := http.Get(s.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestEmptyBodies sends every body type with all fields zero, anonymously
// and as a device: each request is answered (mostly with errors), nothing
// panics, and the connections stay usable.
func TestEmptyBodies(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{})
	anon := dial(t, s, "anon")
	dev := phone(t, s, "alice", "+15550100")
	fields := (&pb.Frame{}).ProtoReflect().Descriptor().Oneofs().ByName("body").Fields()
	for _, c := range []*client{anon, dev} {
		for i := range fields.Len() {
			fd := fields.Get(i)
			name := string(fd.Name())
			switch name {
			case "hello", "pair_start", "register", "remove_devices":
				continue // change the connection's state; tested elsewhere
			}
			f := &pb.Frame{}
			f.ProtoReflect().Set(fd, protoreflect.ValueOfMessage(f.ProtoReflect().NewField(fd).Message()))
			if name == "ack" {
				c.write(f) // no answer
				continue
			}
			got := c.do(f)
			if name == "ping" {
				continue
			}
			if got.GetError() == nil && name != "set_profile" && name != "upload_prekeys" {
				t.Errorf("%s: empty %s answered %v, want an error", c.name, name, got)
			}
		}
		c.ok(frame(&pb.Ping{}), "pong")
	}
	stillServes(t, s)
}
