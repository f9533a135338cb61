package relay

import (
	"fmt"
	"testing"
	"time"
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

// BenchmarkConnectCluster counts what one node sends NATS when a linked
// device reconnects (connect, Hello, its empty queue read, hang up) and
// when a user registers a phone and links a companion: the requests that
// a reconnect storm multiplies (issue 10). The nodes are on one embedded
// NATS server (R1).
func BenchmarkConnectCluster(b *testing.B) {
	b.Run("reconnect", func(b *testing.B) {
		nats := startNATS(b)
		n := startNodesOn(b, nats, 1)[0]
		web := link(b, n, phone(b, n, "alice", "+15550100"), "alice-web")
		web.hangUp()
		b.ResetTimer()
		before := nats.InMsgs()
		for range b.N {
			c := web.twin()
			c.connect(n)
			c.hello()
			c.hangUp()
		}
		time.Sleep(100 * time.Millisecond) // the last pusher's read and detach
		b.StopTimer()
		b.ReportMetric(float64(nats.InMsgs()-before)/float64(b.N), "nats-msgs/connect")
	})
	b.Run("link", func(b *testing.B) {
		nats := startNATS(b)
		n := startNodesOn(b, nats, 1)[0]
		b.ResetTimer()
		before := nats.InMsgs()
		for i := range b.N {
			p := phone(b, n, "p", fmt.Sprintf("+1555%07d", i))
			link(b, n, p, "web").hangUp()
			p.hangUp()
		}
		time.Sleep(100 * time.Millisecond)
		b.StopTimer()
		b.ReportMetric(float64(nats.InMsgs()-before)/float64(b.N), "nats-msgs/link")
	})
}
