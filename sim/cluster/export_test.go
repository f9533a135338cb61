package cluster

// ForceReconnect makes the node drop its NATS connection and connect again,
// as when its server goes away.
func (n *Node) ForceReconnect() error { return n.nc.ForceReconnect() }

// EndAccountWatch ends the node's watch of the accounts bucket, as nats.go
// does when it cannot make the watch's consumer again.
func (n *Node) EndAccountWatch() {
	if w := n.accountWatch.Load(); w != nil {
		(*w).Stop()
	}
}
