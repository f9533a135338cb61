package load

import (
	"context"
	"maps"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/sim/device"
)

// A short load of 300 real devices (150 users, a phone and a web client
// each) against an in-process relay: every device links, the actions run at
// the rate asked, and the ledger is clean with real counts.
func TestShortLoadIsScoredClean(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run of 300 devices; not in -short")
	}
	def := Definition{
		Users: 150, Companions: 1, Relay: "embedded",
		Link:     Arrival{Rate: 150, Parallel: 32},
		Messages: Arrival{Rate: 40},
		Mix:      map[string]float64{ActText: 80, ActMedia: 5, ActRead: 5, ActOffline: 5, ActReconnect: 5},
		Duration: Duration(8 * time.Second), OfflineFor: Duration(time.Second),
		Thresholds: []string{"messages>=150", "msg.deliver count>=450"},
	}
	var last Snapshot
	rep, err := Run(context.Background(), def, Options{Progress: func(s Snapshot) { last = s }})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Scenarios {
		if s.Status != reports.Passed {
			t.Errorf("%s: %s: %s", s.Name, s.Status, s.Failure)
		}
	}
	if !rep.Passed() {
		for _, th := range rep.Thresholds {
			if !th.Passed {
				t.Errorf("threshold %s: %s %v", th.Expr, th.Message, th.Examples)
			}
		}
	}
	tot := rep.Ledger.Totals
	if tot.Problems() != 0 || tot.Delivered != tot.Expected || tot.Acked != tot.Messages {
		t.Errorf("ledger not clean: %+v", tot)
	}
	if last.Linked != 300 || last.Target != 300 {
		t.Errorf("live view: %d of %d devices linked, want 300 of 300", last.Linked, last.Target)
	}
	// 40 actions/s for 8 s, 80% text and 5% media, each to 3 devices (the
	// recipient's two and the sender's other one).
	if want := 0.85 * 40 * 8; float64(tot.Messages) < 0.7*want || float64(tot.Messages) > 1.3*want {
		t.Errorf("%d messages sent, want about %.0f", tot.Messages, want)
	}
	if tot.Expected != 3*tot.Messages {
		t.Errorf("%d deliveries expected for %d messages, want 3 each", tot.Expected, tot.Messages)
	}
	if last.Sent != int64(tot.Messages) || last.Delivered != int64(tot.Delivered) {
		t.Errorf("live figures sent %d delivered %d, the ledger %d and %d", last.Sent, last.Delivered, tot.Messages, tot.Delivered)
	}
	if rep.Meta["devices"] != "300" {
		t.Errorf("report meta devices = %q, want 300", rep.Meta["devices"])
	}
	// A point a second: the send rate was about 40*0.85 msg/s while
	// messaging, and nearly all 300 devices were connected at once (offline
	// and reconnect actions take a few away at any moment).
	series := map[string]reports.TimeSeries{}
	for _, s := range rep.TimeSeries {
		series[s.Name] = s
	}
	if n := len(series[SeriesSent].Points); n < 8 {
		t.Errorf("series %q has %d points, want one a second of the run (>= 8)", SeriesSent, n)
	}
	if p := peak(series[SeriesSent]); p < 15 || p > 100 {
		t.Errorf("series %q peaks at %.1f msg/s, want about 34", SeriesSent, p)
	}
	// The rates add up to the run's whole count, its last second included.
	wantIntegral(t, series[SeriesSent], tot.Messages)
	wantIntegral(t, series[SeriesDelivered], tot.Delivered)
	if p := peak(series[SeriesConnected]); p < 280 || p > 300 {
		t.Errorf("series %q peaks at %.0f devices, want 280 to 300", SeriesConnected, p)
	}
	if len(series[SeriesP99].Points) == 0 {
		t.Errorf("series %q is empty", SeriesP99)
	}
}

// With abort-on-fail, a budget no run can meet stops the actions early and
// the run fails, naming the threshold.
// Mirror companions send through their phones, are closed and reopened,
// and are owed every message of their phones: the ledger must be clean.
func TestMirrorLoadIsScoredClean(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run; not in -short")
	}
	def := Definition{
		Users: 20, Companions: 1, Topology: "mirror", Relay: "embedded",
		Messages: Arrival{Rate: 20},
		Mix:      map[string]float64{ActText: 80, ActRead: 10, ActOffline: 10},
		Duration: Duration(3 * time.Second), OfflineFor: Duration(500 * time.Millisecond),
		Thresholds: []string{"messages>=30"},
	}
	rep, err := Run(context.Background(), def, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tot := rep.Ledger.Totals
	if !rep.Passed() || tot.Problems() != 0 || tot.Delivered != tot.Expected {
		t.Errorf("a mirror load run is not clean: %+v", tot)
	}
	// Each text is owed to the recipient's phone and mirror client and the
	// sender's mirror client.
	if tot.Expected != 3*tot.Messages {
		t.Errorf("%d deliveries owed for %d messages, want 3 each", tot.Expected, tot.Messages)
	}
}

func TestAbortOnFailStopsTheRun(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run; not in -short")
	}
	def := Definition{
		Users: 10, Relay: "embedded", Messages: Arrival{Rate: 50},
		Duration: Duration(time.Minute), AbortOnFail: true, AbortGrace: Duration(time.Second),
		Thresholds: []string{"msg.deliver p99<1ns"},
	}
	start := time.Now()
	rep, err := Run(context.Background(), def, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 40*time.Second {
		t.Errorf("the run took %s: the failing threshold did not stop its minute of actions", took)
	}
	if rep.Passed() {
		t.Error("a run whose threshold failed passed")
	}
	if why := rep.Meta["aborted"]; !strings.Contains(why, "msg.deliver p99<1ns") {
		t.Errorf("aborted = %q, want it to name the threshold", why)
	}
}

// A broken definition fails before anything starts, listing every problem.
func TestBadDefinitionFailsFast(t *testing.T) {
	def, err := ReadDefinition(strings.NewReader(`
users: 1
companions: 7
topology: peer-to-peer
prekeys: 0
keepalive: 70s
link: {rate: 10, stages: [{duration: 5s, target: 10}]}
messages: {stages: [{duration: 0s, target: 10}]}
mix: {text: 1, email: 3}
thresholds: ["lost = 0"]
`), "bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	def.PreKeys = 500
	started := false
	_, err = Run(context.Background(), def, Options{Progress: func(Snapshot) { started = true }})
	if err == nil {
		t.Fatal("a broken definition ran")
	}
	if started {
		t.Error("the run started before the definition was refused")
	}
	for _, want := range []string{"users: 1", "companions: 7", "prekeys: 500", "keepalive: 1m10s", "link: both rate and stages",
		"messages.stages[0]: duration 0s", `unknown action "email"`, `did you mean ==?`, `topology: "peer-to-peer"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

// The devices ping at the definition's keepalive, 20 s unless it says.
func TestDevicesPingAtTheKeepAlive(t *testing.T) {
	for _, keepAlive := range []Duration{0, Duration(45 * time.Second)} {
		def := Definition{Users: 10, KeepAlive: keepAlive}.Defaults()
		var c device.Config
		(&runner{def: def}).deviceConfig(&c)
		want := time.Duration(keepAlive)
		if want == 0 {
			want = 20 * time.Second
		}
		if c.KeepAlive != want {
			t.Errorf("keepalive %s in the definition: devices ping every %s, want %s", time.Duration(keepAlive), c.KeepAlive, want)
		}
	}
}

// A keepalive past 5/6 of the relays' idle timeout is refused: the relay
// would drop idle devices. Raising relay_idle_timeout lets them ping less.
func TestKeepAliveStaysUnderTheRelayIdleTimeout(t *testing.T) {
	long := Definition{Users: 10, Messages: Arrival{Rate: 1}, KeepAlive: Duration(4 * time.Minute)}
	if err := long.Defaults().Check(); err == nil || !strings.Contains(err.Error(), "relay_idle_timeout 1m0s") {
		t.Errorf("keepalive 4m against the relay's default 60 s idle timeout: %v, want refused naming relay_idle_timeout", err)
	}
	long.RelayIdleTimeout = Duration(5 * time.Minute)
	if err := long.Defaults().Check(); err != nil {
		t.Errorf("keepalive 4m under relay_idle_timeout 5m: %v", err)
	}
}

func TestNoMessageRateIsAnError(t *testing.T) {
	err := Definition{Users: 10}.Defaults().Check()
	if err == nil || !strings.Contains(err.Error(), "messages: no rate") {
		t.Errorf("err = %v, want one saying the messages have no rate", err)
	}
}

func TestUnknownFieldIsAnError(t *testing.T) {
	_, err := ReadDefinition(strings.NewReader("users: 10\nuser_count: 5\n"), "typo.yaml")
	if err == nil || !strings.Contains(err.Error(), "user_count") {
		t.Errorf("err = %v, want one naming the unknown field user_count", err)
	}
}

func TestJSONDefinition(t *testing.T) {
	def, err := ReadDefinition(strings.NewReader(`{"users": 20, "messages": {"stages": [{"duration": "10s", "target": 100}]}, "media_sizes": ["64KiB", "1MiB"]}`), "d.json")
	if err != nil {
		t.Fatal(err)
	}
	def = def.Defaults()
	if err := def.Check(); err != nil {
		t.Fatal(err)
	}
	if def.Users != 20 || time.Duration(def.Duration) != 10*time.Second || def.MediaSizes[1] != 1<<20 {
		t.Errorf("read %+v", def)
	}
}

func TestArrivalDue(t *testing.T) {
	ramp := Arrival{Start: 0, Stages: []Stage{{Duration: Duration(10 * time.Second), Target: 100}, {Duration: Duration(10 * time.Second), Target: 100}}}
	for _, c := range []struct {
		a    Arrival
		at   time.Duration
		want float64
	}{
		{Arrival{Rate: 50}, 2 * time.Second, 100},
		{ramp, 5 * time.Second, 125},   // half the ramp: rate 50, area 5*50/2
		{ramp, 10 * time.Second, 500},  // the whole ramp: 10*100/2
		{ramp, 15 * time.Second, 1000}, // then 100/s
		{ramp, 30 * time.Second, 2500}, // the last target holds
	} {
		if got := c.a.due(c.at); math.Abs(got-c.want) > 1e-6 {
			t.Errorf("due(%s) = %g, want %g", c.at, got, c.want)
		}
	}
	if !math.IsInf(Arrival{}.due(time.Second), 1) {
		t.Error("an arrival with no rate should be due at once")
	}
}

func TestParseFlagsValues(t *testing.T) {
	st, err := ParseStages("10s:100, 1m:100,5s:0")
	if err != nil || len(st) != 3 || time.Duration(st[1].Duration) != time.Minute || st[2].Target != 0 {
		t.Errorf("ParseStages = %+v, %v", st, err)
	}
	if _, err := ParseStages("10s"); err == nil {
		t.Error("a stage without a target parsed")
	}
	mix, err := ParseMix("text=80,media=5")
	if err != nil || mix[ActText] != 80 || mix[ActMedia] != 5 {
		t.Errorf("ParseMix = %v, %v", mix, err)
	}
	if _, err := ParseSize("12 parsecs"); err == nil {
		t.Error("a size without a number parsed")
	}
}

func TestSnapshotMerge(t *testing.T) {
	a := Snapshot{Phase: PhaseMessaging, Target: 10, Linked: 10, Sent: 5, Recent: reports.NewMetrics(), All: reports.NewMetrics()}
	b := Snapshot{Phase: PhaseLinking, Target: 20, Linked: 4, Sent: 1, Recent: reports.NewMetrics(), All: reports.NewMetrics()}
	a.All.Record(reports.StepDeliver, time.Millisecond)
	b.All.Record(reports.StepDeliver, 3*time.Millisecond)
	var m Snapshot
	m.Merge(a)
	m.Merge(b)
	if m.Phase != PhaseLinking || m.Target != 30 || m.Linked != 14 || m.Sent != 6 || m.All.Summary(reports.StepDeliver).Count != 2 {
		t.Errorf("merged %+v", m)
	}
}

// Two worker processes, each running half the users from its own source
// address, report to the coordinator, which merges their figures and
// reports into one clean verdict.
func TestWorkersMergeIntoOneReport(t *testing.T) {
	if testing.Short() {
		t.Skip("builds linksim and runs worker processes; not in -short")
	}
	bin := filepath.Join(t.TempDir(), "linksim")
	build := exec.Command("go", "build", "-o", bin, "../cmd/linksim")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build linksim: %v\n%s", err, out)
	}
	def := Definition{
		Users: 40, Workers: 2, Relay: "embedded",
		Messages: Arrival{Rate: 20}, Duration: Duration(4 * time.Second),
		Mix: map[string]float64{ActText: 1},
	}
	var last Snapshot
	rep, err := Coordinate(context.Background(), def, Options{WorkerCommand: []string{bin, "load", "--worker"}},
		func(s Snapshot) { last = s })
	if err != nil {
		t.Fatal(err)
	}
	tot := rep.Ledger.Totals
	if !rep.Passed() || tot.Problems() != 0 || tot.Messages < 40 || tot.Delivered != tot.Expected {
		t.Errorf("merged report passed=%v, ledger %+v", rep.Passed(), tot)
	}
	if got := rep.Metrics.Summary(harness.StepLinked).Count; got != 40 {
		t.Errorf("merged pair.linked has %d samples, want one per user of both workers (40)", got)
	}
	if got := rep.Metrics.Summary(reports.StepDeliver).Count; got != int64(tot.Delivered) {
		t.Errorf("merged msg.deliver has %d samples, the ledger %d deliveries", got, tot.Delivered)
	}
	if len(rep.Scenarios) != 4 || !strings.HasSuffix(rep.Scenarios[3].Name, "(worker 2)") {
		t.Errorf("scenarios %+v, want link and messages of each worker", rep.Scenarios)
	}
	if rep.Meta["workers"] != "2" || rep.Meta["devices"] != "80" {
		t.Errorf("meta %v, want 2 workers and 80 devices", rep.Meta)
	}
	if last.Linked != 80 || last.Sent != int64(tot.Messages) {
		t.Errorf("merged live figures: %d linked, %d sent; want 80 and the ledger's %d", last.Linked, last.Sent, tot.Messages)
	}
	// The time series are of both workers (80 devices connected, not one
	// worker's 40) and of the relay, which this process ran.
	series := map[string]reports.TimeSeries{}
	for _, s := range rep.TimeSeries {
		series[s.Name] = s
	}
	if p := peak(series[SeriesConnected]); p != 80 {
		t.Errorf("series %q peaks at %.0f devices, want both workers' 80", SeriesConnected, p)
	}
	// The rate's integral is the messages sent: both workers' whole runs
	// (one worker's would be half; a series without the last second, less).
	// A peak would not do: on a loaded machine sends back up and leave in a
	// burst.
	wantIntegral(t, series[SeriesSent], tot.Messages)
	for _, name := range []string{SeriesRelayRSS, SeriesRelayCPU, SeriesP99} {
		if len(series[name].Points) == 0 {
			t.Errorf("series %q is empty; have %v", name, slices.Collect(maps.Keys(series)))
		}
	}
}

// wantIntegral checks that the sum of s's rates over the time each covers
// (the time since the point before, or the run's start) is want.
func wantIntegral(t *testing.T, s reports.TimeSeries, want int) {
	t.Helper()
	var sum float64
	var prev time.Duration
	for _, p := range s.Points {
		sum += p.Value * (p.At - prev).Seconds()
		prev = p.At
	}
	if math.Abs(sum-float64(want)) > 0.5 {
		t.Errorf("series %q adds up to %.1f, want %d", s.Name, sum, want)
	}
}

func peak(s reports.TimeSeries) float64 {
	m := 0.0
	for _, p := range s.Points {
		m = max(m, p.Value)
	}
	return m
}

// The capacity search steps the rate up until its threshold breaks: with a
// budget any step meets it climbs to Max; with one none meets, the first
// step breaks and the run fails.
func TestFindMax(t *testing.T) {
	if testing.Short() {
		t.Skip("load runs; not in -short")
	}
	run := func(threshold string) *reports.Report {
		def := Definition{
			Users: 10, Relay: "embedded", Drain: Duration(5 * time.Second),
			FindMax:    FindMax{Start: 5, Factor: 2, Step: Duration(time.Second), Max: 20},
			Thresholds: []string{threshold},
		}
		rep, err := Run(context.Background(), def, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := run("msg.deliver p99<1m")
	if rep.Meta["find_max_knee"] != "20.0 actions/s" || rep.Meta["find_max_step_03"] == "" || rep.Meta["find_max_step_04"] != "" ||
		!strings.HasPrefix(rep.Meta["find_max_warmup"], "rate 5.0/s") {
		t.Errorf("a budget every step meets: meta %v, want a warm-up, steps at 5, 10 and 20/s and the knee at 20", rep.Meta)
	}
	if !rep.Passed() {
		t.Errorf("the search that held at every step failed: %+v", rep.Scenarios)
	}
	rep = run("msg.deliver p99<1ns")
	if rep.Meta["find_max_knee"] != "0.0 actions/s" || !strings.Contains(rep.Meta["find_max_step_01"], "broke: threshold msg.deliver p99<1ns") {
		t.Errorf("a budget no step meets: meta %v, want the first step broken", rep.Meta)
	}
	if rep.Passed() {
		t.Error("a search whose first step broke passed")
	}
}

// Unlink actions remove companions (by their phone or by logging out) and
// link them again by QR payload while texts flow: nothing is lost or
// duplicated, and messages sent while a companion was away were not
// addressed to it, so fewer deliveries were expected than three a message.
func TestUnlinkAndRelinkKeepTheLedgerClean(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run; not in -short")
	}
	def := Definition{
		Users: 6, Companions: 1, Contacts: 2, Relay: "embedded",
		Messages: Arrival{Rate: 150}, Duration: Duration(5 * time.Second),
		Mix:        map[string]float64{ActText: 95, ActUnlink: 5},
		OfflineFor: Duration(500 * time.Millisecond),
	}
	rep, err := Run(context.Background(), def, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tot := rep.Ledger.Totals
	if !rep.Passed() || tot.Problems() != 0 || tot.Delivered != tot.Expected {
		t.Errorf("passed=%v, ledger %+v, problems %v, scenarios %+v", rep.Passed(), tot, rep.Ledger.Problems, rep.Scenarios)
	}
	if n, _ := strconv.Atoi(rep.Meta["relinks"]); n < 3 {
		t.Errorf("%d companions unlinked and linked again, want several", n)
	}
	if tot.Messages < 50 || tot.Expected >= 3*tot.Messages {
		t.Errorf("%d deliveries expected for %d messages: want fewer than 3 each, as unlinked companions were no target", tot.Expected, tot.Messages)
	}
}

// A mixed fleet: two of four users also link a browser page (tabs of one
// Chromium context), paired by a screenshot of its QR code. The pages are
// targets of what their users receive and send, texts and media alike, and
// the ledger counts them delivered: more deliveries are expected than the
// native devices account for, and every one arrives.
func TestBrowserPagesAreScoredInTheMix(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run with Chromium; not in -short")
	}
	t.Cleanup(func() { harness.CloseBrowsers() })
	def := Definition{
		Users: 4, Companions: 1, Contacts: 2, Browsers: 2, Layout: "tabs", Relay: "embedded",
		Messages: Arrival{Rate: 8}, Duration: Duration(5 * time.Second),
		Mix:        map[string]float64{ActText: 80, ActMedia: 10, ActRead: 10},
		MediaSizes: []Size{16 << 10},
	}
	var last Snapshot
	rep, err := Run(context.Background(), def, Options{Progress: func(s Snapshot) { last = s }})
	if err != nil {
		t.Fatal(err)
	}
	tot := rep.Ledger.Totals
	if !rep.Passed() || tot.Problems() != 0 || tot.Delivered != tot.Expected {
		t.Errorf("passed=%v, ledger %+v, problems %v, scenarios %+v", rep.Passed(), tot, rep.Ledger.Problems, rep.Scenarios)
	}
	// Natives: the recipient's phone and web client, and the sender's other
	// device: 3 a message. Pages add to that.
	if tot.Messages < 20 || tot.Expected <= 3*tot.Messages {
		t.Errorf("%d deliveries expected for %d messages; want more than 3 each, the pages' too", tot.Expected, tot.Messages)
	}
	if last.Linked != 10 || last.Delivered != int64(tot.Delivered) {
		t.Errorf("live figures: %d devices linked (want 8 native + 2 pages), %d delivered (the ledger: %d)", last.Linked, last.Delivered, tot.Delivered)
	}
	if rep.Meta["browser_pages"] != "2" || rep.Meta["browser_layout"] != "tabs" || rep.Meta["browser_mib_pss_per_page"] == "" {
		t.Errorf("meta %v, want 2 pages in tabs and their memory", rep.Meta)
	}
}

// A mixed fleet that cannot run is refused with what to change.
func TestMixedFleetDefinitionIsChecked(t *testing.T) {
	rate := Arrival{Rate: 1}
	for _, c := range []struct {
		def  Definition
		want string
	}{
		{Definition{Users: 10, Messages: rate, Browsers: 11}, "browsers: 11; want 0 to users (10)"},
		{Definition{Users: 10, Messages: rate, Browsers: -1}, "browsers: -1"},
		{Definition{Users: 10, Messages: rate, Browsers: 2, Companions: 4}, "use companions <= 3"},
		{Definition{Users: 10, Messages: rate, Layout: "windows"}, `layout: "windows"`},
		{Definition{Users: 10, Messages: rate, Workers: 2, Browsers: 6}, "with 2 workers at most 5"},
		{Definition{Users: 1000, Messages: rate, Browsers: 600}, "browsers: 600 pages; at most 500"},
		{Definition{Users: 10, Messages: rate, Topology: "mirror", Mix: map[string]float64{ActUnlink: 1}}, "multidevice companions only"},
	} {
		err := c.def.Defaults().Check()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want it to say %q", c.def, err, c.want)
		}
	}
	ok := Definition{Users: 10, Messages: rate, Browsers: 5, Layout: "tabs", Companions: 3, Mix: map[string]float64{ActUnlink: 1}}
	if err := ok.Defaults().Check(); err != nil {
		t.Errorf("a runnable mixed fleet was refused: %v", err)
	}
	if d := (Definition{Users: 10}).Defaults(); d.Layout != "context" {
		t.Errorf("default layout %q, want context", d.Layout)
	}
}
