package load

import (
	"slices"
	"testing"
)

// TestProfileEnv checks the addresses the workers serve profiles on.
func TestProfileEnv(t *testing.T) {
	for _, tc := range []struct {
		base string
		i    int
		want []string
	}{
		{"127.0.0.1:6060", 0, []string{"LINKSIM_PPROF=127.0.0.1:6061"}},
		{"127.0.0.1:6060", 2, []string{"LINKSIM_PPROF=127.0.0.1:6063"}},
		{"[::1]:6060", 1, []string{"LINKSIM_PPROF=[::1]:6062"}},
		{"", 0, nil},
		{"localhost", 0, nil},
	} {
		if got := profileEnv(tc.base, tc.i); !slices.Equal(got, tc.want) {
			t.Errorf("profileEnv(%q, %d) = %q, want %q", tc.base, tc.i, got, tc.want)
		}
	}
}
