package load

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// The coordinator-worker link. A coordinator sends each worker one job and,
// maybe, a stop; a worker answers with a progress snapshot every second and
// one result (its report.json) or failure. Every message is a JSON
// document, so the link does not care how it is carried: over a worker's
// stdin and stdout (stdioConn) or over NATS subjects (natslink.go), so
// workers can sit on other machines.

// Message kinds.
const (
	MsgJob      = "job"      // coordinator -> worker: what to run
	MsgStop     = "stop"     // coordinator -> worker: end the actions now (abort-on-fail)
	MsgProgress = "progress" // worker -> coordinator: live figures
	MsgResult   = "result"   // worker -> coordinator: its report and final figures; the worker then exits
	MsgFailed   = "failed"   // worker -> coordinator: it could not run; Error says why
)

// Message is one message between a coordinator and a worker.
type Message struct {
	Kind     string          `json:"kind"`
	Job      *Job            `json:"job,omitzero"`
	Progress *Snapshot       `json:"progress,omitzero"`
	Report   json.RawMessage `json:"report,omitzero"`
	Error    string          `json:"error,omitzero"`
}

// Job is a worker's share of a run: the definition (its Relay the URL of
// the relay the coordinator started) and which users it runs.
type Job struct {
	Definition Definition `json:"definition"`
	Shard      Shard      `json:"shard"`
}

// Conn is one end of a coordinator-worker link. Send is safe for
// concurrent use; Receive is called from one goroutine.
type Conn interface {
	Send(Message) error
	Receive() (Message, error)
}

// stdioConn carries messages as JSON lines over a pair of pipes.
type stdioConn struct {
	dec *json.Decoder

	mu  sync.Mutex
	enc *json.Encoder
}

func newStdioConn(r io.Reader, w io.Writer) *stdioConn {
	return &stdioConn{dec: json.NewDecoder(r), enc: json.NewEncoder(w)}
}

func (c *stdioConn) Send(m Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.enc.Encode(m); err != nil {
		return fmt.Errorf("send %s: %w", m.Kind, err)
	}
	return nil
}

func (c *stdioConn) Receive() (Message, error) {
	var m Message
	if err := c.dec.Decode(&m); err != nil {
		return m, err
	}
	return m, nil
}
