#!/usr/bin/env bash
# Till benchmark (issue #5): live-event fan-out to 10,000 WebSocket clients across two instances.
#
#   loadtests/ws.sh [--clients N] [--rate R] [--duration S] [--staff S] [--customer-accounts K]
#                   [--source-addrs K] [--connect-concurrency C]
#
#   --clients     WebSocket clients held open on instance B (default 10000)
#   --rate        orders per second placed through instance A (default 5: 18,000 orders an hour; with
#                 every client staff that is 50,000 frames/s from instance B, sharing 2 cores with the
#                 10,000 readers; at 20/s, 200,000 frames/s, more than such a machine can carry)
#   --duration    seconds of ordering (default 20)
#   --staff       how many of the clients sign in as staff (default: all). The others sign in as
#                 customers, spread over --customer-accounts accounts registered for the run
#                 (default 100), and each order is placed for one of them in turn: it goes to every
#                 staff client and to that customer's clients only. All-staff is the worst case
#                 (every event to every client); a shop's real mix is a few boards and many customers.
#   --source-addrs  spread client sockets over 127.0.0.2..127.0.0.(K+1) (default 1: no explicit bind)
#   --connect-concurrency  WebSocket handshakes in flight at once (default 200)
#
# Builds the release `till` and the load generator (loadtests/wsload, not a workspace member; same
# CARGO_TARGET_DIR), creates a fresh database (till_ws_bench), migrates it and seeds demo data, raises the
# open-files limit, starts instances A and B on 127.0.0.1 (TILL_BENCH_PORT+1, +2; default 18381, 18382)
# sharing PostgreSQL and Redis (one fresh REDIS_NAMESPACE), with WS_MAX_CONNECTIONS=20000,
# WS_MAX_PER_USER=20000 and rate limits out of the way. The generator signs every client in as
# staff@till.local, waits until all have their `welcome`, reads instance B's VmRSS/VmHWM, places orders
# as cashier@till.local, and measures for every (client, event) pair receive time − the event's `at`
# (server clock, same machine; stamped inside the transaction just before commit: a slight overestimate).
# Prints a table (with the CPU instance B and the generator used while ordering, and the load average);
# stops everything it started on exit. Uses TILL_BIN when set instead of building.
# Everything shares this machine: on loopback the sender's write also runs the receiver's TCP path, and the
# generator's 10,000 readers compete with instance B for the same cores, so latency here is an upper bound
# that moves with other load (compare the CPU line and the load average between runs).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib/services.sh
source scripts/lib/services.sh

clients=10000 rate=5 duration=20 source_addrs=1 concurrency=200 staff="" accounts=100
while [ $# -gt 0 ]; do
  case "$1" in
    --clients) clients=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --staff) staff=$2; shift 2 ;;
    --customer-accounts) accounts=$2; shift 2 ;;
    --source-addrs) source_addrs=$2; shift 2 ;;
    --connect-concurrency) concurrency=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "ws.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

die() { printf 'ws.sh: %s\n' "$*" >&2; exit 1; }
say() { printf '==> %s\n' "$*" >&2; }

# Open files: every client socket is a descriptor in the generator, and every connection one in instance B
# (each process has its own limit). Ask for 65536; a container without CAP_SYS_RESOURCE cannot go above
# its hard limit, which is enough as long as it covers the clients plus headroom.
need=$((clients + 1024))
if ! ulimit -n 65536 2>/dev/null; then
  hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
    die "open-files limit: cannot raise to 65536 and the hard limit ($hard) is below the $need needed for $clients clients (run as root, or raise the hard limit: ulimit -Hn / LimitNOFILE / docker --ulimit nofile=65536:65536)"
  fi
  ulimit -n "$hard" || die "cannot raise the open-files limit to the hard limit $hard"
  say "open-files limit: 65536 not allowed here (hard limit $hard); using $hard (enough for $clients clients + headroom)"
fi
say "open files: $(ulimit -n) per process"

till_ensure_services
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/till-target}"
if [ -z "${TILL_BIN:-}" ]; then
  say "cargo build --release --bin till"
  cargo build --release --bin till >&2
  TILL_BIN="$CARGO_TARGET_DIR/release/till"
fi
say "cargo build --release --manifest-path loadtests/wsload/Cargo.toml"
cargo build --release --manifest-path loadtests/wsload/Cargo.toml >&2
WSLOAD="$CARGO_TARGET_DIR/release/wsload"

base=${TILL_BENCH_PORT:-18380}
port_a=$((base + 1)) port_b=$((base + 2))
for p in "$port_a" "$port_b"; do
  till__port_in_use "$p" && die "port $p is in use (set TILL_BENCH_PORT to another base)"
done

dir="$ROOT/.tmp/ws-bench"
mkdir -p "$dir"
db=till_ws_bench
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "fresh database $db"
admin="$TILL_PG_URL/postgres"
PGOPTIONS="-c client_min_messages=warning" psql -w -X -q -d "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
psql -w -X -q -d "$admin" -c "CREATE DATABASE $db" >/dev/null

export DATABASE_URL="$TILL_PG_URL/$db"
export REDIS_URL="$TILL_REDIS_URL"
REDIS_NAMESPACE="till-ws-bench-$(date +%s)-$$"
export REDIS_NAMESPACE
export JWT_SECRET=till-ws-bench-local-secret-0123456789abcdef
export ADMIN_EMAIL=admin@ws-bench.local ADMIN_PASSWORD=ws-bench-admin-pass
export WS_MAX_CONNECTIONS=20000 WS_MAX_PER_USER=20000
export RATE_LIMIT_ANON_PER_MIN=1000000000 RATE_LIMIT_USER_PER_MIN=1000000000 RATE_LIMIT_LOGIN_PER_MIN=1000000
export RATE_LIMIT_LOGIN_IP_PER_MIN=1000000 RATE_LIMIT_REGISTER_PER_MIN=1000000
export DATABASE_MAX_CONNECTIONS=${DATABASE_MAX_CONNECTIONS:-8}
export SHUTDOWN_DRAIN_MS=200 LOG_FORMAT=json RUST_LOG=${RUST_LOG:-warn}
unset DATABASE_READ_URL

say "migrate and seed (demo)"
"$TILL_BIN" migrate >"$dir/migrate.log" 2>&1 || { tail -n 20 "$dir/migrate.log" >&2; die "till migrate failed"; }
"$TILL_BIN" seed --demo >"$dir/seed.log" 2>&1 || { tail -n 20 "$dir/seed.log" >&2; die "till seed --demo failed"; }

start() { # NAME PORT
  BIND_ADDR=127.0.0.1:$2 INSTANCE_ID=$1 "$TILL_BIN" serve </dev/null >"$dir/$1.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  eval "pid_$1=$pid"
  for _ in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$2/health/readiness")" = 200 ] && return 0
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$dir/$1.log" >&2; die "instance $1 exited (log: $dir/$1.log)"; }
    sleep 0.2
  done
  die "instance $1 not ready on port $2 (log: $dir/$1.log)"
}
start A "$port_a"
start B "$port_b"
# shellcheck disable=SC2154
say "instance A pid $pid_A on 127.0.0.1:$port_a, instance B pid $pid_B on 127.0.0.1:$port_b (open files: $(awk '/Max open files/ {print $4}' "/proc/$pid_B/limits"))"

# Load average across the whole run, sampled every 2 s.
(while :; do cut -d' ' -f1-3 /proc/loadavg; sleep 2; done) >"$dir/loadavg.log" 2>/dev/null &
pids+=("$!")

say "load generator: $clients clients on B, $rate orders/s for $duration s through A"
cmd=("$WSLOAD" --ws "ws://127.0.0.1:$port_b/api/v1/ws" --api "http://127.0.0.1:$port_a"
  --clients "$clients" --rate "$rate" --duration "$duration" --server-pid "$pid_B"
  --source-addrs "$source_addrs" --connect-concurrency "$concurrency" --customer-accounts "$accounts")
[ -n "$staff" ] && cmd+=(--staff "$staff")
set +e
"${cmd[@]}" | tee "$dir/result.txt"
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || die "load generator failed (status $status)"

loads=$(awk '{print $1}' "$dir/loadavg.log" | sort -n | awk '{a[NR]=$1} END {if (NR) printf "min %s, max %s (1-min load average, %d samples)", a[1], a[NR], NR}')
echo
echo "load average during the run: $loads on $(nproc) cores"
res() { sed -n "s/^result\.$1=//p" "$dir/result.txt"; }
ok=1
[ "$(res welcomed)" = "$clients" ] && [ "$(res open_at_end)" = "$clients" ] || ok=0
[ "$(res missing)" = 0 ] || ok=0
[ "$(res foreign)" = 0 ] || ok=0
awk -v p="$(res p99_ms)" 'BEGIN {exit !(p < 100)}' || ok=0
awk -v r="$(res rss_peak_kib)" -v h="$(res hwm_kib)" 'BEGIN {exit !(r < 300*1024 && h < 300*1024)}' || ok=0
if [ "$ok" = 1 ]; then echo "targets: all met"; else echo "targets: NOT all met (see the table)"; fi
