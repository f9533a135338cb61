//go:build !js

package wire

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/linksim/linksim/sim/wire/pb"
)

// echoServer accepts Noise connections and echoes every frame back.
func echoServer(t *testing.T, key KeyPair) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c, err := Accept(r.Context(), ws, key)
		if err != nil {
			return
		}
		for {
			f, err := c.ReadFrame(r.Context())
			if err != nil {
				return
			}
			if err := c.WriteFrame(r.Context(), f); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func mustKey(t *testing.T) KeyPair {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestConnRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	relay := mustKey(t)
	url := echoServer(t, relay)
	c, err := Dial(ctx, url, mustKey(t), relay.Public)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if !bytes.Equal(c.RemoteKey(), relay.Public) {
		t.Fatalf("remote key %x, want %x", c.RemoteKey(), relay.Public)
	}
	// Sizes around the Noise segment boundary and a multi-segment frame.
	for _, size := range []int{0, 1, segment - 20, segment, segment + 1, 3*segment + 7, MaxFrame - 64} {
		body := bytes.Repeat([]byte{0xAB}, size)
		in := &pb.Frame{Id: uint64(size + 1), Body: &pb.Frame_Delivery{Delivery: &pb.Delivery{Seq: 7, Item: &pb.Delivery_Message{Message: &pb.Message{Ciphertext: body}}}}}
		if err := c.WriteFrame(ctx, in); err != nil {
			t.Fatalf("size %d: write: %v", size, err)
		}
		out, err := c.ReadFrame(ctx)
		if err != nil {
			t.Fatalf("size %d: read: %v", size, err)
		}
		if out.Id != in.Id || !bytes.Equal(out.GetDelivery().GetMessage().GetCiphertext(), body) {
			t.Fatalf("size %d: frame changed in transit", size)
		}
	}
}

func TestDialRejectsUnpinnedRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := echoServer(t, mustKey(t))
	_, err := Dial(ctx, url, mustKey(t), mustKey(t).Public)
	if !errors.Is(err, ErrRelayKey) {
		t.Fatalf("dial with wrong pinned key: got %v, want ErrRelayKey", err)
	}
}

func TestWriteFrameRefusesOversized(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	relay := mustKey(t)
	c, err := Dial(ctx, echoServer(t, relay), mustKey(t), relay.Public)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	big := &pb.Frame{Body: &pb.Frame_Delivery{Delivery: &pb.Delivery{Item: &pb.Delivery_Message{Message: &pb.Message{Ciphertext: make([]byte, MaxFrame)}}}}}
	if err := c.WriteFrame(ctx, big); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized write: got %v, want ErrFrameTooLarge", err)
	}
}
