package e2e

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestQRRoundTrip(t *testing.T) {
	q := QR{
		Ref:         "2@Xk3_9-abc",
		NoiseKey:    bytes.Repeat([]byte{1}, 32),
		IdentityKey: newStore(t).IdentityKey(),
		AdvSecret:   bytes.Repeat([]byte{3}, 32),
	}
	s := q.String()
	if !strings.HasPrefix(s, "v1,2@Xk3_9-abc,") {
		t.Errorf("QR text %q does not start with v1,<ref>,", s)
	}
	got, err := ParseQR(s)
	if err != nil {
		t.Fatal(err)
	}
	if got.Ref != q.Ref || !bytes.Equal(got.NoiseKey, q.NoiseKey) ||
		!bytes.Equal(got.IdentityKey, q.IdentityKey) || !bytes.Equal(got.AdvSecret, q.AdvSecret) {
		t.Errorf("ParseQR(%q) = %+v, want %+v", s, got, q)
	}
}

func TestParseQRErrors(t *testing.T) {
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	k32, k33 := b64(32), b64(33)
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "version"},
		{"wrong version", "v2,ref," + k32 + "," + k33 + "," + k32, `version "v2"`},
		{"too few fields", "v1,ref," + k32 + "," + k33, "4 fields, want 5"},
		{"too many fields", "v1,ref," + k32 + "," + k33 + "," + k32 + ",x", "6 fields, want 5"},
		{"empty ref", "v1,," + k32 + "," + k33 + "," + k32, "empty ref"},
		{"ref with a space", "v1,a b," + k32 + "," + k33 + "," + k32, "byte 0x20 at 1"},
		{"ref not ASCII", "v1,réf," + k32 + "," + k33 + "," + k32, "want printable ASCII"},
		{"long ref", "v1," + strings.Repeat("r", 65) + "," + k32 + "," + k33 + "," + k32, "ref of 65 bytes"},
		{"line break in base64", "v1,ref," + k32[:10] + "\n" + k32[10:] + "," + k33 + "," + k32, "noise key: not canonical"},
		{"stray low bits", "v1,ref," + k32[:42] + "B=," + k33 + "," + k32, "noise key: not canonical"},
		{"bad base64", "v1,ref,!!!," + k33 + "," + k32, "noise key: bad base64"},
		{"unpadded base64", "v1,ref," + strings.TrimRight(k32, "=") + "," + k33 + "," + k32, "noise key: bad base64"},
		{"identity key garbage", "v1,ref," + k32 + "," + k33 + "x," + k32, "identity key: bad base64"},
		{"url base64", "v1,ref," + k32 + "," + k33 + "," + strings.Repeat("_", 43) + "=", "adv secret: bad base64"},
		{"short noise key", "v1,ref," + b64(31) + "," + k33 + "," + k32, "noise key is 31 bytes, want 32"},
		{"32-byte identity key", "v1,ref," + k32 + "," + k32 + "," + k32, "identity key is 32 bytes, want 33"},
		{"long adv secret", "v1,ref," + k32 + "," + k33 + "," + b64(64), "adv secret is 64 bytes, want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseQR(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseQR(%q) = %v, want an error containing %q", tt.in, err, tt.want)
			}
		})
	}
}
