package scenarios_test

import (
	"context"
	"slices"
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
	for _, b := range []string{harness.Process, harness.Container} {
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
// and in a container.
var _ = func() bool {
	for _, f := range scenarios.All() {
		Describe(f.Feature, func() {
			spec(f, "", nil)
			if f.Backends {
				spec(f, harness.Process, Label(scenarios.Process))
				spec(f, harness.Container, Label(scenarios.Container))
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

func spec(f scenarios.Flow, backend string, labels Labels) {
	name := f.Outcome
	if backend != "" {
		name += " (relay: " + backend + ")"
	}
	It(name, Label(f.Labels...), labels, func(ctx SpecContext) {
		cfg := harness.Config{Backend: backend}
		if f.Configure != nil {
			f.Configure(&cfg)
		}
		env := harness.Start(GinkgoT(), cfg)
		Expect(f.Execute(ctx, env)).To(Succeed(), f.Name())
	}, SpecTimeout(f.Timeout))
}
