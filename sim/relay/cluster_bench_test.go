package relay

import (
	"fmt"
	"testing"
)

// BenchmarkSendCluster is BenchmarkSend on relay nodes on one embedded NATS
// server (JetStream on disk, R1): nodes=1 has the senders and the
// recipient on one node, nodes=2 has them on two.
func BenchmarkSendCluster(b *testing.B) {
	for _, nodes := range []int{1, 2} {
		for _, senders := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("nodes=%d/senders=%d", nodes, senders), func(b *testing.B) {
				ns := startNodes(b, nodes)
				rig := newSendRigVia(b, senders, ns[0], ns[nodes-1])
				b.ResetTimer()
				perSec, msPerAck := rig.run(b, b.N)
				b.StopTimer()
				b.ReportMetric(perSec, "deliveries/s")
				b.ReportMetric(msPerAck, "ms/send-ack")
			})
		}
	}
}
