package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/load"
	"github.com/linksim/linksim/reports"
)

func loadCmd() *cobra.Command {
	var (
		file, out, mix, ramp, linkRamp string
		mediaSizes, thresholds         []string
		thresholdFile                  string
		verbose, plain, worker         bool
		fl                             load.Definition
		offlineFor, duration, drain    time.Duration
		abortGrace, lostAfter          time.Duration
		keepAlive, relayIdleTimeout    time.Duration
		findStep, findWarmup           time.Duration
		natsOpts                       load.NATSOptions
		profiles                       string
	)
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Load-test a relay with many linked devices and score the run",
		Long: `Run a load test: users arrive at the link rate, each a simulated phone
that registers and links its native web clients by QR payload; then actions
arrive at an open-model rate (like k6's constant-arrival-rate and
ramping-arrival-rate executors: the rate does not slow down when the relay
does) for --duration, drawn from a mix:

  text       a text message from a random device of a user to a contact
  media      a document of one of --media-size to a contact; every target
             device downloads and verifies it
  read       a device marks a chat read: read receipts flow to the sender
  offline    a web client closes for --offline-for, then opens again on its
             state and gets what it missed
  reconnect  a device's link drops; it reconnects by itself
  unlink     a web client is removed, by its phone or by logging out, stays
             unlinked for --offline-for, then links again by QR payload as
             a new device of the same name; the phone removes it once no
             message to or from it is under way, so nothing sent while it
             is unlinked is expected of it, and after the new link it is
             counted again

Every device is real (Noise link, Signal sessions) and every message is
scored by the ledger: delivered exactly once to every device of the
recipient and the sender's other devices, in order, intact. The run writes
the same report folder as 'linksim run' (report.json, junit.xml,
report.html) and exits 1 when a threshold fails (lost==0, duplicated==0,
reordered==0, corrupted==0, undecryptable==0, unexpected==0 always apply)
or an action failed.

A live view shows devices linked, messages/s sent and delivered, delivery
p50/p99 over the last 5 s, errors and deliveries overdue; plain lines when
stdout is not a terminal (or with --plain).

A mixed fleet: --browsers N gives the first N users a real browser page
as well (the web app in a headless Chromium, installed by
scripts/install-chromium.sh), paired by a screenshot of its QR code. Pages
receive what their user receives and sends from other devices (texts, and
media they download and verify); they do not send. They are scored by the
same ledger: each page reads its chat list in a loop and opens the chats
that changed (every chat each 5 s), until the drain ends. With --workers
the pages all run in the first worker. --layout context (default)
gives each page a browser context of its own, --layout tabs opens them as
tabs of one context (cheaper); the report's meta gives the Chromium memory
per page (PSS).

The relay runs as its own process by default (--relay process), so the
figures split client from relay. One relay process holds at most 19,000
devices here (the 20,000-file limit): more need relay nodes of a cluster,
either listed (--relay ws://a/ws,ws://b/ws,...) or started by this command
(--relay cluster:N); each user's phone and web client then sit on
different nodes, and a plan that does not fit says how many nodes and
workers it needs. With --workers N the users are spread over
N worker processes (each runs users who write to each other, dials from its
own loopback address 127.0.1.N, and stays under the 20,000-file limit); the
coordinator merges their live figures, time series and reports. With --nats
URL the coordinator and its workers talk over that NATS server instead, and
--remote-workers M of them join from other machines ('linksim load worker',
see its help). The report's time series (drawn in report.html) give, a
point a second, messages/s sent and delivered, delivery p50/p99, connected
devices, and the relay's CPU and RSS from its /metrics.

Anything richer goes in a definition file (--file, YAML or JSON); flags
given on the command line override it. A definition file:

  name: ramp to 500 msg/s
  users: 2000
  companions: 1
  browsers: 20                         # the first 20 users also link a browser page
  layout: tabs                         # or context
  contacts: 5
  link: {rate: 200, parallel: 64}      # users/s; each links 1+companions devices
  messages:
    stages:                            # ramping arrival rate, per second
      - {duration: 10s, target: 500}
      - {duration: 40s, target: 500}
  mix: {text: 80, media: 2, read: 10, offline: 3, reconnect: 3, unlink: 2}
  media_sizes: [64KiB, 1MiB]
  offline_for: 3s
  thresholds: ["msg.deliver p99<250ms", "msg.ack p99<100ms"]
  abort_on_fail: true
  prekeys: 16
  workers: 2
  # find_max: {start: 50, factor: 1.5, step: 10s, max: 5000, warmup: 10s}

--find-max R searches for capacity on one linked fleet: after an unjudged
warm-up at R (new chats fetch prekey bundles and build Signal sessions), R
actions/s for --find-max-step, then 1.5 times that (--find-max-factor), and so on until a
--threshold fails on a step's own figures or actions had to be dropped;
the report's meta lists every step and the knee (the last rate that held).

A bad definition is reported, every problem at once, before anything
starts. Field reference: docs/performance.md, section "Load runs".`,
		Example: `  linksim load --users 200 --rate 50 --duration 30s
  linksim load --users 1000 --link-rate 200 --ramp 10s:100,30s:400,10s:0 --mix text=80,read=20
  linksim load --users 500 --rate 100 --mix text=70,media=5,read=10,offline=10,reconnect=5 --media-size 64KiB,1MiB
  linksim load --users 200 --rate 50 --mix text=90,unlink=10 --offline-for 1s
  linksim load --users 2500 --browsers 20 --layout tabs --rate 100 --duration 1m
  linksim load --users 300 --rate 200 --threshold 'msg.deliver p99<100ms' --abort-on-fail
  linksim load --file load.yaml --workers 4 --out out/load
  linksim load --users 50000 --workers 6 --relay cluster:6 --rate 1 --duration 1m
  linksim load --users 20000 --workers 3 --relay ws://127.0.0.21:8080/ws,ws://127.0.0.22:8080/ws,ws://127.0.0.23:8080/ws --rate 5
  linksim load --file load.yaml --workers 4 --nats nats://10.0.0.5:4222 --remote-workers 2 --relay ws://10.0.0.5:8080/ws
  linksim load --users 500 --find-max 50 --find-max-step 10s --threshold 'msg.deliver p99<50ms'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if worker {
				stop, err := workerProfiles()
				if err != nil {
					return err
				}
				defer stop()
				return load.ServeWorker(cmd.Context(), os.Stdin, os.Stdout)
			}
			def := load.Definition{}
			if file != "" {
				var err error
				if def, err = load.LoadDefinition(file); err != nil {
					return err
				}
			}
			if err := applyLoadFlags(cmd.Flags(), &def, fl, loadFlagValues{
				mix: mix, ramp: ramp, linkRamp: linkRamp, mediaSizes: mediaSizes, thresholds: thresholds,
				thresholdFile: thresholdFile, offlineFor: offlineFor, duration: duration, drain: drain,
				abortGrace: abortGrace, lostAfter: lostAfter, findStep: findStep, findWarmup: findWarmup,
				keepAlive: keepAlive, relayIdleTimeout: relayIdleTimeout,
			}); err != nil {
				return err
			}
			def = def.Defaults()
			if err := def.Check(); err != nil {
				return err
			}
			if err := harness.Prepare(def.Relay); err != nil {
				return fmt.Errorf("relay %s: %w", def.Relay, err)
			}
			if natsOpts.URL == "" && (cmd.Flags().Changed("remote-workers") || cmd.Flags().Changed("nats-run")) {
				return fmt.Errorf("--remote-workers and --nats-run need --nats URL")
			}
			opts := load.Options{NATS: natsOpts, Profiles: profiles}
			if profiles != "" {
				addr, stop, err := serveProfiles(profiles)
				if err != nil {
					return err
				}
				defer stop()
				fmt.Printf("profiles at http://%s/debug/pprof/ (this process), worker i's on the next ports\n", addr)
			}
			if verbose {
				opts.Log = os.Stderr
			}
			if def.Browsers > 0 {
				defer harness.CloseBrowsers()
			}
			view := load.NewView(os.Stdout, def, plain)
			rep, err := load.Coordinate(cmd.Context(), def, opts, view.Update)
			view.Close()
			if err != nil {
				return err
			}
			if err := rep.WriteSummary(os.Stdout); err != nil {
				return err
			}
			fmt.Println("\nLOAD FIGURES")
			for _, k := range slices.Sorted(maps.Keys(rep.Meta)) {
				fmt.Printf("  %-30s %s\n", k, rep.Meta[k])
			}
			if err := rep.WriteDir(out); err != nil {
				return err
			}
			abs, _ := filepath.Abs(filepath.Join(out, "report.html"))
			fmt.Printf("\nreport: %s\n", abs)
			return verdict(rep)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "a load definition file (YAML or JSON); flags override its fields")
	f.StringVar(&out, "out", "linksim-load", "directory for report.json, junit.xml and report.html")
	f.StringVar(&fl.Name, "name", "", `name of the run in the report (default "load")`)
	f.IntVar(&fl.Users, "users", 0, "users, each a phone (required, at least 2)")
	f.IntVar(&fl.Companions, "companions", 0, "native web clients linked per user, 0-4 (default 1)")
	f.IntVar(&fl.Browsers, "browsers", 0, "how many users (the first ones) also link a real browser page in Chromium, paired by QR screenshot (default 0)")
	f.StringVar(&fl.Layout, "layout", "", `browser pages' layout in Chromium: "context" (default: a browser context each) or "tabs" (tabs of one context)`)
	f.StringVar(&fl.Topology, "topology", "", `how companions are linked: "multidevice" (default) or "mirror" (they send through their phone)`)
	f.IntVar(&fl.Contacts, "contacts", 0, "how many other users each user writes to (default 5)")
	f.Float64Var(&fl.Link.Rate, "link-rate", 0, "users arriving per second to register and link (default: as fast as --link-parallel allows)")
	f.StringVar(&linkRamp, "link-ramp", "", "ramping link rate instead, DURATION:TARGET users/s stages like 10s:50,20s:200")
	f.IntVar(&fl.Link.Parallel, "link-parallel", 0, "users linking at once (default 32)")
	f.Float64Var(&fl.Messages.Rate, "rate", 0, "actions started per second, constant (open model)")
	f.StringVar(&ramp, "ramp", "", "ramping action rate instead, DURATION:TARGET stages like 10s:100,1m:100,10s:0")
	f.Float64Var(&fl.Messages.Start, "start-rate", 0, "the action rate a --ramp starts from")
	f.StringVar(&mix, "mix", "", "action weights NAME=WEIGHT: text, media, read, offline, reconnect, unlink (default text=90,read=10)")
	f.StringSliceVar(&mediaSizes, "media-size", nil, "sizes a media action picks from, like 64KiB,1MiB (default 64KiB)")
	f.DurationVar(&offlineFor, "offline-for", 0, "how long an offline action keeps a web client closed, and an unlink action unlinked (default 2s)")
	f.DurationVar(&duration, "duration", 0, "how long actions arrive (default: the --ramp's length, or 30s)")
	f.DurationVar(&drain, "drain", 0, "how long to wait after the last action for every message to arrive (default 30s)")
	f.StringArrayVar(&thresholds, "threshold", nil, `a threshold such as 'msg.deliver p99<250ms' (repeatable)`)
	f.StringVar(&thresholdFile, "threshold-file", "", "a file of thresholds, one per line, # comments")
	f.BoolVar(&fl.AbortOnFail, "abort-on-fail", false, "stop the actions as soon as a threshold fails on the live figures (checked every second)")
	f.DurationVar(&abortGrace, "abort-grace", 0, "how long into the actions thresholds are not yet checked live (default 5s)")
	f.DurationVar(&lostAfter, "lost-after", 0, "how long a delivery may be outstanding before the live view counts it lost (default 10s)")
	f.IntVar(&fl.PreKeys, "prekeys", 0, "one-time prekeys each device uploads, 1-200 (default 16; the relay asks for more below 10)")
	f.DurationVar(&keepAlive, "keepalive", 0, "how often each device pings the relay, 1s to 5/6 of --relay-idle-timeout (default 20s); longer makes idle devices cheaper, and dead links slower to notice")
	f.DurationVar(&relayIdleTimeout, "relay-idle-timeout", 0, "the relays' --idle-timeout: relays this run starts get it, relays named by URL must run with it (default 60s, the relay's own)")
	f.IntVar(&fl.MaxInFlight, "max-in-flight", 0, "actions under way at once; an action due beyond it is dropped and counted (default 2000)")
	f.IntVar(&fl.Workers, "workers", 0, "worker processes to spread the users over (default 1: this process)")
	f.StringVar(&fl.Relay, "relay", "", `relay backend: "process" (default: the relay as its own process), "embedded", "container", ws://host:port/ws, `+
		`the ws:// URLs of relay nodes separated by commas (devices spread over them), or "cluster:N" (N relay nodes on three NATS servers, started as processes)`)
	f.Float64Var(&fl.FindMax.Start, "find-max", 0, "capacity search instead of --rate/--duration: start at this many actions/s, step up until a --threshold breaks, report the knee")
	f.Float64Var(&fl.FindMax.Factor, "find-max-factor", 0, "each step's rate is this times the last (default 1.5)")
	f.DurationVar(&findStep, "find-max-step", 0, "how long each rate of the search runs (default 10s)")
	f.DurationVar(&findWarmup, "find-max-warmup", 0, "an unjudged warm-up at the first rate, for new chats' session setup (default one step; negative: none)")
	f.BoolVarP(&verbose, "verbose", "v", false, "print the harness's log lines")
	f.BoolVar(&plain, "plain", false, "print plain progress lines even on a terminal")
	f.BoolVar(&worker, "worker", false, "run as a worker of a coordinating 'linksim load' (job on stdin)")
	_ = f.MarkHidden("worker")
	f.StringVar(&natsOpts.URL, "nats", "", "link the coordinator and its workers over this NATS server (nats://host:4222), so workers can join from other machines")
	f.StringVar(&natsOpts.Run, "nats-run", "", `with --nats: the run's name on the server, for workers' --run (default "load")`)
	f.IntVar(&natsOpts.Remote, "remote-workers", 0, "with --nats: how many of the --workers (the last ones) join from elsewhere with 'linksim load worker'")
	f.DurationVar(&natsOpts.JoinTimeout, "join-timeout", 0, "with --nats: how long to wait for every worker to join (default 1m)")
	f.StringVar(&profiles, "pprof", "", "serve Go's profiles (/debug/pprof/) of this process on this address and of worker i (from 1)\non its port + i, e.g. --pprof 127.0.0.1:6060: worker 1 on 6061")
	cmd.AddCommand(loadWorkerCmd())
	return cmd
}

// workerProfiles serves this worker's profiles when its coordinator asked
// for them (load.ProfilesEnv).
func workerProfiles() (stop func(), err error) {
	addr := os.Getenv(load.ProfilesEnv)
	if addr == "" {
		return func() {}, nil
	}
	_, stop, err = serveProfiles(addr)
	return stop, err
}

// loadFlagValues are the flags that need parsing or conversion before they
// land in a definition.
type loadFlagValues struct {
	mix, ramp, linkRamp, thresholdFile                 string
	mediaSizes, thresholds                             []string
	offlineFor, duration, drain, abortGrace, lostAfter time.Duration
	keepAlive, relayIdleTimeout                        time.Duration
	findStep, findWarmup                               time.Duration
}

// applyLoadFlags copies the flags given on the command line from fl (and
// v) into def, so they override the definition file.
func applyLoadFlags(fs *pflag.FlagSet, def *load.Definition, fl load.Definition, v loadFlagValues) error {
	set := fs.Changed
	copyIf := func(name string, apply func()) {
		if set(name) {
			apply()
		}
	}
	copyIf("name", func() { def.Name = fl.Name })
	copyIf("users", func() { def.Users = fl.Users })
	copyIf("companions", func() { def.Companions = fl.Companions })
	copyIf("topology", func() { def.Topology = fl.Topology })
	copyIf("contacts", func() { def.Contacts = fl.Contacts })
	copyIf("browsers", func() { def.Browsers = fl.Browsers })
	copyIf("layout", func() { def.Layout = fl.Layout })
	copyIf("link-rate", func() { def.Link.Rate, def.Link.Stages = fl.Link.Rate, nil })
	copyIf("link-parallel", func() { def.Link.Parallel = fl.Link.Parallel })
	copyIf("rate", func() { def.Messages.Rate, def.Messages.Stages = fl.Messages.Rate, nil })
	copyIf("start-rate", func() { def.Messages.Start = fl.Messages.Start })
	copyIf("abort-on-fail", func() { def.AbortOnFail = fl.AbortOnFail })
	copyIf("prekeys", func() { def.PreKeys = fl.PreKeys })
	copyIf("keepalive", func() { def.KeepAlive = load.Duration(v.keepAlive) })
	copyIf("relay-idle-timeout", func() { def.RelayIdleTimeout = load.Duration(v.relayIdleTimeout) })
	copyIf("max-in-flight", func() { def.MaxInFlight = fl.MaxInFlight })
	copyIf("workers", func() { def.Workers = fl.Workers })
	copyIf("relay", func() { def.Relay = fl.Relay })
	copyIf("offline-for", func() { def.OfflineFor = load.Duration(v.offlineFor) })
	copyIf("duration", func() { def.Duration = load.Duration(v.duration) })
	copyIf("drain", func() { def.Drain = load.Duration(v.drain) })
	copyIf("abort-grace", func() { def.AbortGrace = load.Duration(v.abortGrace) })
	copyIf("lost-after", func() { def.LostAfter = load.Duration(v.lostAfter) })
	copyIf("find-max", func() { def.FindMax.Start = fl.FindMax.Start })
	copyIf("find-max-factor", func() { def.FindMax.Factor = fl.FindMax.Factor })
	copyIf("find-max-step", func() { def.FindMax.Step = load.Duration(v.findStep) })
	copyIf("find-max-warmup", func() { def.FindMax.Warmup = load.Duration(v.findWarmup) })
	if set("ramp") {
		st, err := load.ParseStages(v.ramp)
		if err != nil {
			return fmt.Errorf("--ramp: %w", err)
		}
		def.Messages.Rate, def.Messages.Stages = 0, st
	}
	if set("link-ramp") {
		st, err := load.ParseStages(v.linkRamp)
		if err != nil {
			return fmt.Errorf("--link-ramp: %w", err)
		}
		def.Link.Rate, def.Link.Stages = 0, st
	}
	if set("mix") {
		m, err := load.ParseMix(v.mix)
		if err != nil {
			return fmt.Errorf("--mix: %w", err)
		}
		def.Mix = m
	}
	if set("media-size") {
		def.MediaSizes = nil
		for _, s := range v.mediaSizes {
			size, err := load.ParseSize(s)
			if err != nil {
				return fmt.Errorf("--media-size: %w", err)
			}
			def.MediaSizes = append(def.MediaSizes, size)
		}
	}
	def.Thresholds = append(def.Thresholds, v.thresholds...)
	if v.thresholdFile != "" {
		ts, err := reports.LoadThresholds(v.thresholdFile)
		if err != nil {
			return err
		}
		for _, t := range ts {
			def.Thresholds = append(def.Thresholds, t.Expr)
		}
	}
	return nil
}
