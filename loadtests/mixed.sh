#!/usr/bin/env bash
# Till benchmark: a realistic shop load through nginx with 1, 2 and 3 instances, reported per request
# type, with the CPU split between nginx, Till, PostgreSQL and Redis; a 1,000-connection scenario that
# must end without a single error; idle and loaded memory and start-up time of one `till serve`.
#
#   loadtests/mixed.sh [--quick] [--no-build] [--plot-only]
#
#   --quick     a ~1 minute smoke run (short steps, fewer settings; results under .tmp/mixed-bench
#               unless RESULTS is set)
#   --no-build  use the binaries already built (TILL_BIN, or $CARGO_TARGET_DIR/release/till, and
#               $CARGO_TARGET_DIR/release/mixload)
#   --plot-only redraw $RESULTS/mixed.png from $RESULTS/mixed.csv, nothing else
#
# The mix (per closed-loop connection, each request's type drawn by weight; `mixload run` in
# loadtests/wsload): browse 60 % (GET /products?limit=20: the front page, a category, or the next
# page of the last listing), search 15 % (q= a name word, its start, a SKU or a barcode), product page
# 10 % (GET /products/{id}), checkout 10 % (POST /orders with 3 lines by a cashier, then POST
# /orders/{id}/payments paying the total in cash; both with their own Idempotency-Key), board and order
# reads 5 % (GET /orders/board, GET /orders/{id} of an order of the run, by staff); plus WS_CLIENTS
# WebSockets on /api/v1/ws held through the run (WS_BOARDS staff boards, the rest customers, each on
# their own account; 30 % of the checkouts name one of them, who then sees the order live).
# Catalogue reads are anonymous and accept gzip, as a browser does.
#
# What it does:
#   1. raises the open-files limit; builds `mixload` (and `till`, unless TILL_BIN is set);
#   2. creates the database till_mixed_bench (dropped first), migrates it, `till seed --demo` and
#      `till seed --products $PRODUCTS`, then gives every stocked product 100,000,000 more units (a
#      `received` movement each) so no checkout runs out;
#   3. start-up and idle memory: starts one `till serve` STARTS times; time from process start until
#      /health/readiness answers 200, and VmRSS after 3 s idle (medians);
#   4. for each instance count in INSTANCES: `scripts/cluster.sh up N` (N `till serve`, a `till worker`
#      and nginx with the repository's config, rendered by `till lb-config nginx`), then the mix at each
#      connection count in CONNECTIONS (WARMUP s unmeasured + DURATION s measured, RUNS rounds),
#      through nginx. CPU time (utime+stime from /proc; with their reaped children's for nginx and
#      Till) of nginx, the till instances, the worker, PostgreSQL (this database's backends and the server's own processes, not
#      other databases' backends: the server may be shared) and redis-server over each window, and
#      whatever else the machine did meanwhile;
#   5. with BIG_INSTANCES instances: BIG_CONNECTIONS (1,000) connections through nginx, then the same
#      straight to one instance (its RSS while it holds them). Both must end with 0 errors (HTTP and
#      WebSocket), else the script exits 1 after reporting;
#   6. writes $RESULTS/mixed.csv (one line per setting: totals, WebSocket, CPU, memory), mixed-types.csv
#      (per request type), summary.md (the tables) and mixed.png (gnuplot: req/s and p99 against
#      connections, one line per instance count); every run's JSON stays in .tmp/mixed-bench/raw.
#
# Environment (defaults; --quick ones in brackets):
#   DURATION 25 [4]  WARMUP 5 [1]  CONNECTIONS "16 64 256" ["16 64"]  INSTANCES "1 2 3" ["1 2"]  RUNS 1
#   BIG_CONNECTIONS 1000 (0: skip)  BIG_INSTANCES 3 [2]  BIG_DURATION $DURATION
#   WS_CLIENTS 200 [50]  WS_BOARDS 20 [5]  PRODUCTS 20000 [2000]  STARTS 5 [2]
#   MIX browse=60,search=15,product=10,checkout=10,board=2.5,order=2.5   GEN_THREADS 2
#   RESULTS loadtests/results [.tmp/mixed-bench/results]   TILL_BENCH_PORT 18480 (nginx; instances +1..)
#   TILL_BIN  a till binary (skips building it)   KEEP_DB=1 keeps the database   RUST_LOG warn
#   INSTANCES= (empty) skips the mixed runs (only the 1,000-connection scenario); BIG_CONNECTIONS=0 skips that.
#   Till settings in the environment reach every instance (scripts/cluster.sh passes them on), e.g.
#   DATABASE_MAX_CONNECTIONS (cluster default 8 per instance) or DATABASE_ACQUIRE_TIMEOUT_MS (Till's
#   default 2000: a request that waits longer for a pooled connection is answered 503).
# Default run: about 7 minutes (6 min 31 s on 2 cores). Rate limits are set out of the way (the load comes from one address);
# nginx's own login limit does not matter (accounts sign in once, straight to an instance).
# Everything runs on this machine: the generator, nginx, the instances, PostgreSQL and Redis share its
# cores, so more instances add little throughput here (they share the same CPUs); the figures show
# what the stack costs and that nothing fails under load, not what more machines would carry.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib/services.sh
source scripts/lib/services.sh

quick=0 build=1 plot_only=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --no-build) build=0 ;;
    --plot-only) plot_only=1 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "mixed.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done
if [ "$quick" = 1 ]; then
  : "${DURATION:=4}" "${WARMUP:=1}" "${CONNECTIONS:=16 64}" "${INSTANCES:=1 2}" "${BIG_INSTANCES:=2}"
  : "${WS_CLIENTS:=50}" "${WS_BOARDS:=5}" "${PRODUCTS:=2000}" "${STARTS:=2}"
  : "${RESULTS:=$ROOT/.tmp/mixed-bench/results}"
fi
DURATION=${DURATION:-25} WARMUP=${WARMUP:-5} CONNECTIONS=${CONNECTIONS-16 64 256} INSTANCES=${INSTANCES-1 2 3}
RUNS=${RUNS:-1} BIG_CONNECTIONS=${BIG_CONNECTIONS:-1000} BIG_INSTANCES=${BIG_INSTANCES:-3}
BIG_DURATION=${BIG_DURATION:-$DURATION} WS_CLIENTS=${WS_CLIENTS:-200} WS_BOARDS=${WS_BOARDS:-20}
PRODUCTS=${PRODUCTS:-20000} STARTS=${STARTS:-5} GEN_THREADS=${GEN_THREADS:-2}
MIX=${MIX:-browse=60,search=15,product=10,checkout=10,board=2.5,order=2.5}
RESULTS=${RESULTS:-$ROOT/loadtests/results}

die() { printf 'mixed.sh: %s\n' "$*" >&2; exit 1; }
say() { printf '==> %s\n' "$*" >&2; }

# The plot, from $RESULTS/mixed.csv: req/s (top) and p99 (bottom) against connections, one line per
# instance count (the mixed scenario only).
plot_results() {
  local csv="$RESULTS/mixed.csv" dat tics
  [ -s "$csv" ] || die "no $csv to plot"
  dat=$(mktemp)
  awk -F, 'NR > 1 && $1 == "mixed" {print $2, $3, $5, $7}' "$csv" | sort -n -k1,1 -k2,2 | awk '
    $1 != last { if (NR > 1) printf "\n\n"; printf "\"%d instance%s\"\n", $1, ($1 > 1 ? "s" : ""); last = $1 }
    { print $2, $3, $4 }' >"$dat"
  tics=$(awk -F, 'NR > 1 && $1 == "mixed" {print $3}' "$csv" | sort -nu | paste -sd, -)
  if [ -z "$tics" ]; then rm -f "$dat"; return 0; fi
  gnuplot <<GP || { rm -f "$dat"; die "gnuplot failed"; }
set terminal pngcairo size 900,900 font "DejaVu Sans,11"
set output "$RESULTS/mixed.png"
set multiplot layout 2,1 title "Till, mixed shop load through nginx ($(nproc) cores shared by everything)"
set logscale x 2
set xtics ($tics)
set xrange [${tics%%,*} / 1.3 : ${tics##*,} * 1.3]
set xlabel "concurrent connections, closed loop (+ $WS_CLIENTS WebSockets)"
set grid
set key top left
set ylabel "requests/s (all types)"
set yrange [0:*]
plot for [i=0:*] "$dat" index i using 1:2 with linespoints linewidth 2 pointtype 7 title columnheader(1)
set ylabel "p99 latency, ms (all types)"
plot for [i=0:*] "$dat" index i using 1:3 with linespoints linewidth 2 pointtype 7 title columnheader(1)
unset multiplot
GP
  rm -f "$dat"
  say "plot: $RESULTS/mixed.png"
}
if [ "$plot_only" = 1 ]; then
  command -v gnuplot >/dev/null 2>&1 || till__apt_install gnuplot-nox
  plot_results
  exit 0
fi
for v in DURATION WARMUP RUNS BIG_CONNECTIONS BIG_INSTANCES BIG_DURATION WS_CLIENTS WS_BOARDS PRODUCTS STARTS GEN_THREADS; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number, not ${!v}"
done
for x in $CONNECTIONS $INSTANCES; do [[ "$x" =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS and INSTANCES are lists of numbers, not $x"; done
[ "$WS_BOARDS" -le "$WS_CLIENTS" ] || die "WS_BOARDS ($WS_BOARDS) is more than WS_CLIENTS ($WS_CLIENTS)"

# Open files: the generator holds every connection (and nginx two per proxied one); each process has its
# own limit, inherited from here. Ask for 65536; without the privilege to raise the hard limit, use it.
if ! ulimit -n 65536 2>/dev/null; then
  hard=$(ulimit -Hn)
  [ "$hard" = unlimited ] || [ "$hard" -ge $((BIG_CONNECTIONS * 2 + WS_CLIENTS * 2 + 1024)) ] ||
    die "open-files hard limit $hard is too low for $BIG_CONNECTIONS connections (raise it: ulimit -Hn, LimitNOFILE, docker --ulimit nofile=65536:65536)"
  ulimit -n "$hard"
fi

till_ensure_services
till_ensure_nginx
command -v gnuplot >/dev/null 2>&1 || till__apt_install gnuplot-nox
command -v python3 >/dev/null 2>&1 || till__apt_install python3

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/till-target}"
if [ -z "${TILL_BIN:-}" ]; then
  if [ "$build" = 1 ]; then
    say "cargo build --release --bin till"
    cargo build --release --bin till >&2
  fi
  TILL_BIN="$CARGO_TARGET_DIR/release/till"
fi
[ -x "$TILL_BIN" ] || die "no till binary at $TILL_BIN (drop --no-build, or set TILL_BIN)"
export TILL_BIN
if [ "$build" = 1 ]; then
  say "cargo build --release --manifest-path loadtests/wsload/Cargo.toml --bin mixload"
  cargo build --release --manifest-path loadtests/wsload/Cargo.toml --bin mixload >&2
fi
MIXLOAD="$CARGO_TARGET_DIR/release/mixload"
[ -x "$MIXLOAD" ] || die "no mixload at $MIXLOAD (drop --no-build)"

base=${TILL_BENCH_PORT:-18480}
db=till_mixed_bench
work="$ROOT/.tmp/mixed-bench"
# A cluster left by an interrupted run of this script is stopped before its state goes.
if [ -f "$work/cluster/state" ]; then TILL_CLUSTER_DIR="$work/cluster" scripts/cluster.sh down >/dev/null 2>&1 || true; fi
rm -rf "$work/raw" "$work/cluster" "$work/accounts.json"
mkdir -p "$work/raw" "$RESULTS"
export TILL_CLUSTER_DIR="$work/cluster" TILL_CLUSTER_PORT=$base TILL_CLUSTER_DB=$db
for p in "$base" $((base + 50)); do
  till__port_in_use "$p" && die "port $p is in use (set TILL_BENCH_PORT to another base)"
done

# Settings of every instance (scripts/cluster.sh hands them on) and of the start-up test.
export DATABASE_URL="$TILL_PG_URL/$db" REDIS_URL="$TILL_REDIS_URL"
REDIS_NAMESPACE="till-mixed-bench-$(date +%s)-$$"
export REDIS_NAMESPACE
export JWT_SECRET=till-mixed-bench-local-secret-0123456789abcdef
export ADMIN_EMAIL=admin@mixed-bench.local ADMIN_PASSWORD=mixed-bench-admin-pass
export RATE_LIMIT_ANON_PER_MIN=1000000000 RATE_LIMIT_USER_PER_MIN=1000000000
export RATE_LIMIT_LOGIN_PER_MIN=1000000 RATE_LIMIT_LOGIN_IP_PER_MIN=1000000 RATE_LIMIT_REGISTER_PER_MIN=1000000
# Tokens are made once (mixload prepare) and used by every run.
export JWT_TTL_SECONDS=86400 SESSION_TTL_SECONDS=86400
export SHUTDOWN_DRAIN_MS=200 LOG_FORMAT=json RUST_LOG=${RUST_LOG:-warn}
unset DATABASE_READ_URL REDIS_CACHE_URL

started_cluster=0
cleanup() {
  local pid
  pid=$(cat "$work/startup.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$TILL_BIN"; then
    kill -TERM "$pid" 2>/dev/null || true
  fi
  rm -f "$work/startup.pid"
  [ "$started_cluster" = 1 ] && scripts/cluster.sh down >/dev/null 2>&1
  if [ "${KEEP_DB:-0}" != 1 ]; then
    PGOPTIONS="-c client_min_messages=warning" psql -w -X -q -d "$TILL_PG_URL/postgres" \
      -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  # This run's keys only (its namespace is unique to it).
  redis-cli -u "$TILL_REDIS_URL" --scan --pattern "$REDIS_NAMESPACE*" 2>/dev/null |
    xargs -r -n 500 redis-cli -u "$TILL_REDIS_URL" del >/dev/null 2>&1 || true
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------------------------- the database
say "database $db: migrate, seed --demo, seed --products $PRODUCTS, stock for every checkout"
admin_db="$TILL_PG_URL/postgres"
PGOPTIONS="-c client_min_messages=warning" psql -w -X -q -d "$admin_db" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
psql -w -X -q -d "$admin_db" -c "CREATE DATABASE $db" >/dev/null
"$TILL_BIN" migrate >"$work/setup.log" 2>&1 || { tail -n 20 "$work/setup.log" >&2; die "till migrate failed"; }
"$TILL_BIN" seed --demo >>"$work/setup.log" 2>&1 || { tail -n 20 "$work/setup.log" >&2; die "till seed --demo failed"; }
if [ "$PRODUCTS" -gt 0 ]; then
  "$TILL_BIN" seed --products "$PRODUCTS" >>"$work/setup.log" 2>&1 ||
    { tail -n 20 "$work/setup.log" >&2; die "till seed --products failed"; }
fi
# Through the ledger, as a delivery would arrive: a `received` movement per product, at the default
# location. Statistics for the catalogue only: telling the planner that `orders` is empty would make
# pooled connections keep sequential-scan plans for it as it grows (see checkout.sh).
psql -w -X -q -d "$DATABASE_URL" >/dev/null <<'SQL'
WITH topped AS (
    UPDATE products SET stock_on_hand = stock_on_hand + 100000000 WHERE track_stock
    RETURNING id, stock_on_hand
)
INSERT INTO inventory_movements (id, product_id, delta, reason, balance_after, note)
SELECT gen_random_uuid(), id, 100000000, 'received', stock_on_hand, 'mixed load test stock' FROM topped;
ANALYZE products;
ANALYZE categories;
SQL
nproducts=$(psql -w -X -A -t -d "$DATABASE_URL" -c "SELECT count(*) FROM products WHERE active")
say "$nproducts active products"

# --------------------------------------------------------------------- start-up and idle memory
say "start-up to ready and idle RSS: $STARTS starts of one till serve"
(
  export BIND_ADDR=127.0.0.1:$((base + 50)) INSTANCE_ID=startup
  "$MIXLOAD" startup --url "http://127.0.0.1:$((base + 50))/health/readiness" --runs "$STARTS" --settle 3 \
    --log "$work/startup.log" --pid-file "$work/startup.pid" --json "$work/raw/startup.json" -- "$TILL_BIN" serve
) | tee "$work/startup.txt"

# ------------------------------------------------------------------------------------ the runs
accounts="$work/accounts.json"
staff_accounts=$(((WS_BOARDS + 4) / 5)) # WS_MAX_PER_USER (5): at most 5 boards per account
[ "$staff_accounts" -ge 1 ] || staff_accounts=1
customer_accounts=$((WS_CLIENTS - WS_BOARDS))
[ "$customer_accounts" -ge 1 ] || customer_accounts=1

# The pids of the cluster's processes, for the CPU groups.
cluster_pids() {
  # shellcheck disable=SC1091
  nginx_dir=$(source "$TILL_CLUSTER_DIR/state" && echo "$NGINX_DIR")
  nginx_pid=$(cat "$nginx_dir/nginx.pid")
  worker_pid=$(cat "$TILL_CLUSTER_DIR/worker.pid" 2>/dev/null || true)
  web_pids=()
  local f
  for f in "$TILL_CLUSTER_DIR"/web-*.pid; do web_pids+=("$(cat "$f")"); done
}

# run_mix SCENARIO INSTANCES CONNECTIONS RUN DURATION URL WS_URL [extra mixload args…]
run_mix() {
  local scenario=$1 n=$2 c=$3 r=$4 d=$5 url=$6 ws_url=$7
  shift 7
  local out="$work/raw/$scenario-$n-$c-$r" args i status
  args=(run --url "$url" --ws-url "$ws_url" --accounts "$accounts" --connections "$c" --duration "$d"
    --warmup "$WARMUP" --mix "$MIX" --ws-clients "$WS_CLIENTS" --ws-boards "$WS_BOARDS"
    --threads "$GEN_THREADS" --timeout 30
    --cpu "nginx=pids:$nginx_pid" --cpu "till serve=pids:$(IFS=,; echo "${web_pids[*]}")"
    --cpu "postgres=pg:$db" --cpu redis=comm:redis-server
    --meta "scenario=$scenario" --meta "instances=$n" --meta "run=$r"
    --json "$out.json" --csv "$work/types.csv")
  [ -n "$worker_pid" ] && args+=(--cpu "till worker=pids:$worker_pid")
  for i in "${!web_pids[@]}"; do args+=(--rss "web-$((i + 1))=${web_pids[$i]}"); done
  say "$scenario: $n instance(s), $c connections, run $r (${WARMUP}+${d} s)"
  set +e
  "$MIXLOAD" "${args[@]}" "$@" | tee "$out.txt"
  status=${PIPESTATUS[0]}
  set -e
  [ "$status" = 0 ] || [ "$status" = 3 ] || die "mixload failed (status $status)"
  # nginx logs every request (as deployed): emptied after each run so the runs do not fill the disk.
  : >"$nginx_dir/access.log" 2>/dev/null || true
  return 0
}

rm -f "$work/types.csv"
setups=$(printf '%s\n' $INSTANCES "$([ "$BIG_CONNECTIONS" -gt 0 ] && echo "$BIG_INSTANCES")" | grep . | sort -nu)
for n in $setups; do
  say "cluster: $n instance(s) behind nginx"
  started_cluster=1
  scripts/cluster.sh up "$n" 2>"$work/cluster-up.log" || { cat "$work/cluster-up.log" >&2; die "cluster up $n failed"; }
  cluster_pids
  nginx_url="http://127.0.0.1:$base"
  if [ ! -s "$accounts" ]; then
    say "accounts: 4 cashiers, $staff_accounts staff, $customer_accounts customers (straight to instance 1)"
    rss_before=$(awk '/^VmRSS:/ {print $2}' "/proc/${web_pids[0]}/status")
    "$MIXLOAD" prepare --url "http://127.0.0.1:$((base + 1))" --admin-email "$ADMIN_EMAIL" \
      --admin-password "$ADMIN_PASSWORD" --cashiers 4 --staff "$staff_accounts" --customers "$customer_accounts" \
      --out "$accounts"
    rss_after=$(awk '/^VmRSS:/ {print $2}' "/proc/${web_pids[0]}/status")
    # Every account creation and sign-in hashes a password (Argon2id, 19 MiB each, on the blocking
    # pool); what the instance keeps afterwards is reported, then it is restarted so that the
    # figures below start from a fresh process.
    printf '{"accounts": %d, "rss_before_kib": %d, "rss_after_kib": %d}\n' \
      $((4 + staff_accounts + customer_accounts)) "$rss_before" "$rss_after" >"$work/raw/signins.json"
    say "instance 1 RSS: $((rss_before / 1024)) MiB before, $((rss_after / 1024)) MiB after $((4 + staff_accounts + customer_accounts)) account creations + sign-ins; restarting it"
    scripts/cluster.sh restart 1 2>>"$work/cluster-up.log"
    cluster_pids
  fi
  if printf '%s\n' $INSTANCES | grep -qx "$n"; then
    for r in $(seq 1 "$RUNS"); do
      for c in $CONNECTIONS; do
        run_mix mixed "$n" "$c" "$r" "$DURATION" "$nginx_url" "ws://127.0.0.1:$base/api/v1/ws"
      done
    done
  fi
  if [ "$BIG_CONNECTIONS" -gt 0 ] && [ "$n" = "$BIG_INSTANCES" ]; then
    run_mix big-nginx "$n" "$BIG_CONNECTIONS" 1 "$BIG_DURATION" "$nginx_url" "ws://127.0.0.1:$base/api/v1/ws"
    # Every connection on one instance: its memory while it holds them (and the same 0 errors).
    run_mix big-direct 1 "$BIG_CONNECTIONS" 1 "$BIG_DURATION" "http://127.0.0.1:$((base + 1))" \
      "ws://127.0.0.1:$((base + 1))/api/v1/ws"
  fi
  scripts/cluster.sh down 2>/dev/null
  started_cluster=0
done

# ------------------------------------------------------------------------------------ the report
say "results in $RESULTS (every run's JSON, with examples of any errors and their request ids: $work/raw)"
cp "$work/types.csv" "$RESULTS/mixed-types.csv"
set +e
python3 - "$work/raw" "$RESULTS" "$(nproc)" "$nproducts" <<'PY'
import glob, json, os, statistics, sys

raw, out, ncpu, nproducts = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
runs = []
for p in sorted(glob.glob(os.path.join(raw, "*.json"))):
    if os.path.basename(p) in ("startup.json", "signins.json"):
        continue
    with open(p) as f:
        runs.append(json.load(f))
startup = json.load(open(os.path.join(raw, "startup.json")))
signins = json.load(open(os.path.join(raw, "signins.json")))

def key(r):
    return (r["meta"]["scenario"], int(r["meta"]["instances"]), r["connections"])

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")

def cpu(r, name):
    for g in r["cpu"]["groups"]:
        if g["name"] == name:
            return g
    return {"cores": 0.0, "share_pct": 0.0, "cpu_s": 0.0}

groups = {}
for r in runs:
    groups.setdefault(key(r), []).append(r)

names = ["nginx", "till serve", "till worker", "postgres", "redis"]
rows = []
for k in sorted(groups):
    rs = groups[k]
    a = lambda f: med([f(r) for r in rs])
    rows.append({
        "scenario": k[0], "instances": k[1], "connections": k[2], "runs": len(rs),
        "rps": a(lambda r: r["types"]["all HTTP"]["rps"]),
        "p50_ms": a(lambda r: r["types"]["all HTTP"]["p50_ms"]),
        "p99_ms": a(lambda r: r["types"]["all HTTP"]["p99_ms"]),
        "checkouts_per_s": a(lambda r: r["types"]["checkout"]["rps"]),
        "checkout_p99_ms": a(lambda r: r["types"]["checkout"]["p99_ms"]),
        "http_errors": sum(r["types"]["all HTTP"]["errors"] for r in rs),
        "ws_welcomed": min(r["ws"]["welcomed"] for r in rs),
        "ws_frames_per_s": a(lambda r: r["ws"]["frames_per_s"]),
        "ws_delay_p99_ms": a(lambda r: r["ws"]["delay_p99_ms"]),
        "ws_errors": sum(r["ws"]["errors"] for r in rs),
        **{"cores_" + n.replace(" ", "_"): a(lambda r, n=n: cpu(r, n)["cores"]) for n in names},
        **{"share_" + n.replace(" ", "_"): a(lambda r, n=n: cpu(r, n)["share_pct"]) for n in names},
        "cores_generator": a(lambda r: r["cpu"]["generator_s"] / r["cpu"]["window_s"]),
        "cores_machine_busy": a(lambda r: r["cpu"]["machine_busy_s"] / r["cpu"]["window_s"]),
        "cores_other": a(lambda r: max(0.0, r["cpu"]["machine_busy_s"] - r["cpu"]["generator_s"]
                                       - sum(g["cpu_s"] for g in r["cpu"]["groups"])) / r["cpu"]["window_s"]),
        "rss_peak_mib": a(lambda r: max([m["peak_kib"] for m in r["memory"].values()] or [0]) / 1024),
        "rss_web1_peak_mib": a(lambda r: r["memory"].get("web-1", {}).get("peak_kib", 0) / 1024),
        "web1_peak_sockets": a(lambda r: r["memory"].get("web-1", {}).get("peak_sockets", 0)),
    })

cols = list(rows[0].keys()) if rows else []
with open(os.path.join(out, "mixed.csv"), "w") as f:
    f.write(",".join(cols) + "\n")
    for row in rows:
        f.write(",".join(f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in cols) + "\n")

mixed = [r for r in rows if r["scenario"] == "mixed"]

def fmt(x, nd=1):
    return "–" if x != x else f"{x:,.{nd}f}"

md = []
first = runs[0] if runs else None
md.append(f"Machine: {ncpu} cores shared by everything; {nproducts} active products; "
          f"{first['ws']['clients'] if first else 0} WebSocket clients ({first['ws']['boards'] if first else 0} boards); "
          f"{first['duration_s'] if first else 0:.0f} s measured after {first['warmup_s'] if first else 0:.0f} s warm-up per setting.")
md.append("")
md.append("Mixed scenario through nginx, all HTTP requests together:")
md.append("")
md.append("| instances | connections | req/s | p50 ms | p99 ms | checkouts/s | checkout p99 ms | errors (HTTP + WS) |")
md.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in mixed:
    md.append(f'| {r["instances"]} | {r["connections"]} | {fmt(r["rps"], 0)} | {fmt(r["p50_ms"], 2)} | {fmt(r["p99_ms"], 2)} | '
              f'{fmt(r["checkouts_per_s"])} | {fmt(r["checkout_p99_ms"], 1)} | {r["http_errors"]} + {r["ws_errors"]} |')
md.append("")
md.append("CPU split over each measured window: cores used (share of nginx + till + worker + PostgreSQL + Redis). "
          "PostgreSQL: this database's backends and the server's own processes; everything else: other work "
          "on the machine and kernel time charged to no process.")
md.append("")
md.append("| instances | connections | nginx | till serve | till worker | PostgreSQL | Redis | generator | everything else | machine busy |")
md.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    cells = [f'{fmt(r["cores_" + n.replace(" ", "_")], 2)} ({fmt(r["share_" + n.replace(" ", "_")], 0)} %)' for n in names]
    label = r["instances"] if r["scenario"] == "mixed" else f'{r["instances"]} ({r["scenario"]})'
    md.append(f'| {label} | {r["connections"]} | ' + " | ".join(cells) +
              f' | {fmt(r["cores_generator"], 2)} | {fmt(r["cores_other"], 2)} | {fmt(r["cores_machine_busy"], 2)} of {ncpu} |')

def per_type(r, title):
    md.append("")
    md.append(title)
    md.append("")
    md.append("| type | requests | req/s | p50 ms | p99 ms | errors |")
    md.append("|---|---:|---:|---:|---:|---:|")
    order = ["browse", "search", "product", "checkout", "checkout.order", "checkout.pay", "board", "order", "all HTTP"]
    for name in order:
        t = r["types"][name]
        errs = str(t["errors"])
        if t["error_kinds"]:
            errs += " (" + "; ".join(f"{n}× {k}" for k, n in t["error_kinds"].items()) + ")"
        md.append(f'| {name} | {t["requests"]} | {fmt(t["rps"])} | {fmt(t["p50_ms"] if t["p50_ms"] is not None else float("nan"), 2)} | '
                  f'{fmt(t["p99_ms"] if t["p99_ms"] is not None else float("nan"), 2)} | {errs} |')
    w = r["ws"]
    md.append(f'| WebSocket | {w["welcomed"]}/{w["clients"]} connected | {fmt(w["frames_per_s"])} frames/s | '
              f'event delay p50 {fmt(w["delay_p50_ms"] if w["delay_p50_ms"] is not None else float("nan"))} | '
              f'{fmt(w["delay_p99_ms"] if w["delay_p99_ms"] is not None else float("nan"))} | {w["errors"]} |')

if mixed:
    # The representative setting: the most instances, at the middle connection count.
    top = max(r["instances"] for r in mixed)
    conns = sorted({r["connections"] for r in mixed if r["instances"] == top})
    c = conns[len(conns) // 2]
    rep = [r for r in runs if key(r) == ("mixed", top, c)][0]
    per_type(rep, f"Per request type, {top} instance(s), {c} connections (run 1):")
big_errors = 0
for scen, title in (("big-nginx", "through nginx"), ("big-direct", "straight to one instance")):
    for r in runs:
        if r["meta"]["scenario"] == scen:
            big_errors += r["errors_total"]
            per_type(r, f'{r["connections"]} connections {title} ({r["meta"]["instances"]} instance(s)):')
            mem = ", ".join(f'{n} peak {m["peak_kib"] / 1024:.1f} MiB ({m["peak_sockets"]} sockets)' for n, m in r["memory"].items())
            md.append("")
            md.append(f"RSS while loaded: {mem}")
md.append("")
md.append(f'Start-up to ready (process start → /health/readiness 200): median {startup["median_ready_ms"]:.0f} ms of '
          f'{len(startup["ready_ms"])} starts ({", ".join(f"{x:.0f}" for x in startup["ready_ms"])} ms); '
          f'idle RSS after {startup["settle_s"]:.0f} s: median {startup["median_rss_kib"] / 1024:.1f} MiB.')
md.append("")
md.append(f'Sign-ins: one instance went from {signins["rss_before_kib"] / 1024:.1f} MiB to {signins["rss_after_kib"] / 1024:.1f} MiB RSS '
          f'creating and signing in {signins["accounts"]} accounts (two requests at a time; each hashes a password with Argon2id); '
          f'it was restarted before the runs above.')
with open(os.path.join(out, "summary.md"), "w") as f:
    f.write("\n".join(md) + "\n")
print("\n".join(md))
sys.exit(1 if big_errors else 0)
PY
report_status=$?
set -e

plot_results
if [ "$report_status" != 0 ]; then
  die "the $BIG_CONNECTIONS-connection scenario had errors (see above and $work/raw/big-*.json)"
fi
