package wire

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/flynn/noise"

	"github.com/linksim/linksim/sim/wire/pb"
)

// Prologue binds the handshake to this protocol version: a peer speaking
// another version fails the handshake instead of misreading frames.
const Prologue = "linksim/1"

// segment is the largest plaintext one Noise transport message may carry
// (noise.MaxMsgLen includes the 16-byte AEAD tag).
const segment = noise.MaxMsgLen - 16

var suite = noise.NewCipherSuite(noise.DH25519, noise.CipherAESGCM, noise.HashSHA256)

// ErrRelayKey means the relay proved a static key other than the pinned one.
var ErrRelayKey = errors.New("relay static key does not match the pinned key")

// KeyPair is a Noise static key pair (Curve25519).
type KeyPair = noise.DHKey

// GenerateKey makes a new static key pair.
func GenerateKey() (KeyPair, error) {
	return suite.GenerateKeypair(rand.Reader)
}

// Conn is an established, encrypted frame connection. Reads must come from one
// goroutine; writes may come from many.
type Conn struct {
	ws        socket
	remoteKey []byte
	writeMu   sync.Mutex
	send      *noise.CipherState
	recv      *noise.CipherState
}

// Dial connects to a relay's WebSocket URL (ws://host/ws) as the device whose
// static key is local, and checks that the relay proves relayKey.
func Dial(ctx context.Context, url string, local KeyPair, relayKey []byte) (*Conn, error) {
	return DialVia(ctx, url, nil, local, relayKey)
}

// DialFunc opens the TCP connection under a WebSocket, as net.Dialer's
// DialContext does.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// DialVia is Dial with the TCP connection opened by dial (nil: the default
// dialer), e.g. from a chosen source address.
func DialVia(ctx context.Context, url string, dial DialFunc, local KeyPair, relayKey []byte) (*Conn, error) {
	ws, err := dialSocket(ctx, url, dial)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	c, err := handshake(ctx, ws, local, relayKey)
	if errors.Is(err, ErrRelayKey) {
		ws.close(statusPolicyViolation, "relay key mismatch")
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	if err != nil {
		ws.close(statusProtocolError, "handshake failed")
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	return c, nil
}

// handshake runs Noise XX: -> e; <- e, ee, s, es; -> s, se. Each handshake
// message is one binary WebSocket message. The initiator passes the
// responder's pinned key, checked as soon as message 2 proves it: before
// message 3 reveals the initiator's own static key to an impostor.
func handshake(ctx context.Context, ws socket, local KeyPair, pinned []byte) (*Conn, error) {
	initiator := pinned != nil
	ws.setReadLimit(messageLimit(MaxFrame))
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   suite,
		Pattern:       noise.HandshakeXX,
		Initiator:     initiator,
		Prologue:      []byte(Prologue),
		StaticKeypair: local,
	})
	if err != nil {
		return nil, fmt.Errorf("noise handshake: %w", err)
	}
	var cs1, cs2 *noise.CipherState
	for step := 0; step < 3; step++ {
		writing := (step%2 == 0) == initiator
		if writing {
			var msg []byte
			msg, cs1, cs2, err = hs.WriteMessage(nil, nil)
			if err != nil {
				return nil, fmt.Errorf("noise handshake step %d: %w", step+1, err)
			}
			if err := ws.write(ctx, msg); err != nil {
				return nil, fmt.Errorf("noise handshake step %d: %w", step+1, err)
			}
			continue
		}
		msg, err := ws.read(ctx)
		if err != nil {
			return nil, fmt.Errorf("noise handshake step %d: %w", step+1, err)
		}
		if _, cs1, cs2, err = hs.ReadMessage(nil, msg); err != nil {
			return nil, fmt.Errorf("noise handshake step %d: %w", step+1, err)
		}
		if initiator && !bytes.Equal(hs.PeerStatic(), pinned) {
			return nil, ErrRelayKey
		}
	}
	c := &Conn{ws: ws, remoteKey: hs.PeerStatic()}
	// cs1 encrypts initiator -> responder, cs2 the other way.
	if initiator {
		c.send, c.recv = cs1, cs2
	} else {
		c.send, c.recv = cs2, cs1
	}
	return c, nil
}

// messageLimit is the largest WebSocket message that can hold a frame of n
// bytes, segmented and encrypted.
func messageLimit(n int) int64 { return int64(n + n/segment*16 + 64) }

// SetFrameLimit makes ReadFrame refuse, before decrypting it, a message
// that cannot hold a frame of at most n bytes (n is capped at MaxFrame): the
// read fails (natively with an error wrapping websocket.ErrMessageTooBig)
// and the WebSocket is closed with status 1009. It takes effect from the next
// message.
func (c *Conn) SetFrameLimit(n int) { c.ws.setReadLimit(messageLimit(min(n, MaxFrame))) }

// RemoteKey is the static key the peer proved in the handshake.
func (c *Conn) RemoteKey() []byte { return c.remoteKey }

// WriteFrame encodes, encrypts and sends one frame as one WebSocket message.
// Frames longer than a Noise message are split into consecutive segments.
func (c *Conn) WriteFrame(ctx context.Context, f *pb.Frame) error {
	plain, err := Encode(f)
	if err != nil {
		return err
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	out := make([]byte, 0, len(plain)+(len(plain)/segment+1)*16)
	for first := true; first || len(plain) > 0; first = false {
		n := min(len(plain), segment)
		if out, err = c.send.Encrypt(out, nil, plain[:n]); err != nil {
			return fmt.Errorf("encrypt frame: %w", err)
		}
		plain = plain[n:]
	}
	return c.ws.write(ctx, out)
}

// ReadFrame receives, decrypts and decodes the next frame.
func (c *Conn) ReadFrame(ctx context.Context) (*pb.Frame, error) {
	msg, err := c.ws.read(ctx)
	if err != nil {
		return nil, err
	}
	plain := make([]byte, 0, len(msg))
	for len(msg) > 0 {
		n := min(len(msg), noise.MaxMsgLen)
		if plain, err = c.recv.Decrypt(plain, nil, msg[:n]); err != nil {
			return nil, fmt.Errorf("decrypt frame: %w", err)
		}
		msg = msg[n:]
	}
	return Decode(plain)
}

// Close closes the connection with a normal status and a reason for the peer.
func (c *Conn) Close(reason string) error {
	return c.ws.close(statusNormalClosure, reason)
}

// CloseNow drops the connection without a closing handshake.
func (c *Conn) CloseNow() error { return c.ws.closeNow() }
