package relay

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/wire/pb"
)

var fullFloods = flag.Bool("flood", false, "run BenchmarkFloods, the full-size floods (make flood)")

// childEnv makes this test binary serve a relay instead of running tests:
// floods measure the RSS and open files of a relay alone. Its value is the
// JSON of a childSpec.
const childEnv = "LINKSIM_RELAY_CHILD"

type childSpec struct {
	DataDir     string
	Limits      Limits
	IdleTimeout time.Duration
}

type childInfo struct {
	URL string
	Key []byte
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(serveChild(spec))
	}
	os.Exit(m.Run())
}

// serveChild serves a relay until stdin closes (the parent went away).
func serveChild(spec string) int {
	var cs childSpec
	if err := json.Unmarshal([]byte(spec), &cs); err != nil {
		fmt.Fprintln(os.Stderr, "relay child:", err)
		return 2
	}
	s, err := Serve(Config{DataDir: cs.DataDir, NoSync: true, Limits: cs.Limits, IdleTimeout: cs.IdleTimeout}, "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay child:", err)
		return 1
	}
	enc := json.NewEncoder(os.Stdout)
	enc.Encode(childInfo{URL: s.URL(), Key: s.Key()})
	// Each line read asks for a garbage collection, so that the parent
	// reads the heap of live objects only; the answer says it is done.
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		runtime.GC()
		enc.Encode(true)
	}
	s.Close()
	return 0
}

// childRelay is a relay in a child process.
type childRelay struct {
	cmd   *exec.Cmd
	info  childInfo
	stdin io.Writer
	out   *json.Decoder
}

// startChild starts a relay in a child process with cfg's Limits and
// IdleTimeout; the rest of cfg is the child's.
func startChild(t testing.TB, cfg Config) *childRelay {
	t.Helper()
	spec, _ := json.Marshal(childSpec{DataDir: t.TempDir(), Limits: cfg.Limits, IdleTimeout: cfg.IdleTimeout})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &childRelay{cmd: cmd, stdin: stdin, out: json.NewDecoder(out)}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(waitFor):
			cmd.Process.Kill()
			<-done
		}
	})
	if err := c.out.Decode(&c.info); err != nil {
		t.Fatalf("relay child did not say where it serves: %v", err)
	}
	return c
}

// gc runs a garbage collection in the child relay.
func (c *childRelay) gc(t testing.TB) {
	t.Helper()
	var done bool
	if _, err := io.WriteString(c.stdin, "gc\n"); err != nil {
		t.Fatal(err)
	}
	if err := c.out.Decode(&done); err != nil {
		t.Fatalf("relay child did not collect garbage: %v", err)
	}
}

func (c *childRelay) URL() string   { return c.info.URL }
func (c *childRelay) WSURL() string { return "ws" + strings.TrimPrefix(c.info.URL, "http") + "/ws" }
func (c *childRelay) Key() []byte   { return c.info.Key }

// usage is the child's resident memory now and at its peak, its split into
// anonymous pages (heap, stacks) and file pages (the binary, bbolt's
// mmap), and its open files.
type usage struct {
	RSSMiB, PeakMiB  float64
	AnonMiB, FileMiB float64
	Files            int
}

func (c *childRelay) usage(t testing.TB) usage {
	t.Helper()
	pid := strconv.Itoa(c.cmd.Process.Pid)
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var u usage
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kib, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			u.RSSMiB = kib / 1024
		case "VmHWM:":
			u.PeakMiB = kib / 1024
		case "RssAnon:":
			u.AnonMiB = kib / 1024
		case "RssFile:":
			u.FileMiB = kib / 1024
		}
	}
	fds, err := os.ReadDir("/proc/" + pid + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	u.Files = len(fds)
	return u
}

func (u usage) String() string {
	return fmt.Sprintf("RSS %.1f MiB (peak %.1f; anon %.1f, file %.1f), %d open files", u.RSSMiB, u.PeakMiB, u.AnonMiB, u.FileMiB, u.Files)
}

// floodSizes says how hard each flood of issue 12 pushes.
type floodSizes struct {
	KeepAlives int // idle HTTP keep-alive connections, from 8 source addresses
	Tokens     int // MediaUpload requests from one device
	Queued     int // 60 KB messages from one device to an offline one
	Pairings   int // link-and-remove cycles of one phone
}

// flood runs the floods one after the other against r, the keep-alives
// held open throughout, and logs the relay's usage after each.
func flood(t testing.TB, r *childRelay, n floodSizes) {
	t.Helper()
	floodKeepAlives(t, r, n.KeepAlives)
	t.Logf("after %d keep-alives: %v", n.KeepAlives, r.usage(t))
	floodTokens(t, r, n.Tokens)
	t.Logf("after %d upload token requests: %v", n.Tokens, r.usage(t))
	floodQueue(t, r, n.Queued)
	t.Logf("after %d messages of 60 KB for an offline device: %v", n.Queued, r.usage(t))
	floodPairing(t, r, n.Pairings)
	t.Logf("after %d link-and-remove cycles: %v", n.Pairings, r.usage(t))
}

func floodKeepAlives(t testing.TB, r *childRelay, n int) {
	t.Helper()
	for i := range n {
		nc := tcpFrom(t, r, fmt.Sprintf("127.0.0.%d", 1+i%8))
		getOn(t, nc, bufio.NewReader(nc), "/healthz") // a 503 once at the cap
		nc.SetDeadline(time.Time{})
	}
}

// pipelined sends n requests made by req in windows (the client's reader
// and the relay's send queue stay far from full) and counts the answers by
// error code (ERROR_UNSPECIFIED: not an error).
func pipelined(c *client, n int, req func(i int) *pb.Frame) map[pb.ErrorCode]int {
	c.t.Helper()
	got := map[pb.ErrorCode]int{}
	for start := 0; start < n; start += 500 {
		var ids []uint64
		for i := start; i < min(n, start+500); i++ {
			ids = append(ids, c.send(req(i)))
		}
		for _, id := range ids {
			got[c.wait(id).GetError().GetCode()]++
		}
	}
	return got
}

func floodTokens(t testing.TB, r *childRelay, n int) {
	t.Helper()
	p := phone(t, r, "tokens", "+15559000")
	got := pipelined(p, n, func(i int) *pb.Frame {
		sum := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
		return &pb.Frame{Body: &pb.Frame_MediaUpload{MediaUpload: &pb.MediaUpload{Size: 1000, EncSha256: sum[:]}}}
	})
	if got[pb.ErrorCode_ERROR_UNSPECIFIED]+got[pb.ErrorCode_UPLOAD_TOKENS_QUOTA] != n {
		t.Fatalf("upload token flood answered %v", got)
	}
	p.hangUp()
}

func floodQueue(t testing.TB, r *childRelay, n int) {
	t.Helper()
	alice := phone(t, r, "sender", "+15559001")
	bob := phone(t, r, "offline", "+15559002")
	bob.hangUp()
	lists := alice.lists("+15559001", "+15559002")
	hashes := map[string]string{"+15559001": lists["+15559001"].GetHash(), "+15559002": lists["+15559002"].GetHash()}
	body := make([]byte, 60_000)
	got := pipelined(alice, n, func(i int) *pb.Frame {
		return frame(&pb.Send{MessageId: fmt.Sprintf("flood-%d", i), ListHashes: hashes, Envelopes: []*pb.Envelope{
			{To: &pb.Address{User: "+15559002"}, Type: pb.CipherType_SIGNAL_MESSAGE, Ciphertext: body},
		}})
	})
	if got[pb.ErrorCode_ERROR_UNSPECIFIED]+got[pb.ErrorCode_QUEUE_FULL] != n {
		t.Fatalf("queue flood answered %v", got)
	}
	alice.hangUp()
}

func floodPairing(t testing.TB, r *childRelay, n int) {
	t.Helper()
	p := phone(t, r, "linker", "+15559003")
	for range n {
		web := link(t, r, p, "web")
		p.ok(frame(&pb.RemoveDevices{Devices: []uint32{web.device}}), "ok")
		web.closed()
		web.hangUp()
	}
	p.hangUp()
}

// serveFresh links a new phone and companion and says how long it took.
func serveFresh(t testing.TB, r *childRelay) time.Duration {
	t.Helper()
	start := time.Now()
	p := phone(t, r, "fresh", "+15559100")
	web := link(t, r, p, "fresh-web")
	web.ok(frame(&pb.Ping{}), "pong")
	return time.Since(start)
}

// metric reads one sample of the relay's /metrics, e.g.
// `linksim_relay_media_upload_tokens`.
func metric(t testing.TB, r relayAddr, name string) float64 {
	t.Helper()
	resp, err := http.Get(r.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// The floods of issue 12, small: each leaves the relay's state within its
// limits, its open files bounded by MaxConns, and a fresh phone and
// companion are served at once. `make flood` runs them full size.
func TestFloodsLeaveRelayServing(t *testing.T) {
	lim := Limits{MaxConns: 600, MaxQueuedBytes: 4 << 20, MaxUploadTokens: 32}
	r := startChild(t, Config{Limits: lim})
	before := r.usage(t)
	flood(t, r, floodSizes{KeepAlives: 1500, Tokens: 2000, Queued: 150, Pairings: 60})
	took := serveFresh(t, r)
	after := r.usage(t)
	t.Logf("before: %v; after: %v; fresh phone and companion served in %v", before, after, took)
	// The relay's own files (store, listener, std streams) stay well
	// under 64; every other one is a connection, at most MaxConns.
	if after.Files > lim.MaxConns+64 {
		t.Errorf("relay holds %d open files, want at most %d (MaxConns + 64)", after.Files, lim.MaxConns+64)
	}
	if got := metric(t, r, "linksim_relay_tcp_connections"); got > float64(lim.MaxConns) {
		t.Errorf("%v TCP connections, above MaxConns %d", got, lim.MaxConns)
	}
	if got := metric(t, r, "linksim_relay_media_upload_tokens"); got > float64(lim.MaxUploadTokens) {
		t.Errorf("%v upload tokens kept, above one device's %d", got, lim.MaxUploadTokens)
	}
	if got := metric(t, r, "linksim_relay_queued_bytes"); got > float64(lim.MaxQueuedBytes) {
		t.Errorf("%v bytes queued, above one device's %d", got, lim.MaxQueuedBytes)
	}
	if took > time.Second {
		t.Errorf("a fresh phone and companion took %v after the floods, want under a second", took)
	}
}

// BenchmarkFloods runs each flood of issue 12 at two sizes, each against a
// fresh relay with default limits, and reports the relay's RSS, heap in use
// and open files afterwards, and how long a fresh phone and companion then
// take (docs/performance.md): figures that stay flat as a flood doubles are
// bounded. Run it once, with -flood: `make flood`; `make bench` skips it.
func BenchmarkFloods(b *testing.B) {
	if !*fullFloods {
		b.Skip("several minutes of floods: run them with make flood (-flood)")
	}
	floods := []struct {
		name  string
		run   func(testing.TB, *childRelay, int)
		sizes []int
	}{
		{"keepalives", floodKeepAlives, []int{9_500, 19_000}},
		{"tokens", floodTokens, []int{150_000, 300_000}},
		{"queue", floodQueue, []int{1_500, 3_000}},
		{"pairings", floodPairing, []int{1_000, 2_000}},
	}
	for _, f := range floods {
		for _, n := range f.sizes {
			b.Run(fmt.Sprintf("%s=%d", f.name, n), func(b *testing.B) {
				for range b.N {
					r := startChild(b, Config{})
					f.run(b, r, n)
					took := serveFresh(b, r)
					u := r.usage(b)
					b.ReportMetric(u.RSSMiB, "rss-MiB")
					b.ReportMetric(u.PeakMiB, "peak-rss-MiB")
					b.ReportMetric(metric(b, r, "go_memstats_heap_inuse_bytes")/(1<<20), "heap-MiB")
					b.ReportMetric(float64(u.Files), "open-files")
					b.ReportMetric(float64(took.Milliseconds()), "fresh-ms")
				}
			})
		}
	}
}
