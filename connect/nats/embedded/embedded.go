// Package embedded starts a NATS server with JetStream inside the calling
// process, so that examples, tests and benchmarks need nothing installed.
// Programs that talk to an external server do not import it (and do not link
// nats-server).
package embedded

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configures Start. The zero value is ready to use: a random
// loopback port and a fresh store directory that Close removes.
type Options struct {
	// Host to listen on; empty: 127.0.0.1 (loopback only).
	Host string
	// Port to listen on; 0: a random free port.
	Port int
	// Dir is JetStream's store directory. Empty: a new temporary directory,
	// removed by Close. A directory given here is kept, so that a server
	// started again on it finds its streams, consumers and messages.
	Dir string
	// ReadyTimeout bounds the wait for the server to accept connections;
	// 0: 10s.
	ReadyTimeout time.Duration
}

// Server is a running in-process nats-server.
type Server struct {
	srv    *server.Server
	dir    string
	ownDir bool
}

// ErrNotReady: the server did not accept connections within ReadyTimeout.
var ErrNotReady = errors.New("embedded nats-server: not ready")

// Start starts a server with JetStream on and waits until it accepts
// connections.
func Start(opts Options) (*Server, error) {
	s := &Server{dir: opts.Dir}
	if s.dir == "" {
		dir, err := os.MkdirTemp("", "pyudf-nats-*")
		if err != nil {
			return nil, fmt.Errorf("embedded nats-server: store directory: %w", err)
		}
		s.dir, s.ownDir = dir, true
	}
	so := &server.Options{
		ServerName: "pyudf-embedded",
		Host:       opts.Host,
		Port:       opts.Port,
		JetStream:  true,
		StoreDir:   s.dir,
		NoLog:      true,
		NoSigs:     true,
	}
	if so.Host == "" {
		so.Host = "127.0.0.1"
	}
	if so.Port == 0 {
		so.Port = server.RANDOM_PORT
	}
	srv, err := server.NewServer(so)
	if err != nil {
		s.removeDir()
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	s.srv = srv
	srv.Start()
	timeout := opts.ReadyTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if !srv.ReadyForConnections(timeout) {
		srv.Shutdown()
		s.removeDir()
		return nil, fmt.Errorf("%w after %v (port %d)", ErrNotReady, timeout, opts.Port)
	}
	return s, nil
}

// URL is the server's client URL (nats://127.0.0.1:PORT).
func (s *Server) URL() string { return s.srv.ClientURL() }

// Port is the port the server listens on.
func (s *Server) Port() int {
	if a, ok := s.srv.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// Dir is the JetStream store directory.
func (s *Server) Dir() string { return s.dir }

// Shutdown stops the server and keeps its store directory, so that Start
// with the same Dir and Port brings the same server back (a broker restart).
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

// Close stops the server and removes the store directory if Start made it.
func (s *Server) Close() error {
	s.Shutdown()
	return s.removeDir()
}

func (s *Server) removeDir() error {
	if !s.ownDir {
		return nil
	}
	s.ownDir = false
	return os.RemoveAll(s.dir)
}
