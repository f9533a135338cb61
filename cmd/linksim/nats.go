package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/spf13/cobra"
)

// natsFlags are what `linksim nats` takes: enough for one server of a
// JetStream cluster, nothing more (every other setting keeps nats-server's
// default).
type natsFlags struct {
	name, listen, store, monitor string
	clusterName, clusterListen   string
	routes                       []string
	debug                        bool
}

func natsCmd() *cobra.Command {
	var nf natsFlags
	cmd := &cobra.Command{
		Use:   "nats",
		Short: "Serve a NATS server with JetStream (nats-server, built in)",
		Long: `Serve a NATS server with JetStream, the engine relay nodes share
(linksim relay --nats). It is nats-server itself, built into linksim, so a
cluster needs no image and no download. JetStream keeps its streams in
--store; a restart on the same directory keeps them.

One server alone is enough for a relay node to try; a cluster (three servers,
so JetStream can keep three replicas and survive losing one) needs the same
--cluster-name on each, a --cluster address each listens on for the others,
and --routes naming the others' cluster addresses. --name must differ per
server and stay the same across restarts: JetStream knows its peers by name.`,
		Example: `  # one server
  linksim nats --listen 127.0.0.1:4222 --store ./nats-data

  # a three-server cluster on one machine
  linksim nats --name n1 --listen 127.0.0.1:4222 --store ./n1 --cluster-name linksim \
      --cluster 127.0.0.1:6222 --routes nats-route://127.0.0.1:6223,nats-route://127.0.0.1:6224
  linksim nats --name n2 --listen 127.0.0.1:4223 --store ./n2 --cluster-name linksim \
      --cluster 127.0.0.1:6223 --routes nats-route://127.0.0.1:6222,nats-route://127.0.0.1:6224
  linksim nats --name n3 --listen 127.0.0.1:4224 --store ./n3 --cluster-name linksim \
      --cluster 127.0.0.1:6224 --routes nats-route://127.0.0.1:6222,nats-route://127.0.0.1:6223`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := nf.options()
			if err != nil {
				return err
			}
			s, err := server.NewServer(opts)
			if err != nil {
				return fmt.Errorf("nats server: %w", err)
			}
			s.ConfigureLogger()
			s.Start()
			// A cluster's JetStream waits for its peers, but clients can
			// connect (and relay nodes retry) as soon as the port is open.
			if !s.ReadyForConnections(30 * time.Second) {
				s.Shutdown()
				return errors.New("nats server: not ready for connections within 30s")
			}
			fmt.Printf("linksim nats serving %s (server %s, JetStream in %s)\n", s.ClientURL(), opts.ServerName, opts.StoreDir)
			<-cmd.Context().Done()
			fmt.Println("linksim nats: shutting down")
			s.Shutdown()
			s.WaitForShutdown()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&nf.name, "name", "", "server name, unique in the cluster and the same across restarts (default: derived from --listen)")
	f.StringVar(&nf.listen, "listen", "127.0.0.1:4222", "client address (port 0: any free port)")
	f.StringVar(&nf.store, "store", "nats-data", "JetStream store directory (created if missing)")
	f.StringVar(&nf.monitor, "monitor", "", "HTTP monitoring address (/healthz, /varz, /jsz); empty: none")
	f.StringVar(&nf.clusterName, "cluster-name", "", "cluster name, the same on every server of the cluster")
	f.StringVar(&nf.clusterListen, "cluster", "", "address this server listens on for the other servers (needs --cluster-name)")
	f.StringSliceVar(&nf.routes, "routes", nil, "the other servers' cluster addresses, nats-route://host:port, comma-separated")
	f.BoolVar(&nf.debug, "debug", false, "log nats-server's debug messages")
	return cmd
}

// options turns the flags into nats-server options, refusing combinations
// nats-server would only report later or not at all.
func (nf natsFlags) options() (*server.Options, error) {
	host, port, err := splitHostPort("--listen", nf.listen)
	if err != nil {
		return nil, err
	}
	if nf.store == "" {
		return nil, errors.New("--store: JetStream needs a store directory")
	}
	opts := &server.Options{
		ServerName: nf.name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   nf.store,
		Debug:      nf.debug,
		// The harness kills servers on purpose; they must come back fast,
		// not after nats-server's default lame-duck grace.
		LameDuckDuration:    2 * time.Second,
		LameDuckGracePeriod: time.Second,
	}
	if opts.ServerName == "" {
		opts.ServerName = "nats-" + strings.NewReplacer(":", "-", ".", "-").Replace(nf.listen)
	}
	if nf.monitor != "" {
		if opts.HTTPHost, opts.HTTPPort, err = splitHostPort("--monitor", nf.monitor); err != nil {
			return nil, err
		}
	}
	switch {
	case nf.clusterListen == "" && (nf.clusterName != "" || len(nf.routes) > 0):
		return nil, errors.New("--cluster-name and --routes need --cluster, the address the other servers connect to")
	case nf.clusterListen != "" && nf.clusterName == "":
		return nil, errors.New("--cluster needs --cluster-name (the same on every server)")
	case nf.clusterListen != "":
		opts.Cluster.Name = nf.clusterName
		if opts.Cluster.Host, opts.Cluster.Port, err = splitHostPort("--cluster", nf.clusterListen); err != nil {
			return nil, err
		}
		for _, r := range nf.routes {
			if !strings.HasPrefix(r, "nats-route://") && !strings.HasPrefix(r, "nats://") {
				return nil, fmt.Errorf("--routes %q: want nats-route://host:port", r)
			}
		}
		opts.Routes = server.RoutesFromStr(strings.Join(nf.routes, ","))
	}
	return opts, nil
}

func splitHostPort(flag, addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: %w", flag, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%s %q: bad port", flag, addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT // nats-server reads 0 as its default port
	}
	return host, port, nil
}
