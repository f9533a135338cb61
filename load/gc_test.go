package load

import (
	"fmt"
	"math"
	"runtime/debug"
	"testing"
)

// TestWorkerGCTarget checks the default a worker sets, and that a GOGC or
// GOMEMLIMIT of the user's leaves the runtime's settings alone.
func TestWorkerGCTarget(t *testing.T) {
	percent, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
	mem := machineMemory()
	if mem == 0 {
		t.Fatal("machineMemory: 0; /proc/meminfo unreadable")
	}

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	tuneGC(2)
	want := fmt.Sprintf("GOGC=%d GOMEMLIMIT=%.1fGiB", workerGOGC, float64(int64(float64(mem)*memShare/2))/(1<<30))
	if got := gcSettings(); got != want {
		t.Errorf("two workers, no GOGC or GOMEMLIMIT: %s, want %s", got, want)
	}

	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
		t.Setenv(env, "200") // read by the runtime at start only; here it only has to be set
		tuneGC(2)
		if got := gcSettings(); got != "GOGC=100 GOMEMLIMIT=none" {
			t.Errorf("%s set by the user: %s, want the runtime's settings left as they were (GOGC=100 GOMEMLIMIT=none)", env, got)
		}
		t.Setenv(env, "")
	}
}
