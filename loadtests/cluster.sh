#!/usr/bin/env bash
# Till benchmark: throughput and latency of one GET through nginx with 1, 2 and 3 instances, and straight
# to one instance, on loopback with wrk. Prints a table (median of the runs) and nginx's overhead.
#
#   loadtests/cluster.sh [--duration SECONDS] [--runs N] [--connections C] [--threads T] [--path PATH]
#
#   --duration   seconds per wrk run (default 8)          --runs         rounds (default 3)
#   --connections  concurrent connections (default 32)   --threads      wrk threads (default 2)
#   --path       the request (default: /api/v1/products?limit=20 when the catalog API exists, else
#                /health/liveness)
#
# One `scripts/cluster.sh up 3` (own ports from TILL_BENCH_PORT, default 18280; database till_cluster_bench,
# seeded with `till seed --demo` when the catalog exists; rate limits out of the way) with its nginx in front
# of all 3, and two more nginx from the same generator in front of the first 1 and 2 instances (ports +11,
# +12); the four setups take turns, round by round, so noise from other work hits them alike. Uses TILL_BIN, else builds the release binary. Installs wrk with apt when missing. Everything runs
# on this machine: the instances, nginx, PostgreSQL, Redis and wrk share its cores, so more instances
# add little throughput here; the numbers show the cost of the hop through nginx and that nothing is lost.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib/services.sh
source scripts/lib/services.sh

duration=8 runs=3 connections=32 threads=2 path=''
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --path) path=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "cluster.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

command -v wrk >/dev/null 2>&1 || till__apt_install wrk
if [ -z "${TILL_BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/till-target}"
  echo "==> cargo build --release --bin till" >&2
  cargo build --release --bin till >&2
  export TILL_BIN="$CARGO_TARGET_DIR/release/till"
fi

base=${TILL_BENCH_PORT:-18280}
export TILL_CLUSTER_DIR="$ROOT/.tmp/cluster-bench" TILL_CLUSTER_PORT=$base TILL_CLUSTER_DB=till_cluster_bench
export RATE_LIMIT_ANON_PER_MIN=1000000000 RATE_LIMIT_USER_PER_MIN=1000000000
export SHUTDOWN_DRAIN_MS=${SHUTDOWN_DRAIN_MS:-200}
unset REDIS_NAMESPACE DATABASE_URL REDIS_URL
results=$ROOT/.tmp/cluster-bench/results.txt
mkdir -p "$(dirname "$results")"
: >"$results"

# Latency in ms from wrk's "1.23ms" / "456.00us" / "1.02s".
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else printf "%s", v }'
}

# run_wrk LABEL URL: one measured run appended to $results as "LABEL rps p50 p99 errors".
run_wrk() {
  local label=$1 url=$2 out rps p50 p99 errs
  out=$(wrk -t "$threads" -c "$connections" -d "${duration}s" --latency "$url")
  rps=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ {print $2}')
  p50=$(to_ms "$(printf '%s\n' "$out" | awk '$1 == "50%" {print $2}')")
  p99=$(to_ms "$(printf '%s\n' "$out" | awk '$1 == "99%" {print $2}')")
  errs=$(printf '%s\n' "$out" | awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {
    for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { gsub(",", "", $i); n += $i } } END {print n + 0}')
  printf '%s %s %s %s %s\n' "$label" "$rps" "$p50" "$p99" "$errs" >>"$results"
  printf '  %-20s %10.0f req/s  p50 %7.2f ms  p99 %7.2f ms  errors %s\n' "$label" "$rps" "$p50" "$p99" "$errs" >&2
}

# One cluster of 3 instances behind the repository's nginx config (cluster.sh), plus two more nginx, from
# the same generator, in front of its first 1 and 2 instances. The setups then take turns run by run, so a
# busy moment on this shared machine lands on all of them alike.
scripts/cluster.sh up 3 >&2
eval "$(scripts/cluster.sh env)"
extra_nginx=()
stop_extra() {
  local d pid
  for d in "${extra_nginx[@]}"; do
    pid=$(cat "$d/nginx.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && grep -q nginx "/proc/$pid/cmdline" 2>/dev/null; then
      kill -QUIT "$pid" 2>/dev/null
      for _ in $(seq 1 30); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
    fi
    rm -rf "$d"
  done
  return 0
}
trap 'stop_extra; scripts/cluster.sh down >/dev/null 2>&1 || true' EXIT
till_ensure_nginx
for k in 1 2; do
  d=$(mktemp -d /tmp/till-bench-nginx.XXXXXX)
  chmod 755 "$d"
  ups=()
  for i in $(seq 1 "$k"); do ups+=("127.0.0.1:$((base + i))"); done
  "$TILL_BIN" lb-config nginx --upstream "${ups[@]}" --listen "127.0.0.1:$((base + 10 + k))" --runtime-dir "$d" \
    -o "$d/nginx.conf" 2>/dev/null
  "$TILL_NGINX_BIN" -p "$d/" -c "$d/nginx.conf" -e "$d/error.log"
  extra_nginx+=("$d")
done
sleep 0.5

if [ -z "$path" ]; then
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((base + 1))/api/v1/products?limit=20")" = 200 ]; then
    path='/api/v1/products?limit=20'
    (set -a; source "$TILL_CLUSTER_DIR/till.env"; "$TILL_BIN" seed --demo >/dev/null)
  else
    path=/health/liveness
  fi
fi
labels=("direct, 1 instance" "nginx, 1 instance" "nginx, 2 instances" "nginx, 3 instances")
urls=("http://127.0.0.1:$((base + 1))$path" "http://127.0.0.1:$((base + 11))$path"
  "http://127.0.0.1:$((base + 12))$path" "http://127.0.0.1:$base$path")
echo "==> GET $path: $connections connections, $threads wrk threads, ${duration}s per run, $runs rounds" >&2
for u in "${urls[@]}"; do wrk -t "$threads" -c "$connections" -d 2s "$u" >/dev/null 2>&1 || true; done
for r in $(seq 1 "$runs"); do
  echo "  round $r" >&2
  for j in 0 1 2 3; do
    k=$(((j + r - 1) % 4)) # rotate the order from round to round
    run_wrk "${labels[$k]}" "${urls[$k]}"
  done
done

# The table: medians per setup.
median() { sort -n | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
declare -A RPS P50 P99 ERR
for l in "${labels[@]}"; do
  RPS[$l]=$(grep -F "$l " "$results" | awk '{print $(NF-3)}' | median)
  P50[$l]=$(grep -F "$l " "$results" | awk '{print $(NF-2)}' | median)
  P99[$l]=$(grep -F "$l " "$results" | awk '{print $(NF-1)}' | median)
  ERR[$l]=$(grep -F "$l " "$results" | awk '{n += $NF} END {print n + 0}')
done

echo
echo "GET $path — wrk -t$threads -c$connections -d${duration}s, median of $runs runs ($(nproc) cores, all on this machine)"
echo
printf '| %-22s | %10s | %8s | %8s | %6s |\n' setup 'req/s' 'p50 ms' 'p99 ms' errors
printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..24})" "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..10})" "$(printf -- '-%.0s' {1..10})" "$(printf -- '-%.0s' {1..8})"
for l in "${labels[@]}"; do
  printf '| %-22s | %10.0f | %8.2f | %8.2f | %6s |\n' "$l" "${RPS[$l]}" "${P50[$l]}" "${P99[$l]}" "${ERR[$l]}"
done
d="direct, 1 instance" g="nginx, 1 instance"
awk -v dr="${RPS[$d]}" -v gr="${RPS[$g]}" -v dl="${P50[$d]}" -v gl="${P50[$g]}" 'BEGIN {
  printf "\nnginx overhead (1 instance, nginx vs direct): throughput %+.1f%%, p50 latency %+.2f ms\n",
    (gr - dr) / dr * 100, gl - dl }'
