package route_test

import (
	"strings"
	"testing"

	"github.com/linksim/linksim/sim/route"
	"github.com/linksim/linksim/sim/route/routetest"
)

func TestLocalConformance(t *testing.T) {
	l := route.NewLocal()
	if err := routetest.Check(l, l); err != nil {
		t.Fatalf("in-process router:\n%v", err)
	}
}

// deaf is a router that loses events sent to a whole user.
type deaf struct{ *route.Local }

func (deaf) SendUser(string, route.Event) error { return nil }

func TestConformanceCatchesABrokenRouter(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for events that never come")
	}
	r := deaf{route.NewLocal()}
	err := routetest.Check(r, r)
	if err == nil || !strings.Contains(err.Error(), "user event at the device") {
		t.Fatalf("check of a router that loses user events: %v; want a line about the user event", err)
	}
}
