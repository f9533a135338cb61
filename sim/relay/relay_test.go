package relay

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/linksim/linksim/sim/wire/pb"
)

func TestRegister(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{})
	alice := dial(t, s, "alice")
	w := alice.register("+15550100")
	if w.GetUser() != "+15550100" || w.GetDevice() != 0 || w.GetQueued() != 0 || w.GetPrekeysLeft() != 20 {
		t.Fatalf("welcome %v, want +15550100 device 0, nothing queued, 20 prekeys", w)
	}
	alice.fails(frame(&pb.Register{User: "+15550101"}), pb.ErrorCode_ALREADY_REGISTERED)
	alice.fails(frame(&pb.PairStart{}), pb.ErrorCode_ALREADY_REGISTERED)

	other := dial(t, s, "other")
	keys, _ := other.keys.Keys(1)
	other.fails(frame(&pb.Register{User: "+15550100", Keys: keys}), pb.ErrorCode_ACCOUNT_EXISTS)
	other.fails(frame(&pb.Register{User: "15550100", Keys: keys}), pb.ErrorCode_BAD_REQUEST)
	other.fails(frame(&pb.Register{User: "+15550102"}), pb.ErrorCode_BAD_REQUEST)
	bad, _ := other.keys.Keys(0)
	bad.SignedPrekey.Signature[3] ^= 1
	other.fails(frame(&pb.Register{User: "+15550102", Keys: bad}), pb.ErrorCode_BAD_SIGNATURE)

	name, about := "Alice", "at work"
	alice.ok(frame(&pb.SetProfile{PushName: &name, About: &about}), "ok")
	long := strings.Repeat("é", 140)
	alice.fails(frame(&pb.SetProfile{About: &long}), pb.ErrorCode_BAD_REQUEST)
	other.register("+15550102")
	p := other.ok(frame(&pb.GetProfile{User: "+15550100"}), "profile").GetProfile_()
	if p.GetPushName() != "Alice" || p.GetAbout() != "at work" || p.GetAboutSetUnixMs() == 0 || len(p.GetDevices()) != 1 {
		t.Fatalf("profile %v", p)
	}
	other.fails(frame(&pb.GetProfile{User: "+15559999"}), pb.ErrorCode_UNKNOWN_USER)
}

// TestReconnectReplaces: a device's newer connection replaces the older,
// which is closed with reason "replaced".
func TestReconnectReplaces(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{})
	old := phone(t, s, "alice", "+15550100")
	again := old.twin()
	again.connect(s)
	if w := again.hello(); w.GetUser() != "+15550100" {
		t.Fatalf("welcome on reconnect: %v", w)
	}
	old.closedWith("replaced")
	again.ok(frame(&pb.Ping{}), "pong")
}

func TestAnonymousRequests(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{})
	c := dial(t, s, "anon")
	c.fails(frame(&pb.Hello{}), pb.ErrorCode_UNAUTHENTICATED)
	c.fails(frame(&pb.GetDevices{Users: []string{"+15550100"}}), pb.ErrorCode_UNAUTHENTICATED)
	c.fails(frame(&pb.Send{MessageId: "x"}), pb.ErrorCode_UNAUTHENTICATED)
	c.fails(frame(&pb.PairFinish{Ref: "x"}), pb.ErrorCode_BAD_REQUEST) // not pairing
	// The connection stays open and usable.
	if pong := c.ok(frame(&pb.Ping{}), "pong").GetPong(); pong.GetServerUnixMs() == 0 {
		t.Fatal("pong without a time")
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{})
	c := phone(t, s, "alice", "+15550100")
	// Request id 0: answered with id 0.
	c.write(&pb.Frame{Id: 0, Body: &pb.Frame_Ping{Ping: &pb.Ping{}}})
	if e := c.push("error").GetError(); e.GetCode() != pb.ErrorCode_BAD_REQUEST {
		t.Fatalf("request id 0 answered %v", e)
	}
	// A body that is not a request.
	c.fails(frame(&pb.Ok{}), pb.ErrorCode_BAD_REQUEST)
	c.fails(frame(&pb.Send{MessageId: ""}), pb.ErrorCode_BAD_REQUEST)
	c.fails(frame(&pb.Send{MessageId: strings.Repeat("x", 65)}), pb.ErrorCode_BAD_REQUEST)
	c.fails(frame(&pb.FetchBundles{}), pb.ErrorCode_BAD_REQUEST)
	c.ok(frame(&pb.Ping{}), "pong")
}

// An error that echoes an oversized field is cut so it can still be sent:
// every request gets its one answer (§2).
func TestOversizedFieldInErrorIsCut(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{})
	c := phone(t, s, "alice", "+15550100")
	huge := strings.Repeat("\x01", 600_000) // quoted, 4 bytes each
	e := c.fails(frame(&pb.GetDevices{Users: []string{huge}}), pb.ErrorCode_BAD_REQUEST)
	if n := len(e.GetMessage()); n == 0 || n > maxErrorMessage {
		t.Fatalf("error message of %d bytes, want 1 to %d", n, maxErrorMessage)
	}
	c.ok(frame(&pb.Ping{}), "pong")
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{IdleTimeout: time.Second})
	c := dial(t, s, "quiet")
	start := time.Now()
	c.closed()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("idle connection closed after %v", d)
	}
	// A device that pings stays connected past the timeout.
	p := phone(t, s, "alice", "+15550100")
	for range 15 {
		p.ok(frame(&pb.Ping{}), "pong")
		select {
		case <-p.ended:
			t.Fatalf("pinging connection closed: %v", *p.errp)
		case <-time.After(100 * time.Millisecond): // paces the pings, synchronizes nothing
		}
	}
}

func TestHTTP(t *testing.T) {
	t.Parallel()
	s := startRelay(t, Config{})
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return string(b)
	}
	if got := get("/healthz"); strings.TrimSpace(got) != "ok" {
		t.Fatalf("/healthz: %q", got)
	}
	var info struct {
		Version  int    `json:"version"`
		NoiseKey string `json:"noise_key"`
		WS       string `json:"ws"`
	}
	if err := json.Unmarshal([]byte(get("/relay.json")), &info); err != nil {
		t.Fatal(err)
	}
	key, _ := base64.StdEncoding.DecodeString(info.NoiseKey)
	if info.Version != 1 || info.WS != "/ws" || !bytes.Equal(key, s.Key()) {
		t.Fatalf("/relay.json: %+v", info)
	}
	if !strings.Contains(get("/"), "linksim relay") {
		t.Fatal("/ has no placeholder page")
	}
	phone(t, s, "alice", "+15550100")
	m := get("/metrics")
	for _, want := range []string{"linksim_relay_connections 1", `linksim_relay_frames_total{dir="in",type="register"} 1`, "linksim_relay_queue_depth 0", "linksim_relay_send_commit_seconds_bucket"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestWebHook: Config.Web serves /, given the relay key.
func TestWebHook(t *testing.T) {
	t.Parallel()
	var got []byte
	s := startRelay(t, Config{Web: func(key []byte) http.Handler {
		got = key
		return http.FileServerFS(fstest.MapFS{"index.html": {Data: []byte("the app")}})
	}})
	if !bytes.Equal(got, s.Key()) {
		t.Fatal("Web was not given the relay key")
	}
	resp, err := http.Get(s.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != "the app" {
		t.Fatalf("/ served %q, want the mounted app", b)
	}
}
