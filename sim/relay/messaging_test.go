package relay

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

func TestSendStaleList(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{})
	alice := phone(t, s, "alice", "+15550100")
	bob := phone(t, s, "bob", "+15550200")
	old := alice.lists("+15550200", "+15550100")
	link(t, s, bob, "bob-web")

	// Addressed against bob's old list (phone only), with its old hash.
	send := &pb.Send{MessageId: "m1", ListHashes: map[string]string{
		"+15550200": old["+15550200"].GetHash(), "+15550100": old["+15550100"].GetHash(),
	}, Envelopes: []*pb.Envelope{{To: &pb.Address{User: "+15550200"}, Type: pb.CipherType_PREKEY_MESSAGE, Ciphertext: []byte("x")}}}
	e := alice.fails(frame(send), pb.ErrorCode_STALE_DEVICE_LIST)
	fresh := map[string][]uint32{}
	for _, l := range e.GetDeviceLists().GetLists() {
		fresh[l.GetUser()] = l.GetDevices()
		if l.GetHash() != listHash(l.GetUser(), l.GetDevices()) {
			t.Fatalf("stale answer has a wrong hash: %v", l)
		}
	}
	if !slices.Equal(fresh["+15550200"], []uint32{0, 1}) || !slices.Equal(fresh["+15550100"], []uint32{0}) {
		t.Fatalf("fresh lists %v", fresh)
	}
	// The right devices but a stale hash is stale too.
	send.Envelopes = append(send.Envelopes, &pb.Envelope{To: &pb.Address{User: "+15550200", Device: 1}, Type: pb.CipherType_PREKEY_MESSAGE, Ciphertext: []byte("x")})
	alice.fails(frame(send), pb.ErrorCode_STALE_DEVICE_LIST)
	// Nothing was enqueued by the failed sends.
	if w := bob.twinHello(s); w.GetQueued() != 0 {
		t.Fatalf("bob has %d queued after stale sends", w.GetQueued())
	}
	alice.sendText("+15550200", "m1")
	// Idempotence comes before the lists: m1 again, against the stale
	// lists, is acked as the duplicate it is.
	alice.ok(frame(send), "send_ack")
	alice.fails(frame(&pb.Send{MessageId: "m2", Envelopes: []*pb.Envelope{{To: &pb.Address{User: "+15559999"}, Type: 1, Ciphertext: []byte("x")}}}), pb.ErrorCode_UNKNOWN_USER)
	alice.fails(frame(&pb.GetDevices{Users: []string{"+15559999"}}), pb.ErrorCode_UNKNOWN_USER)
	alice.fails(frame(&pb.FetchBundles{Addresses: []*pb.Address{{User: "+15559999"}}}), pb.ErrorCode_UNKNOWN_DEVICE)
	alice.fails(frame(&pb.FetchBundles{Addresses: []*pb.Address{{User: "+15550200", Device: 7}}}), pb.ErrorCode_UNKNOWN_DEVICE)
	direct := &pb.Send{MessageId: "d", Direct: true, Envelopes: []*pb.Envelope{{To: &pb.Address{User: "+15550200", Device: 9}, Type: 2, Ciphertext: []byte("x")}}}
	alice.fails(frame(direct), pb.ErrorCode_UNKNOWN_DEVICE)
	direct.Envelopes[0].To.Device = 1
	alice.ok(frame(direct), "send_ack")
}

// twinHello connects the device again and says Hello (the older
// connection is replaced).
func (c *client) twinHello(s *Server) *pb.Welcome {
	c.t.Helper()
	n := c.twin()
	n.connect(s)
	return n.hello()
}

func TestDeliveryAndRedelivery(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{})
	alice := phone(t, s, "alice", "+15550100")
	bob := phone(t, s, "bob", "+15550200")
	bob.hangUp()
	var acks []*pb.SendAck
	for i := range 3 {
		acks = append(acks, alice.sendText("+15550200", fmt.Sprint("m", i)))
	}
	// A resend after a lost ack is acked again, with the same time, and
	// enqueues nothing.
	if again := alice.sendText("+15550200", "m1"); again.GetServerUnixMs() != acks[1].GetServerUnixMs() {
		t.Fatalf("repeated send acked %v, first %v", again, acks[1])
	}

	bob = bob.twin()
	bob.connect(s)
	if w := bob.hello(); w.GetQueued() != 3 {
		t.Fatalf("welcome %v, want 3 queued", w)
	}
	for i := range 3 {
		d := bob.delivery()
		if d.GetSeq() != uint64(i+1) || d.GetMessage().GetMessageId() != fmt.Sprint("m", i) ||
			d.GetFrom().GetUser() != "+15550100" || !bytes.Equal(d.GetMessage().GetCiphertext(), []byte(fmt.Sprint("m", i))) {
			t.Fatalf("delivery %d: %v", i, d)
		}
	}
	bob.ack(1)
	bob.ok(frame(&pb.Ping{}), "pong") // the ack was read before this
	bob.hangUp()

	bob = bob.twin()
	bob.connect(s)
	if w := bob.hello(); w.GetQueued() != 2 {
		t.Fatalf("welcome after acking 1 of 3: %v, want 2 queued", w)
	}
	for _, want := range []uint64{2, 3} {
		if d := bob.delivery(); d.GetSeq() != want {
			t.Fatalf("redelivery: seq %d, want %d", d.GetSeq(), want)
		}
	}
	bob.ack(2, 3)
	// Live delivery to a connected device.
	alice.sendText("+15550200", "live")
	if d := bob.delivery(); d.GetSeq() != 4 || d.GetMessage().GetMessageId() != "live" {
		t.Fatalf("live delivery %v", d)
	}
	bob.ack(4)
	bob.ok(frame(&pb.Ping{}), "pong")
	if w := bob.twinHello(s); w.GetQueued() != 0 {
		t.Fatalf("%d queued after acking everything", w.GetQueued())
	}
}

// TestWindow: at most 256 deliveries are unacknowledged at a time.
func TestWindow(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{NoSync: true})
	alice := phone(t, s, "alice", "+15550100")
	bob := phone(t, s, "bob", "+15550200")
	ls := alice.lists("+15550200", "+15550100")
	hashes := map[string]string{"+15550200": ls["+15550200"].GetHash(), "+15550100": ls["+15550100"].GetHash()}
	var ids []uint64
	for i := range window + 10 {
		ids = append(ids, alice.send(frame(&pb.Send{MessageId: fmt.Sprint(i), ListHashes: hashes, Envelopes: []*pb.Envelope{{To: &pb.Address{User: "+15550200"}, Type: 2, Ciphertext: []byte("x")}}})))
	}
	for i, id := range ids {
		if got := alice.wait(id); bodyName(got) != "send_ack" {
			t.Fatalf("send %d answered %v", i, got)
		}
	}
	var last uint64
	for range window {
		last = bob.delivery().GetSeq()
	}
	bob.ok(frame(&pb.Ping{}), "pong")
	bob.noPush("delivery")
	bob.ack(last)
	if d := bob.delivery(); d.GetSeq() != window+1 {
		t.Fatalf("after one ack got seq %d, want %d", d.GetSeq(), window+1)
	}
}

func TestReceipts(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{})
	alice := phone(t, s, "alice", "+15550100")
	aliceWeb := link(t, s, alice, "alice-web")
	bob := phone(t, s, "bob", "+15550200")
	bob.sendText("+15550100", "hi")
	for _, c := range []*client{alice, aliceWeb} {
		d := c.delivery()
		c.ack(d.GetSeq())
	}
	alice.ok(frame(&pb.SendReceipt{Type: pb.ReceiptType_DELIVERED, ToUser: "+15550200", MessageIds: []string{"hi"}}), "ok")
	d := bob.delivery()
	if r := d.GetReceipt(); r.GetType() != pb.ReceiptType_DELIVERED || !slices.Equal(r.GetMessageIds(), []string{"hi"}) ||
		d.GetFrom().GetUser() != "+15550100" || d.GetFrom().GetDevice() != 0 {
		t.Fatalf("receipt delivery %v", d)
	}
	// READ goes to every device of to_user.
	bobWeb := link(t, s, bob, "bob-web")
	aliceWeb.ok(frame(&pb.SendReceipt{Type: pb.ReceiptType_READ, ToUser: "+15550200", MessageIds: []string{"hi"}}), "ok")
	for _, c := range []*client{bob, bobWeb} {
		if d := c.delivery(); d.GetReceipt().GetType() != pb.ReceiptType_READ || d.GetFrom().GetDevice() != 1 {
			t.Fatalf("%s: READ receipt %v", c.name, d)
		}
	}
	// RETRY goes to one device.
	aliceWeb.ok(frame(&pb.SendReceipt{Type: pb.ReceiptType_RETRY, ToUser: "+15550200", ToDevice: 1, MessageIds: []string{"hi"}, RegistrationId: 77}), "ok")
	if d := bobWeb.delivery(); d.GetReceipt().GetType() != pb.ReceiptType_RETRY || d.GetReceipt().GetRegistrationId() != 77 {
		t.Fatalf("RETRY receipt %v", d)
	}
	bob.ok(frame(&pb.Ping{}), "pong")
	bob.noPush("delivery")
	aliceWeb.fails(frame(&pb.SendReceipt{Type: pb.ReceiptType_RETRY, ToUser: "+15550200", ToDevice: 5, MessageIds: []string{"hi"}}), pb.ErrorCode_UNKNOWN_DEVICE)
	aliceWeb.fails(frame(&pb.SendReceipt{Type: pb.ReceiptType_READ, ToUser: "+15559999", MessageIds: []string{"hi"}}), pb.ErrorCode_UNKNOWN_USER)
}

// removingStore removes device gone just before the first receipt is
// enqueued: a removal committing between the relay's read of the
// receiver's devices and its write.
type removingStore struct {
	store.Store
	gone store.Address
	once sync.Once
}

func (s *removingStore) Enqueue(b store.Batch) (store.Result, error) {
	if len(b.Items) > 0 && b.Items[0].Delivery.GetReceipt() != nil {
		s.once.Do(func() { s.Store.RemoveDevices(s.gone.User, []uint32{s.gone.Device}) })
	}
	return s.Store.Enqueue(b)
}

// A receipt to a user one of whose devices is removed meanwhile still goes
// to the devices left; it is not refused, which made the sender's device
// drop its link (its receipts are part of consuming its queue).
func TestReceiptToAUserLosingADeviceMeanwhile(t *testing.T) {
	t.Parallel()
	s := serveWrapped(t, Config{NoSync: true}, func(inner store.Store) store.Store {
		return &removingStore{Store: inner, gone: store.Address{User: "+15550200", Device: 1}}
	}, func() {})
	alice := phone(t, s, "alice", "+15550100")
	bob := phone(t, s, "bob", "+15550200")
	link(t, s, bob, "bob-web")
	bob.sendText("+15550100", "hi")
	alice.ack(alice.delivery().GetSeq())
	alice.ok(frame(&pb.SendReceipt{Type: pb.ReceiptType_DELIVERED, ToUser: "+15550200", MessageIds: []string{"hi"}}), "ok")
	if r := bob.delivery().GetReceipt(); r.GetType() != pb.ReceiptType_DELIVERED {
		t.Fatalf("bob's phone got %v, want the DELIVERED receipt", r)
	}
}

func TestPreKeys(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{})
	alice := phone(t, s, "alice", "+15550100") // 20 prekeys
	bob := phone(t, s, "bob", "+15550200")
	fetch := &pb.FetchBundles{Addresses: []*pb.Address{{User: "+15550100"}}}
	for range 10 {
		b := bob.ok(frame(fetch), "bundles").GetBundles().GetBundles()[0]
		if b.GetPrekey() == nil || !bytes.Equal(b.GetIdentityKey(), alice.keys.IdentityKey()) || b.GetSignedPrekey() == nil {
			t.Fatalf("bundle %v", b)
		}
	}
	alice.noPush("prekeys_low")
	bob.ok(frame(fetch), "bundles")
	if low := alice.push("prekeys_low").GetPrekeysLow(); low.GetLeft() != 9 {
		t.Fatalf("PreKeysLow %v, want 9 left", low)
	}
	more, _ := alice.keys.NewPreKeys(50)
	alice.ok(frame(&pb.UploadPreKeys{Prekeys: more}), "ok")
	alice.fails(frame(&pb.UploadPreKeys{Prekeys: []*pb.PreKey{{Id: 1, PublicKey: []byte{1}}}}), pb.ErrorCode_BAD_REQUEST)
	if w := alice.twinHello(s); w.GetPrekeysLeft() != 59 {
		t.Fatalf("welcome says %d prekeys left, want 59", w.GetPrekeysLeft())
	}
}

func TestRestartKeepsQueuesAndKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Serve(Config{DataDir: dir}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	key := s.Key()
	alice := phone(t, s, "alice", "+15550100")
	bob := phone(t, s, "bob", "+15550200")
	alice.sendText("+15550200", "one")
	first := alice.sendText("+15550200", "two")
	bob.ack(bob.delivery().GetSeq())
	bob.ok(frame(&pb.Ping{}), "pong")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	bob.closedWith("relay closing")

	s = startRelay(t, Config{DataDir: dir})
	if !bytes.Equal(s.Key(), key) {
		t.Fatal("the relay key changed across a restart")
	}
	bob = bob.twin()
	bob.connect(s) // pins the old key
	if w := bob.hello(); w.GetQueued() != 1 {
		t.Fatalf("welcome after restart %v, want 1 queued", w)
	}
	if d := bob.delivery(); d.GetSeq() != 2 || d.GetMessage().GetMessageId() != "two" {
		t.Fatalf("after restart: %v", d)
	}
	alice = alice.twin()
	alice.connect(s)
	if again := alice.sendText("+15550200", "two"); again.GetServerUnixMs() != first.GetServerUnixMs() {
		t.Fatalf("repeat after restart acked at %d, want the first ack's time %d", again.GetServerUnixMs(), first.GetServerUnixMs())
	}
	alice.sendText("+15550200", "three")
	if d := bob.delivery(); d.GetSeq() != 3 {
		t.Fatalf("seq after restart %d, want 3", d.GetSeq())
	}
}
