// Package natstest runs a NATS server with JetStream inside the process,
// for tests of the cluster backend that need no separate server.
package natstest

import (
	"fmt"
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

// Close stops the server and waits until it is down.
func (s *Server) Close() {
	s.s.Shutdown()
	s.s.WaitForShutdown()
}
