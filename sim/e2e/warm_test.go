package e2e

import "testing"

// TestWarm checks the warm-up goes through a whole session start: a
// failure anywhere (bundle, encrypt, the prekey decrypt) is an error.
func TestWarm(t *testing.T) {
	if err := Warm(); err != nil {
		t.Fatal(err)
	}
}
