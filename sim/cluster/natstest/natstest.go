// Package natstest runs a NATS server with JetStream inside the process,
// for tests of the cluster backend that need no separate server.
package natstest

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is one embedded NATS server.
type Server struct{ s *server.Server }

// Start runs a NATS server with JetStream storing in dir, on a free port of
// the loopback interface.
func Start(dir string) (*Server, error) {
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: dir,
	})
	if err != nil {
		return nil, fmt.Errorf("natstest: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("natstest: server not ready after 10s")
	}
	return &Server{s: s}, nil
}

// URL is the server's client URL, nats://127.0.0.1:port.
func (s *Server) URL() string { return s.s.ClientURL() }

// InMsgs is how many messages the server has received from its clients
// (publishes and requests, JetStream's included): benchmarks divide it by
// the work done to count round trips to NATS.
func (s *Server) InMsgs() int64 {
	v, err := s.s.Varz(nil)
	if err != nil {
		return 0
	}
	return v.InMsgs
}

// Close stops the server and waits until it is down.
func (s *Server) Close() {
	s.s.Shutdown()
	s.s.WaitForShutdown()
}

// StartCluster runs n NATS servers with JetStream as one cluster, each
// storing under its own directory in dir, on free loopback ports. It
// returns once every server accepts clients and JetStream's meta leader
// counts them all as peers (the first election takes up to ~10s).
func StartCluster(dir string, n int) ([]*Server, error) {
	ports := make([]int, n)
	routes := make([]string, n)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("natstest: %w", err)
		}
		ports[i], routes[i] = p, fmt.Sprintf("nats://127.0.0.1:%d", p)
	}
	var servers []*Server
	stop := func() {
		for _, s := range servers {
			s.Close()
		}
	}
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
			JetStream: true, StoreDir: filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			Cluster: server.ClusterOpts{Name: "linksim", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		}
		s, err := server.NewServer(opts)
		if err != nil {
			stop()
			return nil, fmt.Errorf("natstest: %w", err)
		}
		go s.Start()
		servers = append(servers, &Server{s: s})
	}
	for _, s := range servers {
		if !s.s.ReadyForConnections(10 * time.Second) {
			stop()
			return nil, fmt.Errorf("natstest: cluster server not ready after 10s")
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		for _, s := range servers {
			if s.s.JetStreamIsLeader() && len(s.s.JetStreamClusterPeers()) == n {
				return servers, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("natstest: no JetStream meta leader after 30s")
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
