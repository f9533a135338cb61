package harness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/linksim/linksim/sim/relay"
)

// binary returns the linksim binary the harness runs: the one
// installedBinary names, or else one built from the module once per process
// (go's build cache makes repeats cheap).
var binary = sync.OnceValues(func() (string, error) {
	if bin := installedBinary(); bin != "" {
		return bin, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", fmt.Errorf("build linksim: %w (set LINKSIM_BIN to a linksim binary)", err)
	}
	return buildLinksim(context.Background(), builtBinaryPath(root))
})

// builtBinaryPath is where the binary built from the checkout at root goes:
// one path per checkout, so that tests of another checkout (a worktree with
// other code) cannot replace it between a relay's stop and its restart.
func builtBinaryPath(root string) string {
	sum := sha256.Sum256([]byte(root))
	return filepath.Join(os.TempDir(), "linksim-harness", hex.EncodeToString(sum[:6]), "linksim")
}

// installedBinary names a linksim binary that needs no build: $LINKSIM_BIN,
// or the running executable when it is the linksim command itself. "" means
// none.
func installedBinary() string {
	if bin := os.Getenv("LINKSIM_BIN"); bin != "" {
		return bin
	}
	if self, err := os.Executable(); err == nil && filepath.Base(self) == "linksim" {
		return self
	}
	return ""
}

// checkBinary says, without building anything, whether the harness can have
// a linksim binary: an installed one (static, if a FROM-scratch image is to
// run it), or the linksim module in the working directory to build from.
func checkBinary(static bool) error {
	if bin := installedBinary(); bin != "" {
		err := runnable(bin)
		if err == nil && static {
			err = staticLinux(bin)
		}
		if err == nil {
			return nil
		}
		if _, modErr := moduleRoot(); modErr != nil {
			return fmt.Errorf("linksim binary: %w; and no module to build another from: %v", err, modErr)
		}
		return nil
	}
	if _, err := moduleRoot(); err != nil {
		return fmt.Errorf("linksim binary: %w (run the linksim command, or set LINKSIM_BIN to a linksim binary)", err)
	}
	return nil
}

func runnable(bin string) error {
	fi, err := os.Stat(bin)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", bin)
	}
	return nil
}

// staticLinux says whether bin is a statically linked Linux executable for
// this machine, which an image FROM scratch can run: no dynamic loader, no
// shared libraries.
func staticLinux(bin string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Errorf("%s is not a Linux executable: %w", bin, err)
	}
	defer f.Close()
	if want := elfMachine[runtime.GOARCH]; want != 0 && f.Machine != want {
		return fmt.Errorf("%s is built for %v, this machine is %s", bin, f.Machine, runtime.GOARCH)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; an image FROM scratch needs a static binary (build it with CGO_ENABLED=0, as make build does)", bin)
		}
	}
	return nil
}

var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "386": elf.EM_386, "arm": elf.EM_ARM}

// moduleRoot is the root of the linksim module the working directory is
// in, found by walking up to its go.mod; building from it also needs the go
// command.
func moduleRoot() (string, error) {
	if _, err := exec.LookPath("go"); err != nil {
		return "", fmt.Errorf("no go command to build linksim with: %w", err)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			if bytes.HasPrefix(b, []byte("module github.com/linksim/linksim\n")) {
				return dir, nil
			}
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("the working directory is not inside the linksim module")
}

// Binary returns the linksim binary the process backend runs, building it
// once when this process is not linksim itself ($LINKSIM_BIN overrides).
func Binary() (string, error) { return binary() }

// buildLinksim builds a static linksim binary at out from the module the
// working directory is in.
func buildLinksim(ctx context.Context, out string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", fmt.Errorf("build linksim: %w (set LINKSIM_BIN to a linksim binary)", err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "./cmd/linksim")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build linksim: %v\n%s", err, b)
	}
	return out, nil
}

// relayFlags turns the relay settings the harness uses into command flags.
func relayFlags(cfg relay.Config) []string {
	var args []string
	add := func(name string, set bool, v string) {
		if set {
			args = append(args, "--"+name, v)
		}
	}
	add("pair-refs", cfg.RefCount > 0, strconv.Itoa(cfg.RefCount))
	add("pair-first-ttl", cfg.RefFirstTTL > 0, cfg.RefFirstTTL.String())
	add("pair-next-ttl", cfg.RefNextTTL > 0, cfg.RefNextTTL.String())
	add("pair-timeout", cfg.PairTimeout > 0, cfg.PairTimeout.String())
	add("idle-timeout", cfg.IdleTimeout > 0, cfg.IdleTimeout.String())
	add("max-companions", cfg.MaxCompanions > 0, strconv.Itoa(cfg.MaxCompanions))
	add("max-media-bytes", cfg.MaxMediaBytes > 0, strconv.FormatInt(cfg.MaxMediaBytes, 10))
	add("media-ttl", cfg.MediaTTL > 0, cfg.MediaTTL.String())
	return append(args, cfg.Limits.Args()...)
}

// process is the relay as a child process: `linksim relay`.
type process struct {
	bin  string
	cfg  relay.Config
	logs *lockedBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	addr string // host:port, fixed after the first start
	key  []byte
}

func startProcess(ctx context.Context, t TB, cfg relay.Config, logs *lockedBuffer) (*process, error) {
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	p := &process{bin: bin, cfg: cfg, logs: logs, addr: "127.0.0.1:0"}
	if err := p.start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// start runs the relay and waits until it serves.
func (p *process) start(ctx context.Context) error {
	args := append([]string{"relay", "--listen", p.addr, "--data", p.cfg.DataDir, "--log-level", "debug"}, relayFlags(p.cfg)...)
	cmd, url, err := runChild(p.bin, args, "linksim relay serving ", p.logs)
	if err != nil {
		return fmt.Errorf("relay process: %w", err)
	}
	p.addr = strings.TrimPrefix(url, "http://")
	key, err := relayInfo(ctx, p.URL())
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("%w; the relay's log ends:\n%s", err, lastLines(p.logs.Bytes(), 20))
	}
	p.cmd, p.key = cmd, key
	return nil
}

// runChild runs the linksim command args and waits until it prints a line
// starting with served; it returns the first word after that prefix (the
// address it serves). Its stderr goes to logs.
func runChild(bin string, args []string, served string, logs *lockedBuffer) (*exec.Cmd, string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logs
	// The child dies with the harness, even one killed: a leftover would
	// hold its data directory and its port.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// A pipe of our own, not StdoutPipe: the reader may outlive Wait.
	stdout, w, err := os.Pipe()
	if err != nil {
		return nil, "", err
	}
	cmd.Stdout = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		stdout.Close()
		return nil, "", fmt.Errorf("start %s: %w", bin, err)
	}
	serving, exited := make(chan string, 1), make(chan struct{})
	go func() {
		defer close(exited)
		defer stdout.Close()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), served); ok {
				serving <- strings.Fields(rest)[0]
			}
		}
	}()
	select {
	case addr := <-serving:
		return cmd, addr, nil
	case <-exited:
		cmd.Wait()
		return nil, "", fmt.Errorf("exited before serving (%v); its log:\n%s", cmd.ProcessState, logs.Bytes())
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return nil, "", fmt.Errorf("did not report its address within 30s; its log:\n%s", logs.Bytes())
	}
}

func (p *process) Kind() string    { return Process }
func (p *process) URL() string     { return "http://" + p.addr }
func (p *process) Key() []byte     { return p.key }
func (p *process) DataDir() string { return p.cfg.DataDir }
func (p *process) Logs() []byte    { return p.logs.Bytes() }

func (p *process) stop(sig syscall.Signal) error { return stopChild(p.cmd, sig) }

// stopChild signals cmd and waits for it to exit, killing it after 15s.
func stopChild(cmd *exec.Cmd, sig syscall.Signal) error {
	if err := cmd.Process.Signal(sig); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return nil
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s ignored %v for 15s and was killed", filepath.Base(cmd.Path), sig)
	}
}

func (p *process) Restart(ctx context.Context) error { return p.cycle(ctx, syscall.SIGTERM) }
func (p *process) Crash(ctx context.Context) error   { return p.cycle(ctx, syscall.SIGKILL) }

func (p *process) cycle(ctx context.Context, sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.stop(sig); err != nil {
		return err
	}
	return p.start(ctx)
}

func (p *process) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stop(syscall.SIGTERM)
}

// lastLines is the last n lines of log.
func lastLines(log []byte, n int) []byte {
	lines := bytes.SplitAfter(bytes.TrimRight(log, "\n"), []byte("\n"))
	return bytes.Join(lines[max(0, len(lines)-n):], nil)
}
