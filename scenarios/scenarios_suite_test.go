package scenarios_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/scenarios"
)

func TestScenarios(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "linksim scenarios")
}

// The process and container backends need the linksim binary built; build
// it once, before the specs that use it, outside their time limits.
var _ = BeforeSuite(func() {
	for _, b := range []string{harness.Process, harness.Container, harness.ClusterProcess, harness.Cluster} {
		if selected(b) {
			Expect(harness.Prepare(b)).To(Succeed(), "preparing the %s relay backend", b)
		}
	}
	// Browser specs share one Chromium and one build of the web app.
	if browserSpecs() {
		Expect(harness.PrepareBrowsers(context.Background())).To(Succeed(), "building the web app and starting Chromium")
	}
})

var _ = AfterSuite(func() {
	Expect(harness.CloseBrowsers()).To(Succeed(), "closing Chromium")
})

// browserSpecs reports whether the label filter can select a browser flow.
func browserSpecs() bool {
	filter, err := types.ParseLabelFilter(GinkgoLabelFilter())
	return err != nil || slices.ContainsFunc(scenarios.All(), func(f scenarios.Flow) bool {
		return f.HasLabel(scenarios.Browser) && filter(f.Labels)
	})
}

// selected reports whether the label filter can select specs of backend.
func selected(backend string) bool {
	filter, err := types.ParseLabelFilter(GinkgoLabelFilter())
	return err != nil || filter([]string{backend, scenarios.Smoke})
}

// Every flow becomes one spec on a fresh environment (the same functions
// `linksim run` runs) against the relay $LINKSIM_RELAY names, embedded by
// default; flows marked Backends run again against the relay as a process
// and in a container; those, the native reconnect and fault flows, and the
// cluster flows run against a relay cluster of processes and one of
// containers (cluster flows only there).
var _ = func() bool {
	for _, f := range scenarios.All() {
		Describe(f.Feature, func() {
			if !f.HasLabel(scenarios.Cluster) {
				spec(f, "", nil)
			}
			if f.Backends {
				spec(f, harness.Process, Label(scenarios.Process))
				spec(f, harness.Container, Label(scenarios.Container))
			}
			if onClusters(f) {
				spec(f, harness.ClusterProcess, Label(scenarios.Cluster, scenarios.Process))
				spec(f, harness.Cluster, Label(scenarios.Cluster, scenarios.Container))
			}
		})
		// A flow that runs on any topology runs with mirror web clients
		// too (in process only).
		if f.AnyTopology {
			m := scenarios.OnTopology(f, harness.Mirror)
			Describe(m.Feature, func() { spec(m, "", nil) })
		}
	}
	return true
}()

// onClusters says whether the suite runs f against both relay clusters:
// cluster flows, flows run against every backend, and the native reconnect
// and fault flows (devices reconnect and fault paths lead through their
// fronts to whichever node is up) but the media ones, which read and
// damage blobs in one relay's store on disk.
func onClusters(f scenarios.Flow) bool {
	return f.Backends || f.HasLabel(scenarios.Cluster) ||
		(f.HasLabel(scenarios.Reconnect) || f.HasLabel(scenarios.Fault)) && !f.HasLabel(scenarios.Browser) && !f.HasLabel(scenarios.Media)
}

// clusterSpecRuns says whether a spec against a relay cluster runs in
// this suite: a cluster takes seconds to start, so plain `go test` (make
// test) runs only the flows labelled cluster-smoke on it; a label filter
// naming cluster runs them all (make cluster).
func clusterSpecRuns(f scenarios.Flow) bool {
	return f.HasLabel(scenarios.ClusterSmoke) || strings.Contains(GinkgoLabelFilter(), scenarios.Cluster)
}

func spec(f scenarios.Flow, backend string, labels Labels) {
	name := f.Outcome
	if backend != "" {
		name += " (relay: " + backend + ")"
	}
	It(name, Label(f.Labels...), labels, func(ctx SpecContext) {
		if (backend == harness.Cluster || backend == harness.ClusterProcess) && !clusterSpecRuns(f) {
			Skip("the full cluster suite runs with make cluster (-ginkgo.label-filter=cluster)")
		}
		cfg := harness.Config{Backend: backend}
		if f.Configure != nil {
			f.Configure(&cfg)
		}
		env := harness.Start(GinkgoT(), cfg)
		Expect(f.Execute(ctx, env)).To(Succeed(), f.Name())
	}, SpecTimeout(f.Timeout))
}
