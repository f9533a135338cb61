package e2e

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseQR checks that no text makes ParseQR panic, and that whatever it
// accepts has exactly one spelling: the payload QR.String writes back, with a
// ref a PairScan can carry (printable ASCII, no comma).
func FuzzParseQR(f *testing.F) {
	b64 := base64.StdEncoding.EncodeToString
	k32, k33 := b64(bytes.Repeat([]byte{7}, 32)), b64(append([]byte{5}, bytes.Repeat([]byte{9}, 32)...))
	for _, s := range []string{
		"v1,2@Xk3_9-abc," + k32 + "," + k33 + "," + k32,
		"v1,AAAAAAAAAAAAAAAAAAAAAA," + k32 + "," + k33 + "," + k32,
		"v1,ref," + k32 + "," + k33,
		"v2,ref," + k32 + "," + k33 + "," + k32,
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQR(s)
		if err != nil {
			return
		}
		if again := q.String(); again != s {
			t.Fatalf("ParseQR accepted %q, which writes back as %q", s, again)
		}
		if !utf8.ValidString(q.Ref) || strings.ContainsAny(q.Ref, ", \t\r\n") {
			t.Fatalf("ParseQR accepted ref %q, which a PairScan cannot carry as is", q.Ref)
		}
	})
}
