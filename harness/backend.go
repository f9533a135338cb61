package harness

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/linksim/linksim/sim/relay"
	"github.com/linksim/linksim/sim/wire"
)

// Backend is a running relay that an Env's devices talk to. The kinds are
// embedded (in this process), process (the linksim binary), container
// (the binary in a FROM-scratch image, through testcontainers-go), cluster
// and cluster-process (relay nodes on three NATS servers, as containers or
// as processes: cluster.go) and external (somebody's relay at a URL).
type Backend interface {
	// Kind names the backend: "embedded", "process", "container", or the
	// external relay's URL.
	Kind() string
	// URL is the relay's base URL, http://host:port; the protocol is at /ws.
	URL() string
	// Key is the relay's Noise public key, which devices pin.
	Key() []byte
	// Restart stops the relay gracefully and starts it again on the same
	// data and address, as an operator's restart would.
	Restart(ctx context.Context) error
	// Crash ends the relay at once (SIGKILL where it is a process, so
	// nothing is flushed on the way out) and starts it again.
	Crash(ctx context.Context) error
	// DataDir is where the relay's state lives on this machine.
	DataDir() string
	// Logs returns everything the relay has logged.
	Logs() []byte
	Close() error
}

// ErrUnsupported is returned by backend operations a backend cannot do, such
// as restarting somebody else's relay.
var ErrUnsupported = errors.New("not supported by this relay backend")

// Backend kinds for Config.Backend.
const (
	Embedded  = "embedded"
	Process   = "process"
	Container = "container"
	// Cluster runs relay nodes and three NATS servers as containers on a
	// Docker network of their own; ClusterProcess runs them as child
	// processes, for machines without Docker.
	Cluster        = "cluster"
	ClusterProcess = "cluster-process"
)

// BackendFromEnv is the backend named by $LINKSIM_RELAY, or embedded.
func BackendFromEnv() string {
	if b := os.Getenv("LINKSIM_RELAY"); b != "" {
		return b
	}
	return Embedded
}

// Prepare builds what a backend needs before the first Env uses it (the
// linksim binary for process, the relay image's build context for
// container), so that cost does not land inside one scenario's time limit.
func Prepare(backend string) error {
	switch backend {
	case Process, ClusterProcess:
		_, err := binary()
		return err
	case Container, Cluster:
		_, err := imageContext()
		return err
	}
	return nil
}

// CheckBackend says quickly (it builds and starts nothing) whether the
// backend named can run here: a known kind; for process and container a
// linksim binary to run or the module to build one from; for container a
// Docker engine that answers; for a URL a relay that answers /healthz and
// /relay.json with a protocol version and key this harness can use, and
// proves that key in a Noise handshake on /ws. Each problem is one line of
// the error.
func CheckBackend(ctx context.Context, backend string) error {
	switch {
	case backend == Embedded:
		return nil
	case backend == Process || backend == ClusterProcess:
		return checkBinary(false)
	case backend == Container || backend == Cluster:
		return errors.Join(dockerHealthy(ctx, tclog.NewNoopLogger()), checkBinary(true))
	case isURL(backend):
		x, err := dialExternal(ctx, backend)
		if err != nil {
			return err
		}
		if err := healthy(ctx, x.base); err != nil {
			return fmt.Errorf("external relay %s: GET /healthz: %w", backend, err)
		}
		if err := handshake(ctx, x.base, x.key); err != nil {
			return fmt.Errorf("external relay %s: Noise handshake: %w", backend, err)
		}
		return nil
	}
	return unknownBackend(backend)
}

// handshake proves the relay at base speaks the protocol's transport and
// holds the key its /relay.json advertises: a Noise handshake on /ws as a
// throwaway device, closed at once.
func handshake(ctx context.Context, base string, key []byte) error {
	local, err := wire.GenerateKey()
	if err != nil {
		return err
	}
	c, err := wire.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws", local, key)
	if err != nil {
		return err
	}
	return c.Close("linksim check done")
}

func isURL(s string) bool {
	for _, scheme := range []string{"ws://", "wss://", "http://", "https://"} {
		if strings.HasPrefix(s, scheme) {
			return true
		}
	}
	return false
}

func unknownBackend(kind string) error {
	return fmt.Errorf("relay backend %q: want embedded, process, container, cluster, cluster-process, or a ws:// URL", kind)
}

// startBackend starts the relay backend cfg names.
func startBackend(ctx context.Context, t TB, cfg Config, log *lockedBuffer) (Backend, error) {
	kind := cfg.Backend
	if kind == "" {
		kind = BackendFromEnv()
	}
	switch {
	case kind == Embedded:
		return startEmbedded(cfg.Relay)
	case kind == Process:
		return startProcess(ctx, t, cfg.Relay, log)
	case kind == Container:
		return startContainer(ctx, t, cfg.Relay, log)
	case kind == ClusterProcess:
		return startClusterProcesses(ctx, cfg.Relay, cfg.nodes())
	case kind == Cluster:
		return startClusterContainers(ctx, t, cfg.Relay, cfg.nodes())
	case isURL(kind):
		return dialExternal(ctx, kind)
	}
	return nil, unknownBackend(kind)
}

// tuned reports whether cfg changes the relay's behaviour from its defaults,
// which only a relay the harness starts can honour.
func tuned(cfg relay.Config) bool {
	return cfg.RefCount != 0 || cfg.RefFirstTTL != 0 || cfg.RefNextTTL != 0 || cfg.PairTimeout != 0 ||
		cfg.IdleTimeout != 0 || cfg.MaxCompanions != 0 || cfg.MaxMediaBytes != 0 || cfg.MediaTTL != 0 ||
		cfg.Limits != (relay.Limits{})
}

// infoClient opens a connection per request: a relay restarted on the same
// address must never be asked over a connection kept from the one killed.
var infoClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// relayInfo reads a relay's /relay.json: its Noise key, which devices pin.
// A relay just started on a starved machine (a CI run's parallel packages)
// can miss one try's 5 s, so a try that times out is repeated, for up to
// relayInfoFor in all. (The CI failures this was first written for, minutes
// into TestChaos, were most likely the start's context spent on building
// the linksim binary, which Start now does first.)
func relayInfo(ctx context.Context, base string) ([]byte, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, relayInfoFor)
	defer cancel()
	for tries := 1; ; tries++ {
		try, cancelTry := context.WithTimeout(ctx, 5*time.Second)
		resp, err := getRelayInfo(try, base)
		if err == nil {
			key, err := readRelayInfo(resp, base)
			cancelTry()
			return key, err
		}
		cancelTry()
		// Only a try that ran out of time is repeated: a refused
		// connection (a wrong --relay URL) fails at once.
		if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return nil, fmt.Errorf("relay info: %d tries in %v: %w", tries, time.Since(start).Round(time.Millisecond), err)
		}
	}
}

// relayInfoFor bounds relayInfo's tries together.
const relayInfoFor = 2 * time.Minute

func getRelayInfo(ctx context.Context, base string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/relay.json", nil)
	if err != nil {
		return nil, err
	}
	return infoClient.Do(req)
}

// readRelayInfo checks and decodes the answer of /relay.json.
func readRelayInfo(resp *http.Response, base string) ([]byte, error) {
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("relay info: GET %s/relay.json: %s", base, resp.Status)
	}
	var info struct {
		Version  int    `json:"version"`
		NoiseKey string `json:"noise_key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return nil, fmt.Errorf("relay info: %w", err)
	}
	if info.Version != 1 {
		return nil, fmt.Errorf("relay info: protocol version %d, this harness speaks 1", info.Version)
	}
	key, err := base64.StdEncoding.DecodeString(info.NoiseKey)
	if err == nil && len(key) != 32 {
		err = fmt.Errorf("%d bytes, want a 32-byte X25519 key", len(key))
	}
	if err != nil {
		return nil, fmt.Errorf("relay info: noise_key: %w", err)
	}
	return key, nil
}

// waitHealthy polls base/healthz until the relay answers ok.
func waitHealthy(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return Await(ctx, "the relay at "+base+" to be healthy", func() error { return healthy(ctx, base) })
}

// healthy asks base/healthz once.
func healthy(ctx context.Context, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// external is somebody's relay: the harness can talk to it, not control it.
type external struct {
	base string
	key  []byte
}

func dialExternal(ctx context.Context, url string) (*external, error) {
	base := strings.TrimSuffix(strings.TrimSuffix(url, "/"), "/ws")
	base = strings.Replace(strings.Replace(base, "wss://", "https://", 1), "ws://", "http://", 1)
	key, err := relayInfo(ctx, base)
	if err != nil {
		return nil, fmt.Errorf("external relay %s: %w", url, err)
	}
	return &external{base: base, key: key}, nil
}

func (x *external) Kind() string                  { return x.base }
func (x *external) URL() string                   { return x.base }
func (x *external) Key() []byte                   { return x.key }
func (x *external) Restart(context.Context) error { return ErrUnsupported }
func (x *external) Crash(context.Context) error   { return ErrUnsupported }
func (x *external) DataDir() string               { return "" }
func (x *external) Logs() []byte                  { return nil }
func (x *external) Close() error                  { return nil }
