package cluster

// ForceReconnect makes the node drop its NATS connection and connect again,
// as when its server goes away.
func (n *Node) ForceReconnect() error { return n.nc.ForceReconnect() }
