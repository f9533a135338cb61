package load

import (
	"bufio"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
)

// Worker GC defaults. A worker's heap is mostly its devices' state, which
// lives as long as the run; with Go's default GOGC=100 the collector runs
// each time the heap doubles over that and took most of a worker's CPU
// under messaging (docs/performance.md, "Worker CPU per message"). So a
// worker lets its heap grow to workerGOGC% over the live heap, within a
// soft limit of its share of the machine's memory.
const (
	workerGOGC = 400
	// memShare is the part of the machine's memory the workers of one
	// machine share; the rest is for the relay and everything else.
	memShare = 0.6
)

// tuneGC sets this process's GC for a worker, one of `workers` on this
// machine, unless the user set GOGC or GOMEMLIMIT (then both are left
// as the runtime read them).
func tuneGC(workers int) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(workerGOGC)
	if mem := machineMemory(); mem > 0 {
		debug.SetMemoryLimit(int64(float64(mem) * memShare / float64(max(workers, 1))))
	}
}

// machineMemory is the memory this process may use: the machine's, or its
// cgroup's limit when lower; 0 when neither can be read.
func machineMemory() uint64 {
	var total uint64
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				total = kibibytes(rest)
				break
			}
		}
		f.Close()
	}
	if raw, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if limit, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64); err == nil && (total == 0 || limit < total) {
			total = limit
		}
	}
	return total
}

// gcSettings describes this process's GC target for a report's meta, as
// the runtime holds it: "GOGC=400 GOMEMLIMIT=7.2GiB".
func gcSettings() string {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(s)
	gogc := "off"
	if p := s[0].Value.Uint64(); p > 0 {
		gogc = strconv.FormatUint(p, 10)
	}
	limit := "none"
	if l := s[1].Value.Uint64(); l < 1<<62 {
		limit = fmt.Sprintf("%.1fGiB", float64(l)/(1<<30))
	}
	return "GOGC=" + gogc + " GOMEMLIMIT=" + limit
}

// peakRSS is the most resident memory this process has had (VmHWM), in
// bytes, or 0 where /proc does not say: what a GC target costs in memory.
func peakRSS() uint64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return kibibytes(rest)
		}
	}
	return 0
}

// kibibytes reads a /proc figure like "  24590000 kB" as bytes.
func kibibytes(field string) uint64 {
	kib, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(field), " kB"), 10, 64)
	return kib << 10
}
