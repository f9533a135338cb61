package main

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/linksim/linksim/sim/relay"
	"github.com/linksim/linksim/webclient/static"
)

func relayCmd() *cobra.Command {
	var (
		listen, data, level, profile string
		cfg                          relay.Config
	)
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Serve the reference relay",
		Long: `Serve the reference relay: WebSocket at /ws (docs/protocol.md), the media
store at /media/, /healthz, /metrics (Prometheus) and /relay.json (the pinned
Noise key). Its state (accounts, queues, media blobs, its Noise key) lives in --data, so a restart on the same
directory keeps every acknowledged message and the same key. The web app is
served at / when it was built into the binary (make build).

With --nats the relay is one stateless node of a cluster: its state lives in
JetStream on the NATS servers named (streams, key-value buckets and the object
store, replicated --replicas times), devices on other nodes are reached over
NATS, and several nodes on the same NATS cluster are one relay to devices.`,
		Example: `  linksim relay --listen 127.0.0.1:8080 --data ./relay-data
  # two nodes of one relay on a 3-server NATS cluster
  linksim relay --listen 127.0.0.1:8081 --nats nats://127.0.0.1:4222,nats://127.0.0.1:4223 --replicas 3
  linksim relay --listen 127.0.0.1:8082 --nats nats://127.0.0.1:4224 --replicas 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(level)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			cfg.DataDir = data
			cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
			app, err := static.Embedded()
			if err != nil {
				fmt.Fprintf(os.Stderr, "linksim relay: %v; / serves a placeholder page\n", err)
			} else {
				cfg.Web = func(key []byte) http.Handler { return static.Handler(key, app) }
			}
			srv, err := relay.Serve(cfg, listen)
			if err != nil {
				return err
			}
			defer srv.Close()
			if profile != "" {
				addr, stop, err := serveProfiles(profile)
				if err != nil {
					return err
				}
				defer stop()
				fmt.Printf("profiles at http://%s/debug/pprof/\n", addr)
			}
			state := "data in " + data
			if len(cfg.NATS) > 0 {
				state = fmt.Sprintf("cluster node on NATS %s (state in JetStream, %d replicas)", strings.Join(cfg.NATS, ","), max(cfg.Replicas, 1))
			}
			fmt.Printf("linksim relay serving %s (WebSocket %s)\nnoise key %s\n%s\n",
				srv.URL(), srv.WSURL(), base64.StdEncoding.EncodeToString(srv.Key()), state)
			<-cmd.Context().Done()
			fmt.Println("linksim relay: shutting down")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8080", "address to listen on")
	f.StringVar(&data, "data", "relay-data", "data directory (created if missing)")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&profile, "pprof", "", "serve Go's profiles (/debug/pprof/) on this address, apart from the relay's port;\nfor finding what a load run saturates, e.g. --pprof 127.0.0.1:6060")
	f.IntVar(&cfg.MaxCompanions, "max-companions", 0, "companions per account (0: 4)")
	f.IntVar(&cfg.RefCount, "pair-refs", 0, "pairing refs per QR session (0: 6)")
	f.DurationVar(&cfg.RefFirstTTL, "pair-first-ttl", 0, "validity of the first pairing ref (0: 60s)")
	f.DurationVar(&cfg.RefNextTTL, "pair-next-ttl", 0, "validity of each next pairing ref (0: 20s)")
	f.DurationVar(&cfg.PairTimeout, "pair-timeout", 0, "how long a scan waits for the companion (0: 10s)")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", 0, "close connections silent this long (0: 60s)")
	f.Int64Var(&cfg.MaxMediaBytes, "max-media-bytes", 0, "largest media blob taken (0: 64 MiB)")
	f.DurationVar(&cfg.MediaTTL, "media-ttl", 0, "keep a media blob this long after its last upload (0: 168h)")
	f.StringSliceVar(&cfg.NATS, "nats", nil, "run as a stateless cluster node on these NATS servers (URL[,URL...]; state in JetStream, not --data)")
	f.IntVar(&cfg.Replicas, "replicas", 0, "with --nats: JetStream replicas of each stream and bucket (0: 1; 3 in a 3-server cluster)")
	cfg.Limits.AddFlags(f)
	return cmd
}

// serveProfiles serves net/http/pprof on its own listener, so profiles are
// never reachable through the relay's public port.
func serveProfiles(addr string) (bound string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("--pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	return ln.Addr().String(), func() { srv.Close() }, nil
}
