#!/usr/bin/env bash
# Catalog benchmark: a release build of `till serve` on a fresh database seeded with
# `till seed --products N` (default 100,000), driven by wrk at 64 connections, beside two
# baselines the script starts itself on the same machine:
#   nginx page        nginx serving the bytes of Till's first catalog page as a static file
#   axum liveness     a bare axum handler (crates/server/examples/bare_axum.rs) answering
#                     Till's liveness body, on the same runtime and `axum::serve`
#   axum page         the same bare server answering the catalog page's bytes
#
# Till's scenarios (RUNS rounds of every scenario for DURATION each; the table shows medians):
#   liveness      GET /health/liveness               the HTTP stack, no work
#   list          GET /api/v1/products?limit=20      first page of the catalog (cached)
#   search name   GET /api/v1/products?q=cof&limit=20
#   search sku    GET /api/v1/products?q=<a SKU>&limit=20
#   search sku (uncached)  a different random SKU per request: the PostgreSQL path
# Targets: list >= 0.5 x nginx page; liveness >= 0.8 x axum liveness (each the median over the
# rounds of the ratio within a round); search p99 < 10 ms.
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
RUNS="${RUNS:-5}"
DURATION="${DURATION:-5s}"
CONNS="${CONNS:-64}"
THREADS="${THREADS:-2}"
BASE="http://127.0.0.1:$PORT"

command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }
command -v psql >/dev/null || { echo "psql not found" >&2; exit 1; }

if [ -z "${SKIP_BUILD:-}" ]; then
  (cd "$ROOT" && cargo build --release --bin till --example bare_axum)
fi
BARE="${BARE_BIN:-$(dirname "$TILL")/examples/bare_axum}"
[ -x "$BARE" ] || { echo "$BARE not built: cargo build --release --example bare_axum" >&2; exit 1; }
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "nginx not found: apt-get install -y nginx" >&2; exit 1
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
WORK="$(mktemp -d)"
chmod 755 "$WORK"   # nginx's workers (another user) read the page from here

export DATABASE_URL="$PG_URL/$BENCH_DB"
export REDIS_URL
export REDIS_NAMESPACE="bench-catalog-$$"
export BIND_ADDR="127.0.0.1:$PORT"
export RATE_LIMIT_ANON_PER_MIN=1000000000
export RATE_LIMIT_USER_PER_MIN=1000000000
export RUST_LOG="${BENCH_RUST_LOG:-warn,sqlx=error}"
export LOG_FORMAT=json

SERVER_PID="" BARE_PID="" NGINX_PID=""
cleanup() {
  for pid in $SERVER_PID $BARE_PID $NGINX_PID; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
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

# The baselines serve the very bytes Till answers for the first catalog page.
curl -fs "$BASE/api/v1/products?limit=20" >"$WORK/page.json"
chmod 644 "$WORK/page.json"
BARE_PORT="$(free_port)"
"$BARE" --port "$BARE_PORT" --page "$WORK/page.json" >"$WORK/bare.log" 2>&1 &
BARE_PID=$!
NGINX_PORT="$(free_port)"
# A plain static-file nginx, one worker per core as its packaged default, no access log (Till's
# request log is off at RUST_LOG=warn too), keep-alive as long as wrk holds its connections.
cat >"$WORK/nginx.conf" <<NGINX
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  sendfile on;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location = /page { default_type application/json; alias $WORK/page.json; }
  }
}
NGINX
"$NGINX" -c "$WORK/nginx.conf" -g 'daemon off;' >"$WORK/nginx.log" 2>&1 &
NGINX_PID=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$BARE_PORT/health/liveness" >/dev/null 2>&1 &&
    curl -fs "http://127.0.0.1:$NGINX_PORT/page" >/dev/null 2>&1 && break
  sleep 0.1
done
cmp -s "$WORK/page.json" <(curl -fs "http://127.0.0.1:$NGINX_PORT/page") || { echo "nginx baseline not serving the page" >&2; cat "$WORK"/nginx*.log >&2; exit 1; }
cmp -s "$WORK/page.json" <(curl -fs "http://127.0.0.1:$BARE_PORT/page") || { echo "axum baseline not serving the page" >&2; cat "$WORK/bare.log" >&2; exit 1; }
echo "== catalog page: $(wc -c <"$WORK/page.json") bytes; nginx on $NGINX_PORT, bare axum on $BARE_PORT"

SKU="$(psql -At "$DATABASE_URL" -c "SELECT sku FROM products ORDER BY random() LIMIT 1")"
export BENCH_SKU_PREFIX="${SKU%-*}-"
export BENCH_PRODUCTS="$PRODUCTS"

# name|URL|wrk extra args
SCENARIOS=(
  "nginx page|http://127.0.0.1:$NGINX_PORT/page|"
  "axum page|http://127.0.0.1:$BARE_PORT/page|"
  "axum liveness|http://127.0.0.1:$BARE_PORT/health/liveness|"
  "liveness|$BASE/health/liveness|"
  "list|$BASE/api/v1/products?limit=20|"
  "search name (q=cof)|$BASE/api/v1/products?q=cof&limit=20|"
  "search sku|$BASE/api/v1/products?q=$SKU&limit=20|"
  "search sku (uncached)|$BASE/|-s $ROOT/loadtests/random_sku.lua"
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

# Rounds run every scenario once, so that load from other processes on the machine hits all
# scenarios alike; the table reports medians over the rounds.
declare -A RPS_RUNS P99_RUNS RPS P99
for s in "${SCENARIOS[@]}"; do
  IFS='|' read -r name url _ <<<"$s"
  curl -s "$url" >/dev/null || true   # warm up
  RPS_RUNS[$name]=""; P99_RUNS[$name]=""
done
for run in $(seq 1 "$RUNS"); do
  for s in "${SCENARIOS[@]}"; do
    IFS='|' read -r name url extra <<<"$s"
    # shellcheck disable=SC2086
    out="$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency $extra "$url")"
    if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
      echo "$name: errors:" >&2; echo "$out" >&2
      curl -s -i "$url" | head -20 >&2; exit 1
    fi
    rps="$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")"
    p99="$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")"
    printf '  round %d  %-24s %10.0f req/s  p99 %7.2f ms\n' "$run" "$name" "$rps" "$p99"
    RPS_RUNS[$name]+="$rps"$'\n'; P99_RUNS[$name]+="$p99"$'\n'
  done
done
for s in "${SCENARIOS[@]}"; do
  IFS='|' read -r name _ _ <<<"$s"
  RPS[$name]="$(printf '%s' "${RPS_RUNS[$name]}" | median)"
  P99[$name]="$(printf '%s' "${P99_RUNS[$name]}" | median)"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "Catalog benchmark: $PRODUCTS products, $CONNS connections, $THREADS wrk threads, $RUNS x $DURATION per scenario (medians)"
printf '%-24s %12s %10s\n' "scenario" "req/s" "p99 ms"
printf '%-24s %12s %10s\n' "------------------------" "------------" "----------"
for s in "${SCENARIOS[@]}"; do
  IFS='|' read -r name _ _ <<<"$s"
  printf '%-24s %12.0f %10.2f\n' "$name" "${RPS[$name]}" "${P99[$name]}"
done
# Each round measures a scenario and its baseline within seconds of each other; the ratio of the
# two in the same round, median over the rounds, is steadier than a ratio of medians when the
# machine's speed drifts between rounds (the bare axum baseline alone moved ±15 % between rounds).
paired() { # scenario baseline
  paste -d' ' <(printf '%s' "${RPS_RUNS[$1]}") <(printf '%s' "${RPS_RUNS[$2]}") |
    awk '{ printf "%.4f\n", $1 / $2 }' | median | awk '{ printf "%.2f", $1 }'
}
list_ratio="$(paired list "nginx page")"
live_ratio="$(paired liveness "axum liveness")"
search_p99="$(printf '%s\n' "${P99[search name (q=cof)]}" "${P99[search sku]}" | sort -g | tail -n1)"
verdict() { if awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { exit !(op == ">=" ? v >= t : v < t) }'; then echo "met"; else echo "MISSED"; fi; }
echo
printf '%-44s %8s  target %s %s\n' "list / nginx page" "$list_ratio" ">= 0.5" "$(verdict "$list_ratio" ">=" 0.5)"
printf '%-44s %8s  target %s %s\n' "liveness / axum liveness" "$live_ratio" ">= 0.8" "$(verdict "$live_ratio" ">=" 0.8)"
printf '%-44s %8s  target %s %s\n' "list / axum page" "$(ratio "${RPS[list]}" "${RPS[axum page]}")" "(reported)" ""
printf '%-44s %8s  target %s %s\n' "search p99, name and SKU (ms)" "$search_p99" "< 10" "$(verdict "$search_p99" "<" 10)"
# Every request a new SKU: each one is a PostgreSQL query, and with CONNS requests always
# waiting the p99 is mostly queueing (mean latency = CONNS / throughput).
printf '%-44s %8s  target %s %s\n' "search p99, a new SKU every request (ms)" "${P99[search sku (uncached)]}" "(reported)" ""
