package main

import (
	"strings"
	"testing"
)

func TestNatsFlagsRefuseIncompleteClusters(t *testing.T) {
	for _, c := range []struct {
		flags natsFlags
		want  string
	}{
		{natsFlags{listen: "127.0.0.1:4222", store: "d", clusterName: "c"}, "need --cluster"},
		{natsFlags{listen: "127.0.0.1:4222", store: "d", routes: []string{"nats-route://127.0.0.1:6223"}}, "need --cluster"},
		{natsFlags{listen: "127.0.0.1:4222", store: "d", clusterListen: "127.0.0.1:6222"}, "needs --cluster-name"},
		{natsFlags{listen: "127.0.0.1:4222", store: "d", clusterName: "c", clusterListen: "127.0.0.1:6222", routes: []string{"127.0.0.1:6223"}}, "want nats-route://"},
		{natsFlags{listen: "4222", store: "d"}, "--listen"},
		{natsFlags{listen: "127.0.0.1:4222"}, "--store"},
	} {
		_, err := c.flags.options()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error saying %q", c.flags, err, c.want)
		}
	}
}

func TestNatsFlagsMakeAClusterServer(t *testing.T) {
	nf := natsFlags{listen: "127.0.0.11:0", store: "d", clusterName: "c", clusterListen: "127.0.0.11:6222",
		routes: []string{"nats-route://127.0.0.12:6222", "nats-route://127.0.0.13:6222"}}
	opts, err := nf.options()
	if err != nil {
		t.Fatal(err)
	}
	if opts.ServerName != "nats-127-0-0-11-0" || opts.Port != -1 || !opts.JetStream || opts.Cluster.Name != "c" ||
		opts.Cluster.Port != 6222 || len(opts.Routes) != 2 || opts.Routes[1].Host != "127.0.0.13:6222" {
		t.Errorf("options: name %q port %d jetstream %v cluster %q:%d routes %v", opts.ServerName, opts.Port,
			opts.JetStream, opts.Cluster.Name, opts.Cluster.Port, opts.Routes)
	}
}
