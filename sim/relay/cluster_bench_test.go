package relay

import (
	"fmt"
	"testing"
)

// BenchmarkSendCluster is BenchmarkSend on relay nodes on one embedded NATS
// server (JetStream on disk, R1): nodes=1 has the senders and the
// recipient on one node, nodes=2 has them on two. nats-msgs/msg counts
// what the nodes sent NATS per message (each a round trip but the pokes).
func BenchmarkSendCluster(b *testing.B) {
	for _, nodes := range []int{1, 2} {
		for _, senders := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("nodes=%d/senders=%d", nodes, senders), func(b *testing.B) {
				nats := startNATS(b)
				ns := startNodesOn(b, nats, nodes)
				rig := newSendRigVia(b, senders, ns[0], ns[nodes-1])
				b.ResetTimer()
				before := nats.InMsgs()
				perSec, msPerAck := rig.run(b, b.N)
				b.StopTimer()
				b.ReportMetric(perSec, "deliveries/s")
				b.ReportMetric(msPerAck, "ms/send-ack")
				// Requests and publishes the nodes made per message:
				// send, poke, delivery and ack.
				b.ReportMetric(float64(nats.InMsgs()-before)/float64(b.N), "nats-msgs/msg")
			})
		}
	}
}
