#!/usr/bin/env bash
# Runs the benchmark workload (see PERFORMANCE.md) for rpcnet and the raw-quic baseline,
# ROUNDS times (default 2), and prints a table of medians with rpcnet/baseline ratios
# computed within each round.
#
# Each scenario of a round is run as a pair, rpcnet and baseline back to back (a fresh server
# and client process each), so that the two sides of a ratio are measured seconds apart;
# the side that goes first alternates from round to round, so that neither always runs on
# the machine the other just warmed or tired.
#
#   rpcnet-bench/run.sh [ROUNDS] [SCENARIO|all] [extra flags for both sides, e.g. --mtu 1500]
#
# Set BASELINE_FLAGS=--stock-limits to measure the baseline with s2n-quic's stock limits.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
scenario=${2:-all}
shift $(( $# > 2 ? 2 : $# )) || true
extra=("$@")
baseline_flags=${BASELINE_FLAGS:-}

cargo build --release -q -p rpcnet-bench
bin=target/release/rpcnet-bench
out=$(mktemp -d)
trap 'rm -rf "$out"; [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true' EXIT

run_one() { # impl-flag round scenario
  local flag=$1 round=$2 scenario=$3 ready addr
  "$bin" server 127.0.0.1:0 $flag "${extra[@]}" > "$out/server.txt" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 200); do
    ready=$(grep -m1 '^READY ' "$out/server.txt" || true)
    [ -n "$ready" ] && break
    sleep 0.05
  done
  [ -n "$ready" ] || { echo "server did not start"; cat "$out/server.txt"; exit 1; }
  addr=${ready#READY }
  "$bin" client "$addr" "$scenario" $flag "${extra[@]}" | sed "s/^/round=$round /" | tee -a "$out/results.txt"
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  server_pid=
}

if [ "$scenario" = all ]; then
  scenarios=(unary_c1 unary_c64 bulk_1mib stream_100k)
else
  scenarios=("$scenario")
fi
for round in $(seq 1 "$rounds"); do
  for one in "${scenarios[@]}"; do
    if (( round % 2 )); then
      run_one "" "$round" "$one"
      run_one "--baseline $baseline_flags" "$round" "$one"
    else
      run_one "--baseline $baseline_flags" "$round" "$one"
      run_one "" "$round" "$one"
    fi
  done
done

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "command: rpcnet-bench/run.sh $rounds $scenario ${extra[*]:-} ${baseline_flags:+(baseline: $baseline_flags)}"
awk '
function field(line, key,   n, parts, i, kv) {
  n = split(line, parts, " ")
  for (i = 1; i <= n; i++) { split(parts[i], kv, "="); if (kv[1] == key) return kv[2] }
  return ""
}
function median(list,   n, arr, i, j, t) {
  n = split(list, arr, ",")
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] + 0 < arr[i] + 0) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
  if (n % 2) return arr[(n + 1) / 2]
  return (arr[n / 2] + arr[n / 2 + 1]) / 2
}
{
  r = field($0, "round"); im = field($0, "impl"); sc = field($0, "scenario")
  if (!(sc in seen)) { seen[sc] = 1; order[++ns] = sc }
  split("rps p50_us p99_us mib_s items_s errors", metrics, " ")
  for (m in metrics) {
    k = metrics[m]; v = field($0, k)
    if (v != "") { val[im, sc, k, r] = v; has[sc, k] = 1; rounds[r] = 1 }
  }
}
END {
  printf "\n%-12s %-8s %14s %14s %10s\n", "scenario", "metric", "rpcnet", "raw-quic", "ratio"
  split("rps mib_s items_s p50_us p99_us errors", ks, " ")
  for (i = 1; i <= ns; i++) {
    sc = order[i]
    for (j = 1; j <= 6; j++) {
      k = ks[j]; if (!has[sc, k]) continue
      a = ""; b = ""; q = ""
      for (r in rounds) {
        x = val["rpcnet", sc, k, r]; y = val["raw-quic", sc, k, r]
        if (x == "" || y == "") continue
        a = a (a == "" ? "" : ",") x; b = b (b == "" ? "" : ",") y
        if (y + 0 > 0) q = q (q == "" ? "" : ",") (x / y)
      }
      if (a == "") continue
      printf "%-12s %-8s %14.1f %14.1f %10s\n", sc, k, median(a), median(b), (q == "" ? "-" : sprintf("%.3f", median(q)))
    }
  }
}' "$out/results.txt"
