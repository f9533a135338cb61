package scenarios_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/scenarios"
)

func TestScenarios(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "linksim scenarios")
}

// Every flow becomes one spec on a fresh environment: the same functions
// `linksim run` runs.
var _ = func() bool {
	for _, f := range scenarios.All() {
		Describe(f.Feature, func() {
			It(f.Outcome, Label(f.Labels...), func(ctx SpecContext) {
				var cfg harness.Config
				if f.Configure != nil {
					f.Configure(&cfg)
				}
				env := harness.Start(GinkgoT(), cfg)
				Expect(f.Run(ctx, env)).To(Succeed(), f.Name())
			}, SpecTimeout(f.Timeout))
		})
	}
	return true
}()
