#!/usr/bin/env bash
# Catalog benchmark: a release build of `till serve` on a fresh database seeded with
# `till seed --products N` (default 100,000), driven by wrk at 32 connections.
#
# Scenarios (each run RUNS times for DURATION; the table shows the medians):
#   liveness      GET /health/liveness               the baseline: the HTTP stack, no work
#   list          GET /api/v1/products?limit=20      first page of the catalog (cached)
#   search name   GET /api/v1/products?q=cof&limit=20
#   search sku    GET /api/v1/products?q=<a SKU>&limit=20
#   search sku (uncached)  a different random SKU per request: the PostgreSQL path
# Targets: cached listing >= 50 % of the baseline's req/s; search p99 < 20 ms.
#
# Usage: loadtests/catalog.sh            (env: PRODUCTS RUNS DURATION CONNS THREADS PORT
#                                          PG_URL REDIS_URL BENCH_DB SKIP_BUILD KEEP_DB)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
TILL="${TILL_BIN:-$TARGET_DIR/release/till}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
BENCH_DB="${BENCH_DB:-till_bench_catalog}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
# A free port unless told otherwise: another server on a fixed port would answer in ours' place.
PORT="${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
PRODUCTS="${PRODUCTS:-100000}"
RUNS="${RUNS:-3}"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-32}"
THREADS="${THREADS:-2}"
BASE="http://127.0.0.1:$PORT"

command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }
command -v psql >/dev/null || { echo "psql not found" >&2; exit 1; }

if [ -z "${SKIP_BUILD:-}" ]; then
  (cd "$ROOT" && cargo build --release --bin till)
fi

export DATABASE_URL="$PG_URL/$BENCH_DB"
export REDIS_URL
export REDIS_NAMESPACE="bench-catalog-$$"
export BIND_ADDR="127.0.0.1:$PORT"
export RATE_LIMIT_ANON_PER_MIN=1000000000
export RATE_LIMIT_USER_PER_MIN=1000000000
export RUST_LOG="${BENCH_RUST_LOG:-warn,sqlx=error}"
export LOG_FORMAT=json

SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ -z "${KEEP_DB:-}" ]; then psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $BENCH_DB" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

echo "== fresh database $BENCH_DB, $PRODUCTS products"
psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $BENCH_DB" -c "CREATE DATABASE $BENCH_DB" 2>&1 | grep -v NOTICE || true
"$TILL" migrate
"$TILL" seed --products "$PRODUCTS"

"$TILL" serve >/tmp/till-bench-catalog.log 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -fs "$BASE/health/readiness" >/dev/null 2>&1 && break
  sleep 0.1
done
if ! kill -0 "$SERVER_PID" 2>/dev/null || ! curl -fs "$BASE/health/readiness" >/dev/null; then
  echo "till serve did not come up on port $PORT:" >&2; cat /tmp/till-bench-catalog.log >&2; exit 1
fi

SKU="$(psql -At "$DATABASE_URL" -c "SELECT sku FROM products ORDER BY random() LIMIT 1")"
export BENCH_SKU_PREFIX="${SKU%-*}-"
export BENCH_PRODUCTS="$PRODUCTS"

# name|path|wrk extra args
SCENARIOS=(
  "liveness|/health/liveness|"
  "list|/api/v1/products?limit=20|"
  "search name (q=cof)|/api/v1/products?q=cof&limit=20|"
  "search sku|/api/v1/products?q=$SKU&limit=20|"
  "search sku (uncached)|/|-s $ROOT/loadtests/random_sku.lua"
)

# wrk's latency to milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.2f", v * 1000 }
    else { printf "%s", v } }'
}
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A RPS P99
for s in "${SCENARIOS[@]}"; do
  IFS='|' read -r name path extra <<<"$s"
  curl -fs "$BASE$path" >/dev/null || true   # warm up
  rps_runs=""; p99_runs=""
  for run in $(seq 1 "$RUNS"); do
    # shellcheck disable=SC2086
    out="$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency $extra "$BASE$path")"
    if grep -q "Non-2xx" <<<"$out"; then
      echo "$name: error responses:" >&2; echo "$out" >&2
      curl -s -i "$BASE$path" | head -20 >&2; exit 1
    fi
    rps="$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")"
    p99="$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")"
    printf '  %-24s run %d: %10.0f req/s  p99 %7.2f ms\n' "$name" "$run" "$rps" "$p99"
    rps_runs+="$rps"$'\n'; p99_runs+="$p99"$'\n'
  done
  RPS[$name]="$(printf '%s' "$rps_runs" | median)"
  P99[$name]="$(printf '%s' "$p99_runs" | median)"
done

base="${RPS[liveness]}"
echo
echo "Catalog benchmark: $PRODUCTS products, $CONNS connections, $THREADS wrk threads, $RUNS x $DURATION per scenario (medians)"
printf '%-24s %12s %10s %12s\n' "scenario" "req/s" "p99 ms" "vs baseline"
printf '%-24s %12s %10s %12s\n' "------------------------" "------------" "----------" "------------"
for s in "${SCENARIOS[@]}"; do
  IFS='|' read -r name _ _ <<<"$s"
  ratio="$(awk -v a="${RPS[$name]}" -v b="$base" 'BEGIN { printf "%.0f %%", 100 * a / b }')"
  printf '%-24s %12.0f %10.2f %12s\n' "$name" "${RPS[$name]}" "${P99[$name]}" "$ratio"
done
