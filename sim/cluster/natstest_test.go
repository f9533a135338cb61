package cluster_test

import (
	"testing"

	"github.com/linksim/linksim/sim/cluster/natstest"
)

// startNATS runs an embedded NATS server for the test and returns its URL.
func startNATS(t testing.TB) string {
	t.Helper()
	s, err := natstest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s.URL()
}
