package relay

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

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
