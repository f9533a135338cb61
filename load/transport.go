package load

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// transport brings a coordinator its workers: it starts or admits worker
// i, hands it its job and returns the worker with the link its messages
// come over. Two carry the link: a worker process's stdin and stdout
// (stdioTransport) and NATS subjects (natsTransport), which lets workers
// run on other machines. Everything above the link (the job, live
// figures, the stop, the merge of the reports) is the same for both.
type transport interface {
	open(ctx context.Context, i int, job Job) (*worker, error)
	// close lets go of what open set up; the workers must be done.
	close()
}

// newTransport returns the transport opts ask for: NATS when
// opts.NATS.URL is set, else worker processes on stdin and stdout.
func newTransport(ctx context.Context, def Definition, opts Options) (transport, error) {
	if opts.NATS.URL != "" {
		t, err := newNATSTransport(ctx, def.Workers, opts.NATS, opts.Log)
		if err != nil {
			return nil, err
		}
		t.profiles = opts.Profiles
		return t, nil
	}
	command := opts.WorkerCommand
	if command == nil {
		var err error
		if command, err = WorkerCommand(); err != nil {
			return nil, err
		}
	}
	return &stdioTransport{command: command, log: opts.Log, profiles: opts.Profiles}, nil
}

// sourceFor is worker i's source address towards relayURL: its own
// loopback address (workerSource) when the relay listens on loopback, else
// "" for the system's choice, since a loopback source reaches no other
// machine (nor an IPv6 relay).
func sourceFor(i int, relayURL string) string {
	u, err := url.Parse(relayURL)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(u.Hostname()); (ip.IsLoopback() && ip.To4() != nil) || u.Hostname() == "localhost" {
		return workerSource(i)
	}
	return ""
}

// ProfilesEnv names the variable that has a worker process serve Go's
// profiles (net/http/pprof) on the address it holds.
const ProfilesEnv = "LINKSIM_PPROF"

// profileEnv is the environment that has worker i serve its profiles
// next to base ("host:port"): on port+1+i, the coordinator keeping base.
// Empty base (or one without a numeric port) adds nothing.
func profileEnv(base string, i int) []string {
	host, port, err := net.SplitHostPort(base)
	if err != nil {
		return nil
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil
	}
	return []string{ProfilesEnv + "=" + net.JoinHostPort(host, strconv.Itoa(p+1+i))}
}

// process is a worker process this coordinator started.
type process struct {
	cmd    *exec.Cmd
	stderr *tailBuffer
	exited chan struct{}
	err    error // how it exited; read after exited is closed
}

// startProcess runs command as worker i with env added to this
// process's environment, its stdin and stdout nil or the given files (the
// child's ends of pipes; closed here once it runs). Its stderr is kept
// for errors and copied to log.
func startProcess(ctx context.Context, i int, command, env []string, log io.Writer, stdin, stdout *os.File) (*process, error) {
	cmd := exec.CommandContext(ctx, command[0], command[1:]...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	// A worker dies with the coordinator, even one killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &process{cmd: cmd, stderr: &tailBuffer{max: 4096}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if log != nil {
		cmd.Stderr = io.MultiWriter(p.stderr, log)
	}
	// Files, not exec's pipes: Wait then closes nothing the coordinator
	// still reads, so it can run while the link is read.
	if stdin != nil {
		cmd.Stdin = stdin
	}
	if stdout != nil {
		cmd.Stdout = stdout
	}
	err := cmd.Start()
	for _, f := range []*os.File{stdin, stdout} {
		if f != nil {
			f.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("start worker %d: %w", i+1, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// kill ends the process and waits for it.
func (p *process) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// stdioTransport starts each worker as a process (`linksim load
// --worker`) and speaks JSON lines over its stdin and stdout.
type stdioTransport struct {
	command  []string
	log      io.Writer
	profiles string // Options.Profiles
	// reads are the coordinator's ends of the workers' stdout, closed
	// once every worker is done.
	reads []*os.File
}

func (t *stdioTransport) open(ctx context.Context, i int, job Job) (*worker, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	p, err := startProcess(ctx, i, t.command, profileEnv(t.profiles, i), t.log, inR, outW)
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, err
	}
	// The pipes close when the link is done with them: the reader at the
	// worker's exit (EOF), the writer with the process.
	go func() {
		<-p.exited
		inW.Close()
	}()
	t.reads = append(t.reads, outR)
	w := &worker{index: i, conn: newStdioConn(outR, inW), proc: p}
	if err := w.conn.Send(Message{Kind: MsgJob, Job: &job}); err != nil {
		p.kill()
		return nil, fmt.Errorf("worker %d: %w", i+1, err)
	}
	return w, nil
}

func (t *stdioTransport) close() {
	for _, f := range t.reads {
		f.Close()
	}
}
