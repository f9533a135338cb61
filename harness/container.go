package harness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/linksim/linksim/sim/relay"
)

// dockerfile wraps the static linksim binary in an empty image: no image is
// ever pulled.
const dockerfile = `FROM scratch
COPY linksim /linksim
EXPOSE 8080
ENTRYPOINT ["/linksim", "relay", "--listen", "0.0.0.0:8080", "--data", "/data", "--log-level", "debug"]
`

// ErrNoDocker means the container backend cannot run here.
var ErrNoDocker = errors.New("docker is not available")

// relayImage is the relay image's build context: a Dockerfile and a static
// linksim binary. The folder and the image tag are named by the binary's
// hash, so runs of one binary share them and runs of different binaries
// (test packages at once, other checkouts) never build over each other.
type relayImage struct{ dir, tag string }

// imageContext makes the relay image's build context once per process.
// The binary is the installed linksim when it is static, so an installed
// binary runs the container backend from anywhere; a source tree is needed
// only to build one.
var imageContext = sync.OnceValues(func() (relayImage, error) {
	img, err := makeImageContext()
	if err != nil {
		return img, fmt.Errorf("relay image: %w", err)
	}
	return img, nil
})

func makeImageContext() (relayImage, error) {
	bin := installedBinary()
	if bin == "" || staticLinux(bin) != nil {
		tmp, err := os.MkdirTemp("", "linksim-build-")
		if err != nil {
			return relayImage{}, err
		}
		defer os.RemoveAll(tmp)
		if bin, err = buildLinksim(context.Background(), filepath.Join(tmp, "linksim")); err != nil {
			return relayImage{}, err
		}
	}
	f, err := os.Open(bin)
	if err != nil {
		return relayImage{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return relayImage{}, err
	}
	tag := hex.EncodeToString(h.Sum(nil))[:16]
	img := relayImage{dir: filepath.Join(os.TempDir(), "linksim-image-"+tag), tag: tag}
	if err := os.MkdirAll(img.dir, 0o755); err != nil {
		return img, err
	}
	if _, err := os.Stat(filepath.Join(img.dir, "linksim")); err != nil {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return img, err
		}
		if err := writeAtomic(filepath.Join(img.dir, "linksim"), 0o755, f); err != nil {
			return img, err
		}
	}
	return img, writeAtomic(filepath.Join(img.dir, "Dockerfile"), 0o644, strings.NewReader(dockerfile))
}

// writeAtomic writes path whole or not at all: another process may be
// reading the same build context.
func writeAtomic(path string, mode os.FileMode, r io.Reader) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// containerRelay is the relay in a container built FROM scratch. Its data
// directory is bind-mounted from this machine, so the harness can inspect
// it, and its port is bound to a fixed loopback port, so restarts keep the
// address devices know.
type containerRelay struct {
	cfg  relay.Config
	logs *lockedBuffer
	c    testcontainers.Container
	base string
	key  []byte
}

func startContainer(ctx context.Context, t TB, cfg relay.Config, logs *lockedBuffer) (*containerRelay, error) {
	if err := dockerHealthy(ctx, tcLogger{t}); err != nil {
		return nil, err
	}
	img, err := imageContext()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	req := testcontainers.ContainerRequest{
		FromDockerfile: testcontainers.FromDockerfile{Context: img.dir, Repo: "linksim-relay", Tag: img.tag, KeepImage: true},
		Cmd:            relayFlags(cfg),
		ExposedPorts:   []string{"8080/tcp"},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.Binds = []string{cfg.DataDir + ":/data"}
			hc.PortBindings = network.PortMap{network.MustParsePort("8080/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(port)}}}
		},
	}
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true, Logger: tcLogger{t}})
	if err != nil {
		if c != nil { // created but not started: it must not outlive us
			c.Terminate(context.Background())
		}
		return nil, fmt.Errorf("start relay container: %w", err)
	}
	r := &containerRelay{cfg: cfg, logs: logs, c: c, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	if err := waitHealthy(ctx, r.base); err != nil {
		logs := r.Logs()
		r.Close()
		return nil, fmt.Errorf("relay container: %w; its log:\n%s", err, logs)
	}
	if r.key, err = relayInfo(ctx, r.base); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// tcLogger sends testcontainers' own chatter (creating, starting, ...) to
// the TB's log, which the CLI shows only with -v.
type tcLogger struct{ t TB }

func (l tcLogger) Printf(format string, args ...any) { l.t.Logf(format, args...) }

// dockerHealthy says whether a Docker engine answers; log gets
// testcontainers' messages.
func dockerHealthy(ctx context.Context, log tclog.Logger) error {
	// testcontainers reads its settings once, at its first use, which is
	// here.
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true") // the reaper image cannot be pulled here
	// Talk to the container only through its loopback port binding, never
	// through a bridge or gateway address.
	os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	p, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(log))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	defer p.Close()
	if err := p.Health(ctx); err != nil {
		return fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (r *containerRelay) Kind() string    { return Container }
func (r *containerRelay) URL() string     { return r.base }
func (r *containerRelay) Key() []byte     { return r.key }
func (r *containerRelay) DataDir() string { return r.cfg.DataDir }

// Logs returns the container's log so far (docker keeps it across restarts).
func (r *containerRelay) Logs() []byte {
	rc, err := r.c.Logs(context.Background())
	if err != nil {
		return []byte(fmt.Sprintf("container logs: %v", err))
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return b
}

func (r *containerRelay) Restart(ctx context.Context) error { return r.cycle(ctx, 10*time.Second) }

// Crash stops the container with no grace period: docker sends SIGKILL.
func (r *containerRelay) Crash(ctx context.Context) error { return r.cycle(ctx, 0) }

func (r *containerRelay) cycle(ctx context.Context, grace time.Duration) error {
	if err := r.c.Stop(ctx, &grace); err != nil {
		return fmt.Errorf("stop relay container: %w", err)
	}
	if err := r.c.Start(ctx); err != nil {
		return fmt.Errorf("start relay container again: %w", err)
	}
	return waitHealthy(ctx, r.base)
}

func (r *containerRelay) Close() error {
	r.logs.Write(r.Logs())
	return r.c.Terminate(context.Background())
}
