package e2e

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealedHistoryOpensOnlyForItsCompanionAndScan(t *testing.T) {
	companion, eve := newStore(t), newStore(t)
	secret := bytes.Repeat([]byte{7}, 32)
	signed := []byte("the scan's signed device identity")
	bundle := bytes.Repeat([]byte("chats and contacts "), 100)

	sealed, err := SealHistory(companion.IdentityKey(), secret, signed, bundle)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != len(bundle)+SealedHistoryOverhead {
		t.Errorf("sealed %d bytes into %d, want %d more", len(bundle), len(sealed), SealedHistoryOverhead)
	}
	if bytes.Contains(sealed, []byte("chats and contacts")) {
		t.Error("the sealed history shows its plaintext")
	}
	if err := companion.WarmUp(); err != nil {
		t.Fatal(err)
	}
	got, err := companion.OpenHistory(secret, signed, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, bundle) {
		t.Fatal("the opened history differs from the sealed one")
	}

	flipped := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	otherSecret := bytes.Repeat([]byte{8}, 32)
	tests := []struct {
		name                   string
		store                  *Store
		secret, signed, sealed []byte
	}{
		{"another companion", eve, secret, signed, sealed},
		{"another QR code's secret", companion, otherSecret, signed, sealed},
		{"another scan's identity", companion, secret, []byte("another identity"), sealed},
		{"altered fresh key", companion, secret, signed, flipped(0)},
		{"altered bundle", companion, secret, signed, flipped(40)},
		{"altered tag", companion, secret, signed, flipped(len(sealed) - 1)},
		{"cut short", companion, secret, signed, sealed[:SealedHistoryOverhead-1]},
		{"empty", companion, secret, signed, nil},
	}
	for _, tt := range tests {
		if _, err := tt.store.OpenHistory(tt.secret, tt.signed, tt.sealed); !errors.Is(err, ErrHistorySeal) {
			t.Errorf("%s: err = %v, want ErrHistorySeal", tt.name, err)
		}
	}
}

func TestSealHistoryRefusesAKeyThatIsNotASignalKey(t *testing.T) {
	companion := newStore(t)
	for _, key := range [][]byte{nil, companion.IdentityKey()[1:], append([]byte{0x06}, companion.IdentityKey()[1:]...)} {
		if _, err := SealHistory(key, make([]byte, 32), nil, []byte("x")); err == nil {
			t.Errorf("sealed to a %d-byte key starting %x", len(key), key[:min(1, len(key))])
		}
	}
}

// Whatever the relay hands over as a sealed history, the companion opens
// it or refuses it with ErrHistorySeal: it never panics, and nothing opens
// but what was sealed for it.
func FuzzOpenHistory(f *testing.F) {
	companion := newStore(f)
	secret := bytes.Repeat([]byte{7}, 32)
	signed := []byte("signed")
	sealed, err := SealHistory(companion.IdentityKey(), secret, signed, []byte("bundle"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Add(sealed[:SealedHistoryOverhead])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := companion.OpenHistory(secret, signed, b)
		switch {
		case err == nil && !bytes.Equal(b, sealed):
			t.Fatalf("opened %d bytes that were never sealed, to %q", len(b), got)
		case err != nil && !errors.Is(err, ErrHistorySeal):
			t.Fatalf("refused with %v, want ErrHistorySeal", err)
		}
	})
}
