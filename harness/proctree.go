package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// processTree returns pid and all its descendants (Linux /proc).
func processTree(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := procStat(p); len(f) > 1 {
			ppid, _ := strconv.Atoi(f[1])
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		out = append(out, queue[0])
		queue = append(queue, children[queue[0]]...)
	}
	return out
}

// procStat returns the fields of /proc/pid/stat after the command name
// (state, ppid, ...), nil if the process is gone.
func procStat(pid int) []string {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
	return strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
}

// treePSS sums the proportional set size of pid and all its descendants,
// from /proc/*/smaps_rollup: shared pages count once over the tree, so it
// is what a browser and its renderers cost together.
func treePSS(pid int) int64 {
	var total int64
	for _, p := range processTree(pid) {
		f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", p))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "Pss:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				total += kb << 10
			}
		}
		f.Close()
	}
	return total
}

// BrowserPSS is the proportional set size of the Chromium this Env's
// browser web clients run in (Config.BrowserLayout), its renderers
// included, starting it first if need be: a load run reads it before and
// after opening its pages for the memory per page.
func (e *Env) BrowserPSS(ctx context.Context) (int64, error) {
	b, err := sharedBrowser(ctx, e.cfg.BrowserLayout)
	if err != nil {
		return 0, err
	}
	return treePSS(b.PID()), nil
}
