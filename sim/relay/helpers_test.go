package relay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/wire"
	"github.com/linksim/linksim/sim/wire/pb"
)

// waitFor bounds every wait in these tests; nothing sleeps to synchronize.
const waitFor = 10 * time.Second

// startRelay serves a relay for one test; with -v its logs go to stderr.
func startRelay(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Logger == nil && testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	if os.Getenv("LINKSIM_TEST_NATS") != "" && cfg.DataDir == "" && len(cfg.NATS) == 0 {
		cfg.NATS = []string{startNATS(t).URL()}
	}
	s, err := Serve(cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// relayAddr is where a test reaches a relay: a Server in this process, or
// a relay in a child process (flood_test.go).
type relayAddr interface {
	URL() string
	WSURL() string
	Key() []byte
}

// client is a raw protocol client: a Noise connection, the device's Signal
// keys, and a reader goroutine sorting frames into answers and pushes.
type client struct {
	t      testing.TB
	name   string
	noise  wire.KeyPair
	keys   *e2e.Store
	user   string
	device uint32
	nextK  uint32 // a phone's next key index

	wc      *wire.Conn
	ids     atomic.Uint64
	answers chan *pb.Frame
	pushes  chan *pb.Frame
	ended   chan struct{}
	errp    *error // why the connection ended; read after ended is closed
	stash   map[uint64]*pb.Frame
	pending []*pb.Frame
	mirror  bool // pairs as a mirror companion (protocol §19)
}

// newClient makes a device's keys without connecting.
func newClient(t testing.TB, name string) *client {
	t.Helper()
	nk, err := wire.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := e2e.Open(kv.NewMem())
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, name: name, noise: nk, keys: keys, nextK: 1}
}

// twin is another client for the same device (same keys), to connect a
// second time.
func (c *client) twin() *client {
	return &client{t: c.t, name: c.name + "'", noise: c.noise, keys: c.keys, user: c.user, device: c.device, nextK: c.nextK}
}

// dial connects a new device.
func dial(t testing.TB, s relayAddr, name string) *client {
	c := newClient(t, name)
	c.connect(s)
	return c
}

// connect (re)connects the device with its Noise key.
func (c *client) connect(s relayAddr) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	wc, err := wire.Dial(ctx, s.WSURL(), c.noise, s.Key())
	if err != nil {
		c.t.Fatalf("%s: %v", c.name, err)
	}
	c.wc = wc
	c.answers, c.pushes = make(chan *pb.Frame, 10000), make(chan *pb.Frame, 10000)
	c.ended, c.errp = make(chan struct{}), new(error)
	c.stash, c.pending = map[uint64]*pb.Frame{}, nil
	go read(wc, c.answers, c.pushes, c.ended, c.errp)
	c.t.Cleanup(func() { wc.CloseNow() })
}

func read(wc *wire.Conn, answers, pushes chan *pb.Frame, ended chan struct{}, errp *error) {
	for {
		f, err := wc.ReadFrame(context.Background())
		if err != nil {
			*errp = err
			close(ended)
			return
		}
		if f.GetId() != 0 {
			answers <- f
		} else {
			pushes <- f
		}
	}
}

// send sends a request with a fresh id (an Ack with id 0).
func (c *client) send(f *pb.Frame) uint64 {
	c.t.Helper()
	if f.GetAck() == nil {
		f.Id = c.ids.Add(1)
	}
	c.write(f)
	return f.Id
}

// write sends f as it is.
func (c *client) write(f *pb.Frame) {
	c.t.Helper()
	if err := c.wc.WriteFrame(context.Background(), f); err != nil {
		c.t.Fatalf("%s: write %s: %v", c.name, bodyName(f), err)
	}
}

// wait returns the answer to request id.
func (c *client) wait(id uint64) *pb.Frame {
	c.t.Helper()
	if f, ok := c.stash[id]; ok {
		delete(c.stash, id)
		return f
	}
	timeout := time.After(waitFor)
	for {
		select {
		case f := <-c.answers:
			if f.GetId() == id {
				return f
			}
			c.stash[f.GetId()] = f
		case <-c.ended:
			select {
			case f := <-c.answers:
				if f.GetId() == id {
					return f
				}
				c.stash[f.GetId()] = f
				continue
			default:
			}
			c.t.Fatalf("%s: connection ended awaiting the answer to request %d: %v", c.name, id, *c.errp)
		case <-timeout:
			c.t.Fatalf("%s: no answer to request %d within %v", c.name, id, waitFor)
		}
	}
}

func (c *client) do(f *pb.Frame) *pb.Frame {
	c.t.Helper()
	return c.wait(c.send(f))
}

// fails sends f and checks that it fails with code.
func (c *client) fails(f *pb.Frame, code pb.ErrorCode) *pb.Error {
	c.t.Helper()
	name := bodyName(f)
	got := c.do(f)
	if got.GetError().GetCode() != code {
		c.t.Fatalf("%s: %s answered %v, want error %v", c.name, name, got, code)
	}
	return got.GetError()
}

// ok sends f and checks that the answer has body want (e.g. "ok").
func (c *client) ok(f *pb.Frame, want string) *pb.Frame {
	c.t.Helper()
	name := bodyName(f)
	got := c.do(f)
	if bodyName(got) != want {
		c.t.Fatalf("%s: %s answered %v, want %s", c.name, name, got, want)
	}
	return got
}

// push returns the next push of body type want; other pushes are kept for
// later calls.
func (c *client) push(want string) *pb.Frame {
	c.t.Helper()
	for i, f := range c.pending {
		if bodyName(f) == want {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return f
		}
	}
	timeout := time.After(waitFor)
	for {
		select {
		case f := <-c.pushes:
			if bodyName(f) == want {
				return f
			}
			c.pending = append(c.pending, f)
		case <-c.ended:
			// Frames read before the end are still in the channel.
			select {
			case f := <-c.pushes:
				if bodyName(f) == want {
					return f
				}
				c.pending = append(c.pending, f)
				continue
			default:
			}
			c.t.Fatalf("%s: connection ended awaiting a %s push: %v", c.name, want, *c.errp)
		case <-timeout:
			c.t.Fatalf("%s: no %s push within %v (other pushes: %v)", c.name, want, waitFor, c.pending)
		}
	}
}

// noPush checks that no push of type want is pending right now.
func (c *client) noPush(want string) {
	c.t.Helper()
	for {
		select {
		case f := <-c.pushes:
			c.pending = append(c.pending, f)
			continue
		default:
		}
		break
	}
	for _, f := range c.pending {
		if bodyName(f) == want {
			c.t.Fatalf("%s: unexpected %s push %v", c.name, want, f)
		}
	}
}

// closed waits for the relay to end the connection and returns why.
func (c *client) closed() error {
	c.t.Helper()
	select {
	case <-c.ended:
		return *c.errp
	case <-time.After(waitFor):
		c.t.Fatalf("%s: connection still open after %v", c.name, waitFor)
		return nil
	}
}

// closedWith checks that the relay closed the connection with reason.
func (c *client) closedWith(reason string) {
	c.t.Helper()
	err := c.closed()
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Reason != reason {
		c.t.Fatalf("%s: connection ended with %v, want close reason %q", c.name, err, reason)
	}
}

func (c *client) hangUp() { c.wc.CloseNow() }

// register creates the account user with this device as its phone, and
// says Hello.
func (c *client) register(user string) *pb.Welcome {
	c.t.Helper()
	keys, err := c.keys.Keys(20)
	if err != nil {
		c.t.Fatal(err)
	}
	c.ok(frame(&pb.Register{User: user, PushName: c.name, Keys: keys}), "registered")
	c.user, c.device = user, 0
	return c.hello()
}

func (c *client) hello() *pb.Welcome {
	c.t.Helper()
	return c.ok(frame(&pb.Hello{}), "welcome").GetWelcome()
}

func phone(t testing.TB, s relayAddr, name, user string) *client {
	c := dial(t, s, name)
	c.register(user)
	return c
}

// lists fetches the current device lists of users.
func (c *client) lists(users ...string) map[string]*pb.DeviceList {
	c.t.Helper()
	out := map[string]*pb.DeviceList{}
	for _, l := range c.ok(frame(&pb.GetDevices{Users: users}), "device_lists").GetDeviceLists().GetLists() {
		out[l.GetUser()] = l
	}
	return out
}

// sendText sends one message to every device of to and every other device
// of the sender, against the current lists. The "ciphertext" is the text:
// the relay cannot tell.
func (c *client) sendText(to, id string) *pb.SendAck {
	c.t.Helper()
	return c.ok(c.textSend(to, id), "send_ack").GetSendAck()
}

// textSend is sendText's request, not sent.
func (c *client) textSend(to, id string) *pb.Frame {
	c.t.Helper()
	ls := c.lists(to, c.user)
	s := &pb.Send{MessageId: id, ListHashes: map[string]string{}}
	for u, l := range ls {
		s.ListHashes[u] = l.GetHash()
		for _, d := range l.GetDevices() {
			if u == c.user && d == c.device {
				continue
			}
			s.Envelopes = append(s.Envelopes, &pb.Envelope{To: &pb.Address{User: u, Device: d}, Type: pb.CipherType_SIGNAL_MESSAGE, Ciphertext: []byte(id)})
		}
	}
	return frame(s)
}

// delivery waits for the next Delivery.
func (c *client) delivery() *pb.Delivery {
	c.t.Helper()
	return c.push("delivery").GetDelivery()
}

func (c *client) ack(seqs ...uint64) {
	c.t.Helper()
	c.send(frame(&pb.Ack{Seqs: seqs}))
}

// startPairing connects a new companion and starts pairing.
func startPairing(t testing.TB, s relayAddr, name string) (*client, *pb.PairRef) {
	c := dial(t, s, name)
	c.ok(frame(&pb.PairStart{}), "ok")
	return c, c.push("pair_ref").GetPairRef()
}

// scan sends the phone's PairScan for companion comp showing ref, with the
// QR code's adv secret, as device k. It returns the request id.
func (c *client) scan(comp *client, ref string, adv []byte, k uint32) uint64 {
	c.t.Helper()
	return c.scanWithHistory(comp, ref, adv, k, nil)
}

// scanWithHistory is scan with history as the scan's sealed history.
func (c *client) scanWithHistory(comp *client, ref string, adv []byte, k uint32, history []byte) uint64 {
	c.t.Helper()
	id := &pb.DeviceIdentity{User: c.user, Device: k, TimestampUnix: time.Now().Unix(), KeyIndex: k}
	h, err := e2e.SignDeviceIdentity(c.keys, id, comp.keys.IdentityKey(), adv)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.send(frame(&pb.PairScan{Ref: ref, CompanionNoiseKey: comp.noise.Public, CompanionIdentityKey: comp.keys.IdentityKey(), Identity: h, History: history}))
}

// finish is the companion's side of an offer: check, counter-sign, finish.
func (c *client) finish(adv []byte) *pb.Linked {
	c.t.Helper()
	l := c.ok(c.finishFrame(adv), "linked").GetLinked()
	c.user, c.device = l.GetUser(), l.GetDevice()
	return l
}

// finishFrame waits for the offer and returns the PairFinish for it.
func (c *client) finishFrame(adv []byte) *pb.Frame {
	c.t.Helper()
	return c.finishOffer(c.push("pair_offer").GetPairOffer(), adv)
}

// finishOffer returns the PairFinish for offer o.
func (c *client) finishOffer(o *pb.PairOffer, adv []byte) *pb.Frame {
	c.t.Helper()
	signed, _, err := e2e.OpenDeviceIdentity(o.GetIdentity(), adv, c.keys.IdentityKey(), o.GetAccountIdentityKey())
	if err != nil {
		c.t.Fatalf("%s: offer: %v", c.name, err)
	}
	if err := e2e.CounterSign(c.keys, signed); err != nil {
		c.t.Fatal(err)
	}
	keys, err := c.keys.Keys(20)
	if err != nil {
		c.t.Fatal(err)
	}
	return frame(&pb.PairFinish{Ref: o.GetRef(), Identity: signed, Keys: keys, Platform: "test", Mirror: c.mirror})
}

func advSecret() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// link pairs a new companion with phone p end to end and says Hello.
func link(t testing.TB, s relayAddr, p *client, name string) *client {
	return linkAs(t, s, p, name, false)
}

// linkAs is link, as a mirror companion if mirror is set.
func linkAs(t testing.TB, s relayAddr, p *client, name string, mirror bool) *client {
	comp, ref := startPairing(t, s, name)
	comp.mirror = mirror
	adv := advSecret()
	k := p.nextK
	id := p.scan(comp, ref.GetRef(), adv, k)
	comp.finish(adv)
	if l := p.wait(id).GetLinked(); l.GetDevice() != k {
		t.Fatalf("%s: scan answered %v, want Linked device %d", p.name, l, k)
	}
	p.nextK++
	comp.hello()
	return comp
}

// frame wraps a message in a Frame.
func frame(m any) *pb.Frame {
	f := &pb.Frame{}
	switch m := m.(type) {
	case *pb.Register:
		f.Body = &pb.Frame_Register{Register: m}
	case *pb.Hello:
		f.Body = &pb.Frame_Hello{Hello: m}
	case *pb.Ping:
		f.Body = &pb.Frame_Ping{Ping: m}
	case *pb.UploadPreKeys:
		f.Body = &pb.Frame_UploadPrekeys{UploadPrekeys: m}
	case *pb.GetDevices:
		f.Body = &pb.Frame_GetDevices{GetDevices: m}
	case *pb.FetchBundles:
		f.Body = &pb.Frame_FetchBundles{FetchBundles: m}
	case *pb.PairStart:
		f.Body = &pb.Frame_PairStart{PairStart: m}
	case *pb.PairScan:
		f.Body = &pb.Frame_PairScan{PairScan: m}
	case *pb.PairFinish:
		f.Body = &pb.Frame_PairFinish{PairFinish: m}
	case *pb.PairReject:
		f.Body = &pb.Frame_PairReject{PairReject: m}
	case *pb.Send:
		f.Body = &pb.Frame_Send{Send: m}
	case *pb.SendReceipt:
		f.Body = &pb.Frame_SendReceipt{SendReceipt: m}
	case *pb.SetProfile:
		f.Body = &pb.Frame_SetProfile{SetProfile: m}
	case *pb.GetProfile:
		f.Body = &pb.Frame_GetProfile{GetProfile: m}
	case *pb.RemoveDevices:
		f.Body = &pb.Frame_RemoveDevices{RemoveDevices: m}
	case *pb.Ack:
		f.Body = &pb.Frame_Ack{Ack: m}
	case *pb.Ok:
		f.Body = &pb.Frame_Ok{Ok: m}
	default:
		panic(fmt.Sprintf("frame: %T", m))
	}
	return f
}
