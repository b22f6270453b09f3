#!/usr/bin/env bash
# Runs tend's benchmarks: builds the demo image and the tend binary, then measures
# crash-to-serving recovery (bench/recovery), stack start-up (bench/up), the
# replacement of a sick replica (bench/heal) and tend's proxy under load and while
# replicas are killed (bench/traffic) against their peers in one go, printing every
# figure; on request (BENCHES=soak) also whether requests survive replicas dying on a
# plain published port, tend against nginx (bench/soak). Run as root from anywhere:
#
#   bench/run.sh                    # everything, defaults below
#   TRIALS=7 ROUNDS=3 bench/run.sh  # fewer trials / rounds
#   PEERS=always,swarm-0s bench/run.sh
#   BENCHES=heal bench/run.sh       # only the heal benchmark
#   BENCHES=traffic TRAFFIC_ROUNDS=1 bench/run.sh
#   BENCHES=soak bench/run.sh       # the soak benchmark alone (about 9 minutes)
#   BENCHES=crash bench/run.sh      # crash safety: 200 SIGKILLs of tend (about 6 minutes)
#   BENCHES=chaos bench/run.sh      # the demo stack under load while tend chaos breaks it (about 5 minutes)
#   BENCHES=cluster bench/run.sh    # three Docker hosts: node loss and partition, tend against Swarm (about 8 minutes)
#
# Settings (environment): BENCHES (which to run, comma-separated, default
# recovery,up,heal,traffic), TRIALS (crashes per peer, default 9), ROUNDS (up/down
# rounds per peer, default 3), PEERS (recovery peers, default always,swarm,swarm-0s,tend),
# SWARM_NET (overlay or bridge, default overlay), HEALTH (services with a health check in
# the up benchmark, default 0), HEAL_TRIALS (sick replicas per peer, default 5),
# HEAL_PEERS (heal peers, default tend,tend-hc,swarm-0s,swarm,docker), TRAFFIC_ROUNDS (wrk
# rounds per target, default 3), CRASH_ITERATIONS (bench/crash kills, default 200), CHAOS_KILL_FOR and CHAOS_MIX_FOR (bench/chaos's two parts, default 60s and 105s), SOAK_ROUNDS (bench/soak rounds with a kill every 2 s,
# default 20). bench/traffic and bench/soak drive wrk and nginx: bench/traffic/tools.sh
# installs them with apt-get when they are missing. Everything the benchmarks create is
# removed at the end.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
go="${GO:-go}"
if ! command -v "$go" >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
	go=/usr/local/go/bin/go
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "bench/run.sh: run as root (the recovery benchmark resets neighbour-cache entries)" >&2
	exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "== building tend-demo:dev (examples/demo/build.sh)"
examples/demo/build.sh

echo "== building tend"
tend="$tmp/tend"
if ! CGO_ENABLED=0 "$go" build -o "$tend" ./cmd/tend 2>"$tmp/tend-build.log"; then
	echo "tend does not build; its rows are skipped. Build errors:"
	sed -n '1,20p' "$tmp/tend-build.log"
	tend=""
fi

echo "== building the benchmarks"
"$go" build -o "$tmp/recovery" ./bench/recovery
"$go" build -o "$tmp/up" ./bench/up
"$go" build -o "$tmp/heal" ./bench/heal
"$go" build -o "$tmp/traffic" ./bench/traffic
"$go" build -o "$tmp/soak" ./bench/soak
"$go" build -o "$tmp/crash" ./bench/crash
"$go" build -o "$tmp/chaos" ./bench/chaos
"$go" build -o "$tmp/cluster" ./bench/cluster
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n $(git status --porcelain -- cmd internal go.mod go.sum 2>/dev/null) ]]; then
	commit="$commit with uncommitted changes"
fi

benches=",${BENCHES:-recovery,up,heal,traffic},"
rc=0
if [[ $benches == *,recovery,* ]]; then
	echo
	echo "== recovery: crash -> serving again"
	"$tmp/recovery" -trials "${TRIALS:-9}" -peers "${PEERS:-always,swarm,swarm-0s,tend}" \
		-swarm-net "${SWARM_NET:-overlay}" -tend "$tend" || rc=1
fi
if [[ $benches == *,up,* ]]; then
	echo
	echo "== up: 20 services / 50 containers"
	"$tmp/up" -rounds "${ROUNDS:-3}" -health "${HEALTH:-0}" -tend "$tend" || rc=1
fi
if [[ $benches == *,heal,* ]]; then
	echo
	echo "== heal: sick replica -> replaced"
	"$tmp/heal" -trials "${HEAL_TRIALS:-5}" -peers "${HEAL_PEERS:-tend,tend-hc,swarm-0s,swarm,docker}" \
		-tend "$tend" || rc=1
fi
if [[ $benches == *,traffic,* ]]; then
	echo
	echo "== traffic: tend's proxy against nginx, and requests while replicas are killed"
	if bench/traffic/tools.sh; then
		"$tmp/traffic" -rounds "${TRAFFIC_ROUNDS:-3}" -tend "$tend" || rc=1
	else
		echo "bench/traffic: wrk and nginx could not be installed; not measured"
		rc=1
	fi
fi
if [[ $benches == *,soak,* ]]; then
	echo
	echo "== soak: requests while replicas die, plain published port, tend against nginx"
	if bench/traffic/tools.sh; then
		"$tmp/soak" -rounds "${SOAK_ROUNDS:-20}" -tend "$tend" -tend-commit "$commit" || rc=1
	else
		echo "bench/soak: nginx could not be installed; not measured"
		rc=1
	fi
fi
if [[ $benches == *,crash,* ]]; then
	echo
	echo "== crash: tend SIGKILLed during up, scale, replacement and down"
	"$tmp/crash" -iterations "${CRASH_ITERATIONS:-200}" -tend "$tend" || rc=1
fi
if [[ $benches == *,chaos,* ]]; then
	echo
	echo "== chaos: the demo stack under load while tend chaos kills, then mixes every fault"
	"$tmp/chaos" -tend "$tend" -kill-for "${CHAOS_KILL_FOR:-60s}" -mix-for "${CHAOS_MIX_FOR:-105s}" || rc=1
fi
if [[ $benches == *,cluster,* ]]; then
	echo
	echo "== cluster: three Docker hosts, a node's power loss and a partition, tend against Swarm"
	"$tmp/cluster" -tend "$tend" -rounds "${CLUSTER_ROUNDS:-3}" || rc=1
fi
exit "$rc"
