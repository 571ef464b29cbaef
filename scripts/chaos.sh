#!/usr/bin/env bash
# The chaos harness: the cluster example on hosts of its own (network namespaces on a
# private bridge) under steady load, with kills, partitions and loss from a seeded schedule.
#
#   scripts/chaos.sh [--duration SECS] [--seed N] [--out DIR] [--release]
#
# Needs root, iproute2 (`ip netns`) and iptables. It builds the example's binaries, makes
# six namespaces named after this run (a hub holding the bridge, the director, three
# workers, the load), runs `chaos run` (examples/cluster/src/bin/chaos/), which prints the
# summary and exits non-zero if a check fails, and removes every namespace it made (with
# the processes, links and rules inside them) when it ends, fails or is interrupted.
# Nothing is changed in the host's own namespace; the addresses (10.231.0.0/24) exist
# only on the run's bridge.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=60
seed=1
out=""
profile=debug
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --release) profile=release; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "chaos.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$duration$seed" in
  *[!0-9]*) echo "chaos.sh: --duration and --seed take whole numbers" >&2; exit 2 ;;
esac

refuse() { echo "chaos.sh: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || refuse "needs root: it creates network namespaces and iptables rules (run it with sudo, or as root in CI)"
command -v ip >/dev/null || refuse "needs ip (iproute2)"
command -v iptables >/dev/null || refuse "needs iptables (Debian package iptables)"

run="cx$(printf '%04x' $((RANDOM)))$$"
subnet=10.231.0
hub="$run-hub"
hosts=(director w1 w2 w3 load)
addrs=(2 11 12 13 20)
made=()
runner=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$runner" ] && kill -0 "$runner" 2>/dev/null; then
    kill "$runner" 2>/dev/null || true
    wait "$runner" 2>/dev/null || true
  fi
  for ns in "${made[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  done
  for ns in "${made[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  [ ${#made[@]} -eq 0 ] || echo "chaos.sh: removed namespaces ${made[*]}"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> building the example (${profile})"
build=(cargo build -p rpcnet-cluster-example --bins)
[ "$profile" = release ] && build+=(--release)
"${build[@]}"
bin="target/${profile}"

echo "==> making namespaces ${run}-*"
ip netns add "$hub" || refuse "cannot create a network namespace (needs root and a kernel with network namespaces)"
made+=("$hub")
ip -n "$hub" link add br0 type bridge
ip -n "$hub" link set br0 up
for i in "${!hosts[@]}"; do
  ns="$run-${hosts[$i]}"
  ip netns add "$ns"
  made+=("$ns")
  ip -n "$hub" link add "v-${hosts[$i]}" type veth peer name eth0 netns "$ns"
  ip -n "$hub" link set "v-${hosts[$i]}" master br0 up
  ip -n "$ns" addr add "$subnet.${addrs[$i]}/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
done

out="${out:-target/chaos/seed${seed}-${duration}s-${run}}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
"$bin/chaos" run --prefix "$run" --subnet "$subnet" --out "$out" --seed "$seed" --duration "$duration" &
runner=$!
rc=0
wait "$runner" || rc=$?
runner=""
exit "$rc"
