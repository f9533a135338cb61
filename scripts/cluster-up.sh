#!/usr/bin/env bash
# Starts a relay cluster on this machine until Ctrl-C: three NATS servers
# with JetStream on 127.0.0.11-13 and two relay nodes on 127.0.0.21-22, all
# linksim (nats-server is built in). Usage: cluster-up.sh LINKSIM DIR
set -euo pipefail
bin=${1:?usage: cluster-up.sh LINKSIM DIR}
dir=${2:?usage: cluster-up.sh LINKSIM DIR}
mkdir -p "$dir"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
for i in 1 2 3; do
	routes=()
	for j in 1 2 3; do
		[ "$j" = "$i" ] || routes+=("nats-route://127.0.0.1$j:6222")
	done
	"$bin" nats --name "nats-$i" --listen "127.0.0.1$i:4222" --monitor "127.0.0.1$i:8222" \
		--store "$dir/nats-$i" --cluster-name linksim --cluster "127.0.0.1$i:6222" \
		--routes "$(IFS=,; echo "${routes[*]}")" 2>"$dir/nats-$i.log" &
	pids+=($!)
done
# The relay nodes create their streams with three replicas: wait until
# JetStream's meta leader sees both other servers current.
ready() {
	for m in 11 12 13; do
		jsz=$(curl -fs "http://127.0.0.$m:8222/jsz") || continue
		name=nats-$((m - 10))
		leader=$(sed -n 's/.*"leader": "\([^"]*\)".*/\1/p' <<<"$jsz" | head -1)
		if [ -n "$leader" ] && [ "$name" = "$leader" ] && [ "$(grep -c '"current": true' <<<"$jsz")" -ge 2 ]; then
			return 0
		fi
	done
	return 1
}
for _ in $(seq 120); do
	ready && break
	sleep 0.5
done
ready || { echo "the NATS servers formed no JetStream cluster in 60s; see $dir/nats-*.log"; exit 1; }
nats=nats://127.0.0.11:4222,nats://127.0.0.12:4222,nats://127.0.0.13:4222
for n in 1 2; do
	"$bin" relay --listen "127.0.0.2$n:8080" --data "$dir/node-$n" --nats "$nats" --replicas 3 \
		2>"$dir/node-$n.log" &
	pids+=($!)
	until curl -fs "http://127.0.0.2$n:8080/healthz" >/dev/null; do
		kill -0 "${pids[-1]}" || { echo "relay node $n exited; see $dir/node-$n.log"; exit 1; }
		sleep 0.5
	done
done
echo "cluster up: relay nodes http://127.0.0.21:8080/ and http://127.0.0.22:8080/ (logs in $dir); Ctrl-C stops it"
wait
