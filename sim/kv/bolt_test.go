//go:build !js

package kv

import (
	"path/filepath"
	"testing"
)

func TestBolt(t *testing.T) {
	testKV(t, func(t *testing.T) KV { return openBolt(t, filepath.Join(t.TempDir(), "kv.db")) })
}

func TestBoltReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, b, "signal/identity", "secret")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	wantGet(t, openBolt(t, path), "signal/identity", "secret")
}

func TestBoltLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	openBolt(t, path)
	if b, err := OpenBolt(path); err == nil {
		b.Close()
		t.Error("second OpenBolt of an open file succeeded; want a timeout error")
	}
}

func openBolt(t *testing.T, path string) *Bolt {
	t.Helper()
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestBoltPutBatchIsAllOrNothing: a batch that fails leaves nothing of
// itself behind.
func TestBoltPutBatchIsAllOrNothing(t *testing.T) {
	b := openBolt(t, filepath.Join(t.TempDir(), "kv.db"))
	if err := b.PutBatch([]Entry{{"a", []byte("1")}, {"", []byte("2")}}); err == nil {
		t.Fatal("PutBatch with an empty key succeeded")
	}
	if _, ok, err := b.Get("a"); ok || err != nil {
		t.Errorf("after a failed batch, a is present (%v, %v)", ok, err)
	}
}
