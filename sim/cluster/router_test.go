package cluster_test

import (
	"testing"

	"github.com/linksim/linksim/sim/route/routetest"
)

func TestRouterConformance(t *testing.T) {
	url := startNATS(t)
	a, b := openNode(t, url), openNode(t, url)
	if err := routetest.Check(a, b); err != nil {
		t.Fatalf("NATS router, two nodes:\n%v", err)
	}
}
