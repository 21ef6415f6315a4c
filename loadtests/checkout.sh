#!/usr/bin/env bash
# Till: checkout benchmark. Prints orders/s and p99 of POST /api/v1/orders next to pgbench's
# TPC-B-like tps on the same machine and PostgreSQL, and the ratio of the two.
#
#   loadtests/checkout.sh [--no-build]
#
# What it does:
#   1. builds the release binary (cargo build --release -p till-server) unless --no-build;
#   2. creates the database $BENCH_DB (dropped first), migrates it, and inserts $PRODUCTS products
#      with a stock of 1,000,000,000 each straight into PostgreSQL;
#   3. starts `till serve` on 127.0.0.1:$PORT with RATE_LIMIT_USER_PER_MIN set huge, creates a
#      cashier through the API and signs in (Bearer token);
#   4. initialises pgbench in its own database $PGBENCH_DB (pgbench -i -s $PGBENCH_SCALE);
#   5. warms up, then $RUNS times: `pgbench -c $CONNECTIONS -j 2 -T $DURATION` followed by
#      `wrk -t $THREADS -c $CONNECTIONS -d $DURATION` with loadtests/checkout.lua (3-line in-store
#      orders, 3 distinct random products, a unique Idempotency-Key per request). With
#      MODE=concurrent both run at the same time instead: on a machine shared with other work the
#      two then see the same background load, so their ratio is steadier (each gets about half
#      the machine, so absolute numbers and latencies are worse);
#   6. prints each run and the medians; targets: orders/s >= 0.6 x pgbench tps, p99 < 50 ms.
#      Sequential runs also print the CPU time per order of Till and of a local PostgreSQL (all
#      its processes), read from /proc around the wrk run: steadier than orders/s when the
#      machine's own speed drifts, so the figure to compare two builds by.
#
# Environment (all optional):
#   TILL_PG_URL     PostgreSQL server URL without database   (postgres://postgres@127.0.0.1:5432)
#   TILL_REDIS_URL  Redis URL                                (redis://127.0.0.1:6379)
#   RUNS [3]  DURATION [20] seconds  CONNECTIONS [32]  THREADS [2] (wrk)  PRODUCTS [10000]
#   PORT [a free one]  DB_POOL [8] (DATABASE_MAX_CONNECTIONS)  PGBENCH_SCALE [1]
#     DB_POOL: the 32 client connections share 8 database connections. PostgreSQL on 2 cores does
#     best with few active backends; the pool's queue is first come, first served. Measured
#     2026-11-22 (5 runs each): pool 32 → 1060 orders/s, p99 53 ms; pool 8 → 931/s, p99 50 ms.
#   BENCH_DB [till_bench]  PGBENCH_DB [till_pgbench]  RUST_LOG [warn]  KEEP_DB [0]
#   PG_SSLMODE [unset: what the server offers]  sslmode for both Till's and pgbench's
#     connections. A PostgreSQL with `ssl = on` (Debian's default) gets TLS on loopback too;
#     docker-compose.yml's PostgreSQL has no TLS, so `PG_SSLMODE=disable` measures the shipped
#     compose topology. The summary says which one the run used.
#   MODE [sequential] | concurrent
#   BASELINE [pgbench] | webhooks
#     webhooks: instead of pgbench, each run measures checkout twice: with 5 webhook endpoints
#     paused and active (odd runs in that order, even runs the other way round) (all order.* events fanned out by a `till worker` to
#     crates/server/examples/webhook_sink, whose last endpoint answers after SLOW_MS [100] ms);
#     between runs it waits until every delivery is done. Prints both rates, their ratio
#     (target >= 0.9), every event's delivery, and the delivery lag p50/p99 per endpoint.
#   FLOOR [0] | 1
#     1: each sequential run also measures the database floor: pgbench sends PostgreSQL the same
#     two statements Till sends per order (till_prepare_order, then till_place_order, with
#     arguments made from one captured from a real POST; loadtests/floor.sql and floor.pgb) at
#     DB_POOL clients, with no HTTP and no request through Till (its outbox publisher still
#     publishes the floor's order events to Redis, as it does checkout's, so both pay for it).
#     It prints the floor's orders/s and p99, checkout ÷ floor, and CONNECTIONS ÷ floor
#     orders/s: the least mean latency any server can give that many closed-loop clients when
#     every order costs PostgreSQL this much (Little's law). The arguments are made before the
#     first run (about 2 ms each, FLOOR_ROWS [1500 × DURATION × RUNS] of them); the floor's
#     orders stay in the database, which grows as with checkout's own.
#   CARGO_TARGET_DIR  build directory                        ($HOME/.cache/till-target)
#   TILL_BIN        a till binary to measure instead of the one built here (implies --no-build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build=1
[ -n "${TILL_BIN:-}" ] && build=0
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "checkout.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

PG_URL="${TILL_PG_URL:-postgres://postgres@127.0.0.1:5432}"
REDIS="${TILL_REDIS_URL:-redis://127.0.0.1:6379}"
RUNS="${RUNS:-3}"
DURATION="${DURATION:-20}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
PRODUCTS="${PRODUCTS:-10000}"
PORT="${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
DB_POOL="${DB_POOL:-8}"
PGBENCH_SCALE="${PGBENCH_SCALE:-1}"
BENCH_DB="${BENCH_DB:-till_bench}"
PGBENCH_DB="${PGBENCH_DB:-till_pgbench}"
MODE="${MODE:-sequential}"
BASELINE="${BASELINE:-pgbench}"
SLOW_MS="${SLOW_MS:-100}"
FLOOR="${FLOOR:-0}"
FLOOR_ROWS="${FLOOR_ROWS:-$((1500 * DURATION * RUNS))}"
case "$BASELINE" in pgbench | webhooks) ;; *) echo "checkout.sh: BASELINE must be pgbench or webhooks" >&2; exit 2 ;; esac
case "$MODE" in sequential | concurrent) ;; *) echo "checkout.sh: MODE must be sequential or concurrent" >&2; exit 2 ;; esac
case "$FLOOR" in
  0) ;;
  1) [ "$MODE/$BASELINE" = sequential/pgbench ] || { echo "checkout.sh: FLOOR=1 needs MODE=sequential and BASELINE=pgbench" >&2; exit 2; } ;;
  *) echo "checkout.sh: FLOOR must be 0 or 1" >&2; exit 2 ;;
esac
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/till-target}"

need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "== installing $2 (for $1)"
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need wrk wrk
need psql postgresql-client
need curl curl
if ! command -v pgbench >/dev/null 2>&1; then
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
  if [ -n "$pg_bin" ] && [ -x "$pg_bin/pgbench" ]; then PATH="$pg_bin:$PATH"; else need pgbench postgresql-contrib; fi
fi

if [ "$build" = 1 ]; then
  echo "== cargo build --release -p till-server"
  cargo build --release -p till-server
  if [ "$BASELINE" = webhooks ]; then cargo build --release -p till-server --example webhook_sink; fi
fi
TILL="${TILL_BIN:-$CARGO_TARGET_DIR/release/till}"
[ -x "$TILL" ] || { echo "checkout.sh: $TILL not built (drop --no-build)" >&2; exit 1; }

work="$(mktemp -d)"
server_pid=""
extra_pids=""
cleanup() {
  for pid in $server_pid $extra_pids; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  if [ "${KEEP_DB:-0}" != 1 ]; then
    psql -w -X -q -d "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $BENCH_DB" -c "DROP DATABASE IF EXISTS $PGBENCH_DB" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== database $BENCH_DB with $PRODUCTS products"
psql -w -X -q -d "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $BENCH_DB" -c "CREATE DATABASE $BENCH_DB"
PG_QUERY=""
[ -n "${PG_SSLMODE:-}" ] && PG_QUERY="?sslmode=$PG_SSLMODE"
export DATABASE_URL="$PG_URL/$BENCH_DB$PG_QUERY"
"$TILL" migrate >/dev/null
psql -w -X -q -d "$DATABASE_URL" <<SQL
INSERT INTO products (id, sku, name, price_cents, tax_rate_bp, stock_on_hand)
SELECT gen_random_uuid(), 'BENCH-' || g, 'Bench product ' || g, 100 + (g * 37) % 5000,
       CASE WHEN g % 3 = 0 THEN 825 ELSE 0 END, 1000000000
FROM generate_series(1, $PRODUCTS) AS g;
-- Products only: statistics that say "orders is empty" would make every connection plan its
-- foreign-key checks against orders as sequential scans, and keep those plans as the table grows
-- (the decay from run to run seen before). Unanalysed tables are planned as if not empty.
ANALYZE products;
SQL
psql -w -X -A -t -d "$DATABASE_URL" -c "SELECT id FROM products" >"$work/products.txt"

admin_email="bench-admin@till.local"
admin_pass="bench-admin-password"
"$TILL" create-admin --email "$admin_email" --password "$admin_pass" >/dev/null

echo "== till serve on 127.0.0.1:$PORT"
if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then echo "checkout.sh: port $PORT is in use" >&2; exit 1; fi
env REDIS_URL="$REDIS" REDIS_NAMESPACE="bench$$" BIND_ADDR="127.0.0.1:$PORT" \
  JWT_TTL_SECONDS=7200 \
  RATE_LIMIT_USER_PER_MIN=1000000000 RATE_LIMIT_ANON_PER_MIN=1000000000 RATE_LIMIT_LOGIN_PER_MIN=1000 \
  DATABASE_MAX_CONNECTIONS="$DB_POOL" LOG_FORMAT=json RUST_LOG="${RUST_LOG:-warn}" \
  "$TILL" serve >"$work/server.log" 2>&1 &
server_pid=$!
base="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
  if curl -fsS "$base/health/readiness" >/dev/null 2>&1; then break; fi
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.2
done
curl -fsS "$base/health/readiness" >/dev/null

token_of() { sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'; }
login() {
  curl -fsS -H 'content-type: application/json' -d "{\"email\":\"$1\",\"password\":\"$2\"}" "$base/api/v1/auth/login" | token_of
}
admin_token="$(login "$admin_email" "$admin_pass")"
curl -fsS -o /dev/null -H 'content-type: application/json' -H "authorization: Bearer $admin_token" \
  -d '{"email":"bench-cashier@till.local","password":"bench-cashier-password","name":"Bench cashier","role":"cashier"}' \
  "$base/api/v1/users"
export TILL_TOKEN
TILL_TOKEN="$(login bench-cashier@till.local bench-cashier-password)"
export TILL_PRODUCTS_FILE="$work/products.txt"

if [ "$FLOOR" = 1 ]; then
  # The floor's template: the argument of the first order, captured by a stand-in for
  # till_place_order that records it and calls the real one. No order has been placed yet, so
  # no pooled connection holds a plan of the real function; the stand-in is dropped right
  # after, and connections that planned against it plan again against the real one.
  psql -w -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" <<'SQL'
CREATE TABLE bench_capture (args jsonb);
ALTER FUNCTION till_place_order(jsonb) RENAME TO till_place_order_captured;
CREATE FUNCTION till_place_order(args jsonb) RETURNS json LANGUAGE sql AS $$
    INSERT INTO bench_capture VALUES (args);
    SELECT till_place_order_captured(args);
$$;
SQL
  read -r p1 p2 p3 <<<"$(head -n3 "$TILL_PRODUCTS_FILE" | tr '\n' ' ')"
  curl -fsS -o /dev/null -H 'content-type: application/json' -H "authorization: Bearer $TILL_TOKEN" \
    -H "Idempotency-Key: floor-template-$$" \
    -d "{\"fulfilment\":\"in_store\",\"lines\":[{\"product_id\":\"$p1\",\"quantity\":1},{\"product_id\":\"$p2\",\"quantity\":2},{\"product_id\":\"$p3\",\"quantity\":3}]}" \
    "$base/api/v1/orders"
  psql -w -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -c "DROP FUNCTION till_place_order(jsonb)" \
    -c "ALTER FUNCTION till_place_order_captured(jsonb) RENAME TO till_place_order"
  echo "== database floor: $FLOOR_ROWS order arguments (loadtests/floor.sql)"
  psql -w -X -q -v ON_ERROR_STOP=1 -v n="$FLOOR_ROWS" -d "$DATABASE_URL" -f loadtests/floor.sql
fi

if [ "$BASELINE" = pgbench ]; then
  echo "== pgbench -i -s $PGBENCH_SCALE (database $PGBENCH_DB)"
  psql -w -X -q -d "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $PGBENCH_DB" -c "CREATE DATABASE $PGBENCH_DB"
  pgbench -i -q -s "$PGBENCH_SCALE" "$PG_URL/$PGBENCH_DB" >/dev/null 2>&1
else
  sink_bin="$(dirname "$TILL")/examples/webhook_sink"
  [ -x "$sink_bin" ] || { echo "checkout.sh: $sink_bin not built (drop --no-build)" >&2; exit 1; }
  echo "== 5 webhook endpoints (the last answers after $SLOW_MS ms) and a till worker"
  "$sink_bin" --ports 5 --slow-ms "$SLOW_MS" >"$work/sink.out" 2>&1 &
  extra_pids="$extra_pids $!"
  for _ in $(seq 1 50); do grep -q '^PORTS ' "$work/sink.out" 2>/dev/null && break; sleep 0.1; done
  IFS=, read -r -a sink_ports <<<"$(sed -n 's/^PORTS //p' "$work/sink.out")"
  env REDIS_URL="$REDIS" REDIS_NAMESPACE="bench$$" WORKER_HEALTH_ADDR=127.0.0.1:0 \
    DATABASE_MAX_CONNECTIONS=4 LOG_FORMAT=json RUST_LOG="${RUST_LOG:-warn}" "$TILL" worker >"$work/worker.log" 2>&1 &
  extra_pids="$extra_pids $!"
  endpoint_ids=()
  for port in "${sink_ports[@]}"; do
    endpoint_ids+=("$(curl -fsS -H 'content-type: application/json' -H "authorization: Bearer $admin_token" \
      -d "{\"url\":\"http://127.0.0.1:$port/hook\",\"events\":[\"order.created\",\"order.updated\",\"order.paid\"]}" \
      "$base/api/v1/webhooks" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')")
  done
  set_endpoints() { # true|false
    for id in "${endpoint_ids[@]}"; do
      curl -fsS -o /dev/null -X PATCH -H 'content-type: application/json' -H "authorization: Bearer $admin_token" \
        -d "{\"active\":$1}" "$base/api/v1/webhooks/$id"
    done
  }
  # Deliveries not done: pending retries, and events an active endpoint has not been sent yet
  # (the slow endpoint falls behind while checkout runs at full speed).
  pending() {
    psql -w -X -A -t -d "$DATABASE_URL" -c "SELECT (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending')
      + (SELECT COALESCE(sum(c.last_seq - e.cursor_seq), 0) FROM webhook_endpoints e, outbox_counter c WHERE e.active)"
  }
  drain() { # waits until every event has been delivered; prints the seconds it took
    local t0=$SECONDS
    sleep 1
    while [ "$(pending)" != 0 ]; do sleep 0.5; done
    echo $((SECONDS - t0))
  }
fi

run_wrk() { # duration tag
  TILL_RUN="$2" wrk -t "$THREADS" -c "$CONNECTIONS" -d "$1" --timeout 10s -s loadtests/checkout.lua "$base/api/v1/orders" |
    sed -n 's/^BENCH //p'
}
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }
# CPU time (utime + stime, in clock ticks) of the given processes; a process gone since counts 0.
cpu_ticks() {
  local total=0 pid
  for pid in "$@"; do
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
clk_tck="$(getconf CLK_TCK)"

echo "== warm-up (5 s)"
run_wrk 5s "warm$$" >/dev/null
# The endpoints were active during the warm-up: every event is delivered before the first pause.
if [ "$BASELINE" = webhooks ]; then drain >/dev/null; fi

declare -a tps_all rps_all p99_all ratio_all pgb_p99_all till_cpu_all pg_cpu_all
floor_all=() floor_p99_all=()
baseline_label=pgbench_tps
[ "$BASELINE" = webhooks ] && baseline_label=no_hooks_ops
printf '\n%-4s %12s %12s %10s %10s %8s\n' run "$baseline_label" orders_per_s p99_ms p50_ms ratio
for i in $(seq 1 "$RUNS"); do
  if [ "$BASELINE" = webhooks ]; then
    # Odd runs measure paused then active, even runs active then paused: the database grows
    # and vacuums as the runs go on, and a fixed order would charge that drift to one side.
    # Endpoints are paused only once every event has been delivered (see drain).
    if [ $((i % 2)) = 1 ]; then
      set_endpoints false
      base_line="$(run_wrk "${DURATION}s" "base$$-$i")"
      set_endpoints true
      line="$(run_wrk "${DURATION}s" "run$$-$i")"
      echo "     every event delivered $(drain) s after the run"
    else
      set_endpoints true
      line="$(run_wrk "${DURATION}s" "run$$-$i")"
      echo "     every event delivered $(drain) s after the run"
      set_endpoints false
      base_line="$(run_wrk "${DURATION}s" "base$$-$i")"
    fi
    echo "tps = $(echo "$base_line" | field rps)" >"$work/pgbench.out"
  elif [ "$MODE" = concurrent ]; then
    rm -f "$work"/pgblog*
    pgbench -c "$CONNECTIONS" -j 2 -T "$DURATION" -l --log-prefix="$work/pgblog" "$PG_URL/$PGBENCH_DB$PG_QUERY" >"$work/pgbench.out" 2>"$work/pgbench.err" &
    pgbench_pid=$!
    line="$(run_wrk "${DURATION}s" "run$$-$i")"
    wait "$pgbench_pid" || true
  else
    rm -f "$work"/pgblog*
    pgbench -c "$CONNECTIONS" -j 2 -T "$DURATION" -l --log-prefix="$work/pgblog" "$PG_URL/$PGBENCH_DB$PG_QUERY" >"$work/pgbench.out" 2>"$work/pgbench.err" || true
    # Alone on the machine during the wrk run: Till, and a local PostgreSQL's processes (none
    # when it runs elsewhere). CPU per order is steadier than orders/s on a machine whose speed
    # drifts, so it is what to compare two builds by.
    pg_pids="$(pgrep -x postgres || true)"
    till_t0="$(cpu_ticks "$server_pid")"; pg_t0="$(cpu_ticks $pg_pids)"
    line="$(run_wrk "${DURATION}s" "run$$-$i")"
    till_t1="$(cpu_ticks "$server_pid")"; pg_t1="$(cpu_ticks $pg_pids)"
    if [ "$FLOOR" = 1 ]; then
      rm -f "$work"/floorlog*
      pgbench -n -c "$DB_POOL" -j 2 -T "$DURATION" -f loadtests/floor.pgb -l --log-prefix="$work/floorlog" \
        "$DATABASE_URL" >"$work/floor.out" 2>&1 || true
    fi
  fi
  tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$work/pgbench.out" | tail -n1)"
  if [ -z "$tps" ] || [ -z "$line" ]; then
    # e.g. PostgreSQL's max_connections reached by other work on a shared server.
    echo "$i    run failed; pgbench said: $(tail -n2 "$work/pgbench.err" | tr '\n' ' ')" >&2
    continue
  fi
  rps="$(echo "$line" | field rps)"
  p99="$(echo "$line" | field p99_ms)"
  p50="$(echo "$line" | field p50_ms)"
  bad="$(echo "$line" | field non2xx)"
  ratio="$(awk -v a="$rps" -v b="$tps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
  printf '%-4s %12.1f %12.1f %10.2f %10.2f %8s' "$i" "$tps" "$rps" "$p99" "$p50" "$ratio"
  if compgen -G "$work/pgblog*" >/dev/null; then
    # pgbench's own latency at the same client count (its per-transaction log, 3rd column in
    # microseconds): what the p99 target compares against.
    pgb_p99="$(cat "$work"/pgblog* | awk '{ print $3 / 1000 }' | sort -g | awk '{ v[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.2f", v[i] }')"
    pgb_p50="$(cat "$work"/pgblog* | awk '{ print $3 / 1000 }' | sort -g | awk '{ v[NR] = $1 } END { i = int(NR * 0.5); if (i < 1) i = 1; printf "%.2f", v[i] }')"
    printf '   pgbench p50 %s ms, p99 %s ms' "$pgb_p50" "$pgb_p99"
    pgb_p99_all+=("$pgb_p99")
  fi
  printf '\n'
  if [ "$MODE" = sequential ] && [ "$BASELINE" = pgbench ]; then
    n="$(echo "$line" | field requests)"
    till_ms="$(awk -v t=$((till_t1 - till_t0)) -v n="$n" -v h="$clk_tck" 'BEGIN { printf "%.3f", (n > 0 ? t * 1000 / h / n : 0) }')"
    pg_ms="$(awk -v t=$((pg_t1 - pg_t0)) -v n="$n" -v h="$clk_tck" 'BEGIN { printf "%.3f", (n > 0 ? t * 1000 / h / n : 0) }')"
    echo "     CPU per order: till $till_ms ms, postgres $pg_ms ms"
    till_cpu_all+=("$till_ms"); pg_cpu_all+=("$pg_ms")
  fi
  if [ "$FLOOR" = 1 ]; then
    floor_tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$work/floor.out" | tail -n1)"
    floor_failed="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$work/floor.out")"
    floor_p99="$(cat "$work"/floorlog* 2>/dev/null | awk '{ print $3 / 1000 }' | sort -g | awk '{ v[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.2f", v[i] }')"
    used_up="$(psql -w -X -A -t -d "$DATABASE_URL" -c "SELECT (SELECT last_value FROM bench_seq) >= (SELECT count(*) FROM bench_args)")"
    if [ -z "$floor_tps" ] || [ "${floor_failed:-1}" != 0 ] || [ "$used_up" != f ]; then
      echo "     database floor failed (or used up its $FLOOR_ROWS arguments: raise FLOOR_ROWS): $(tail -n2 "$work/floor.out" | tr '\n' ' ')" >&2
    else
      printf '     database floor (%s clients, no HTTP): %.1f orders/s, p99 %s ms; checkout / floor %s\n' "$DB_POOL" "$floor_tps" "$floor_p99" \
        "$(awk -v a="$rps" -v b="$floor_tps" 'BEGIN { printf "%.2f", a / b }')"
      floor_all+=("$floor_tps"); floor_p99_all+=("$floor_p99")
    fi
  fi
  if [ "$bad" != 0 ]; then echo "     ($bad responses were not 2xx or failed)"; fi
  tps_all+=("$tps"); rps_all+=("$rps"); p99_all+=("$p99"); ratio_all+=("$ratio")
done

[ "${#tps_all[@]}" -gt 0 ] || { echo "checkout.sh: every run failed" >&2; exit 1; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
m_tps="$(median "${tps_all[@]}")"
m_rps="$(median "${rps_all[@]}")"
m_p99="$(median "${p99_all[@]}")"
m_ratio="$(median "${ratio_all[@]}")"
orders="$(psql -w -X -A -t -d "$DATABASE_URL" -c "SELECT count(*) FROM orders")"
# What Till's own connections to the database negotiated (see PG_SSLMODE).
till_tls="$(psql -w -X -A -t -d "$DATABASE_URL" -c "SELECT count(*) FILTER (WHERE s.ssl) || ' of ' || count(*)
  FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
  WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'")"
errors5="$(grep -c '"level":"ERROR"' "$work/server.log" || true)"
verdict() { if awk -v a="$1" -v b="$2" "BEGIN { exit !(a $3 b) }"; then echo PASS; else echo FAIL; fi; }
if [ "$BASELINE" = webhooks ]; then
  events="$(psql -w -X -A -t -d "$DATABASE_URL" -c "SELECT count(*) FROM webhook_deliveries")"
  failed="$(psql -w -X -A -t -d "$DATABASE_URL" -c "SELECT count(*) FROM webhook_deliveries WHERE status <> 'succeeded'")"
  echo
  echo "webhooks: $events deliveries queued while endpoints were active, $failed not succeeded"
  printf '%-10s %10s %10s %10s %10s %10s\n' endpoint received distinct lag_p50_ms lag_p99_ms lag_max_ms
  n=0
  for port in "${sink_ports[@]}"; do
    n=$((n + 1))
    st="$(curl -fsS "http://127.0.0.1:$port/stats")"
    num() { echo "$st" | sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
    label="fast-$n"; [ "$n" = "${#sink_ports[@]}" ] && label="slow"
    printf '%-10s %10s %10s %10s %10s %10s\n' "$label" "$(num received)" "$(num distinct)" "$(num p50)" "$(num p99)" "$(num max)"
  done
  cat <<EOF

median of ${#tps_all[@]} of $RUNS runs ($CONNECTIONS connections each, ${DURATION}s, $(nproc) CPUs):
  checkout orders/s, webhooks paused   $(median "${tps_all[@]}")
  checkout orders/s, 5 endpoints       $(median "${rps_all[@]}")
  ratio                                $(median "${ratio_all[@]}")      (target >= 0.9: $(verdict "$(median "${ratio_all[@]}")" 0.9 '>='))
  checkout p99 with webhooks           $(median "${p99_all[@]}") ms
  errors logged by the server          $(grep -c '"level":"ERROR"' "$work/server.log" || true)
EOF
  exit 0
fi
cat <<EOF

median of ${#tps_all[@]} of $RUNS runs ($MODE, $CONNECTIONS connections each, ${DURATION}s, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)):
  pgbench tps (TPC-B-like, scale $PGBENCH_SCALE)  $m_tps
  checkout orders/s                    $m_rps
  checkout p99                         $m_p99 ms    (target < 50 ms: $(verdict "$m_p99" 50 '<'))
  pgbench's own p99 at $CONNECTIONS clients    $( [ "${#pgb_p99_all[@]}" -gt 0 ] && median "${pgb_p99_all[@]}" || echo -) ms
  ratio orders/s / pgbench tps         $m_ratio      (target >= 0.6: $(verdict "$m_ratio" 0.6 '>='))
  CPU per order, till / postgres       $( [ "${#till_cpu_all[@]}" -gt 0 ] && echo "$(median "${till_cpu_all[@]}") / $(median "${pg_cpu_all[@]}") ms" || echo "- (sequential mode only)")
  orders in the database               $orders
  errors logged by the server          $errors5
  Till's connections using TLS         $till_tls    (PG_SSLMODE=${PG_SSLMODE:-unset})
EOF
if [ "${#floor_all[@]}" -gt 0 ]; then
  m_floor="$(median "${floor_all[@]}")"
  cat <<EOF
  database floor orders/s, $DB_POOL clients   $m_floor    (p99 $(median "${floor_p99_all[@]}") ms; the order's two statements by pgbench, no HTTP)
  checkout orders/s / floor            $(awk -v a="$m_rps" -v b="$m_floor" 'BEGIN { printf "%.2f", a / b }')
  least mean latency at $CONNECTIONS clients   $(awk -v c="$CONNECTIONS" -v b="$m_floor" 'BEGIN { printf "%.1f", c * 1000 / b }') ms    ($CONNECTIONS ÷ floor orders/s, Little's law)
EOF
fi
