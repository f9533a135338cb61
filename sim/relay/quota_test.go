package relay

import (
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/linksim/linksim/sim/wire/pb"
)

// uploadTokens counts the relay's upload tokens not yet swept.
func uploadTokens(s *Server) int {
	m := s.Relay().media
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tokens)
}

// One device holds a bounded number of unused upload tokens, expired ones
// are swept within a fraction of their TTL (issue 12: hourly, +136 MiB),
// and the blobs it stores per media TTL are capped.
func TestUploadTokenAndMediaQuotas(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{MediaTokenTTL: 300 * time.Millisecond, Limits: Limits{MaxUploadTokens: 3, MaxMediaBlobs: 4}})
	alice := phone(t, s, "alice", "+15550100")
	bob := phone(t, s, "bob", "+15550101")
	var toks []*pb.MediaUploadToken
	for i := range 3 {
		toks = append(toks, alice.uploadToken(blob(100+i)))
	}
	bob.uploadToken(blob(100)) // another device's quota is its own
	alice.fails(&pb.Frame{Body: &pb.Frame_MediaUpload{MediaUpload: &pb.MediaUpload{Size: 10, EncSha256: make([]byte, 32)}}}, pb.ErrorCode_UPLOAD_TOKENS_QUOTA)

	// A token whose blob is stored no longer counts.
	data := blob(101)
	if code, msg := put(t, s, toks[1].Url, bytes.NewReader(data), int64(len(data))); code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", code, msg)
	}
	alice.uploadToken(blob(200))

	// Unused tokens expire and are swept promptly.
	awaitCount(t, "upload tokens", 0, func() int { return uploadTokens(s) })
	data = blob(300)
	if code, msg := put(t, s, alice.uploadToken(data).Url, bytes.NewReader(data), int64(len(data))); code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", code, msg)
	}
	alice.uploadToken(blob(301))
	alice.uploadToken(blob(302))
	// Four blobs per media TTL: two stored, two tokens that may store more.
	alice.fails(&pb.Frame{Body: &pb.Frame_MediaUpload{MediaUpload: &pb.MediaUpload{Size: 10, EncSha256: make([]byte, 32)}}}, pb.ErrorCode_MEDIA_QUOTA)
	if m := scrape(t, s); !bytes.Contains([]byte(m), []byte(`linksim_relay_refusals_total{reason="media_quota"} 1`)) ||
		!bytes.Contains([]byte(m), []byte(`linksim_relay_refusals_total{reason="upload_tokens"} 1`)) {
		t.Errorf("/metrics does not count the refusals:\n%s", m)
	}
}

// Until a connection is a device its frames are small: a bigger one ends it
// (status 1009) before it is decrypted or decoded (issue 12: a 1 MiB frame
// of map entries cost ~97 ms of CPU before login). A device's are not.
func TestPreLoginFrameLimit(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{Limits: Limits{PreLoginMaxFrame: 4096}})
	anon := dial(t, s, "anon")
	anon.write(frame(&pb.Register{User: "+15550100", PushName: strings.Repeat("x", 5000)}))
	if err := anon.closed(); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("anonymous connection sending a 5 KB frame ended with %v, want status 1009", err)
	}
	alice := phone(t, s, "alice", "+15550100")
	alice.fails(frame(&pb.GetDevices{Users: []string{strings.Repeat("1", 50_000)}}), pb.ErrorCode_BAD_REQUEST)
	if m := scrape(t, s); !strings.Contains(m, `linksim_relay_refusals_total{reason="prelogin_frame"} 1`) {
		t.Errorf("/metrics does not count the refusal:\n%s", m)
	}
}

// One device cannot drain another's one-time prekeys: it takes them at a
// limited rate, and the rest of the devices are unaffected.
func TestPreKeyFetchRate(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{Limits: Limits{PreKeyFetchBurst: 5, PreKeyFetchRate: 0.01}})
	alice := phone(t, s, "alice", "+15550100") // 20 prekeys
	mallory := phone(t, s, "mallory", "+15550200")
	carol := phone(t, s, "carol", "+15550300")
	fetch := frame(&pb.FetchBundles{Addresses: []*pb.Address{{User: "+15550100"}}})
	for range 5 {
		mallory.ok(fetch, "bundles")
	}
	for range 10 {
		e := mallory.fails(fetch, pb.ErrorCode_RATE_LIMITED)
		if !strings.Contains(e.GetMessage(), "retry in") {
			t.Fatalf("RATE_LIMITED says %q, want when to retry", e.GetMessage())
		}
	}
	if b := carol.ok(fetch, "bundles").GetBundles().GetBundles()[0]; b.GetPrekey() == nil {
		t.Fatalf("another device's fetch got no one-time prekey: %v", b)
	}
	if w := alice.twinHello(s); w.GetPrekeysLeft() != 14 {
		t.Fatalf("alice has %d one-time prekeys left, want 14 (20 less 6 fetched)", w.GetPrekeysLeft())
	}
}

// One device cannot queue unlimited data for an offline one (issue 12: +177
// MiB in 9 s): past the recipient's byte cap its sends fail with QUEUE_FULL,
// nothing is lost, and room returns as the recipient reads.
func TestQueueFullForOfflineDevice(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{Limits: Limits{MaxQueuedBytes: 8 << 10}})
	alice := phone(t, s, "alice", "+15550100")
	bob := phone(t, s, "bob", "+15550200")
	bob.hangUp()
	hash := alice.lists("+15550200")["+15550200"].GetHash()
	send := func(i int) *pb.Frame {
		return alice.do(frame(&pb.Send{
			MessageId: fmt.Sprintf("m%d", i), ListHashes: map[string]string{"+15550200": hash, "+15550100": alice.lists("+15550100")["+15550100"].GetHash()},
			Envelopes: []*pb.Envelope{{To: &pb.Address{User: "+15550200"}, Type: pb.CipherType_SIGNAL_MESSAGE, Ciphertext: make([]byte, 1000)}},
		}))
	}
	acked := 0
	for ; ; acked++ {
		f := send(acked)
		if e := f.GetError(); e != nil {
			if e.GetCode() != pb.ErrorCode_QUEUE_FULL || !strings.Contains(e.GetMessage(), "+15550200:0") {
				t.Fatalf("send past the cap answered %v, want QUEUE_FULL naming +15550200:0", e)
			}
			break
		}
		if acked > 8 {
			t.Fatal("more than 8 KiB queued for the offline device")
		}
	}
	if acked < 7 {
		t.Fatalf("only %d sends of 1000 bytes fit in 8 KiB", acked)
	}
	back := bob.twin()
	back.connect(s)
	back.hello()
	for i := range acked {
		d := back.delivery()
		if got := d.GetMessage().GetMessageId(); got != fmt.Sprintf("m%d", i) {
			t.Fatalf("delivery %d is %s", i, got)
		}
		back.ack(d.GetSeq())
	}
	// Acks free the room (asynchronously): a send fits again.
	deadline := time.Now().Add(waitFor)
	for send(acked).GetError() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the queue stays full after its deliveries were acked")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if m := scrape(t, s); !strings.Contains(m, `linksim_relay_refusals_total{reason="queue_full"}`) || !strings.Contains(m, "linksim_relay_queued_bytes ") {
		t.Errorf("/metrics lacks the queue refusals or bytes:\n%s", m)
	}
}

// The default pre-login limit fits the largest Register a device may send
// (the most one-time prekeys one request takes), with room to spare.
func TestPreLoginLimitFitsRegister(t *testing.T) {
	c := newClient(t, "big")
	keys, err := c.keys.Keys(maxUploadPreKeys)
	if err != nil {
		t.Fatal(err)
	}
	f := frame(&pb.Register{User: "+155501000000000", PushName: strings.Repeat("n", maxPushName), Keys: keys})
	f.Id = 1 << 62
	n, limit := proto.Size(f), (Limits{}).withDefaults().PreLoginMaxFrame
	t.Logf("largest Register: %d bytes", n)
	if n > limit*2/3 {
		t.Fatalf("a Register with %d prekeys takes %d bytes, too close to the %d-byte pre-login limit", maxUploadPreKeys, n, limit)
	}
}

// A connection that is no device may send only so many frames: the work it
// can make the relay do before anyone is known is bounded.
func TestPreLoginFrameCount(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{Limits: Limits{PreLoginMaxFrames: 5}})
	anon := dial(t, s, "anon")
	for range 5 {
		anon.ok(frame(&pb.Ping{}), "pong")
	}
	anon.send(frame(&pb.Ping{}))
	anon.closedWith("too many requests before login")
	alice := phone(t, s, "alice", "+15550100") // its Register is its one frame before login
	for range 10 {
		alice.ok(frame(&pb.Ping{}), "pong")
	}
	if m := scrape(t, s); !strings.Contains(m, `linksim_relay_refusals_total{reason="prelogin_frames"} 1`) {
		t.Errorf("/metrics does not count the refusal")
	}
}

// Every limit has a flag, and Args gives back the flags that set a Limits.
func TestLimitFlagsRoundTrip(t *testing.T) {
	want := Limits{
		ReadHeaderTimeout: time.Second, HTTPIdleTimeout: 2 * time.Second, RequestTimeout: 3 * time.Second,
		MediaTransferTimeout: time.Minute, MaxConns: 5, MaxConnsPerSource: 6, PreLoginMaxFrame: 7,
		PreLoginMaxFrames: 8, MaxQueuedBytes: 9, MaxUploadTokens: 10, MaxMediaBlobs: 11,
		PreKeyFetchBurst: 12, PreKeyFetchRate: 1.5, DedupWindow: 13, DedupAge: time.Hour,
	}
	if n, fields := len(limitFlags), reflect.TypeFor[Limits]().NumField(); n != fields {
		t.Fatalf("%d limit flags for %d Limits fields", n, fields)
	}
	var got Limits
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	got.AddFlags(fs)
	if err := fs.Parse(want.Args()); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("parsed %+v from %q, want %+v", got, want.Args(), want)
	}
	if args := (Limits{}).Args(); len(args) != 0 {
		t.Fatalf("zero Limits give flags %q", args)
	}
}
