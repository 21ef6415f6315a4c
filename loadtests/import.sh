#!/usr/bin/env bash
# Catalog CSV benchmark: imports ROWS products (default 100,000) into a fresh database through
# `POST /api/v1/products/import`, then exports them with `GET /api/v1/products/export.csv`.
# Reports the wall time of each and the server's peak RSS during each (VmHWM, reset before each
# phase through /proc/PID/clear_refs), next to its RSS before: the import holds the checked rows
# (it writes all or nothing), the export streams, so its peak must stay flat.
#
# Usage: loadtests/import.sh       (env: ROWS PORT PG_URL BENCH_DB TILL_BIN SKIP_BUILD KEEP_DB)
#   TILL_BIN=target/debug/till SKIP_BUILD=1 loadtests/import.sh   uses a debug build (slower)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
TILL="${TILL_BIN:-$TARGET_DIR/release/till}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
BENCH_DB="${BENCH_DB:-till_bench_import}"
PORT="${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
ROWS="${ROWS:-100000}"
BASE="http://127.0.0.1:$PORT"
WORK="$(mktemp -d)"

if [ -z "${SKIP_BUILD:-}" ]; then
  (cd "$ROOT" && cargo build --release --bin till)
fi

export DATABASE_URL="$PG_URL/$BENCH_DB"
unset REDIS_URL # single instance: the benchmark measures the import, not Redis
export BIND_ADDR="127.0.0.1:$PORT"
export ADMIN_EMAIL=bench@till.local ADMIN_PASSWORD=bench-password-1
export JWT_SECRET=till-bench-only-jwt-secret-not-for-production
export MEDIA_DIR="$WORK/media"
export RATE_LIMIT_USER_PER_MIN=1000000 RATE_LIMIT_ANON_PER_MIN=1000000
export RUST_LOG="${BENCH_RUST_LOG:-warn,sqlx=error}"
export LOG_FORMAT=json

SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ -z "${KEEP_DB:-}" ]; then psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $BENCH_DB" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== $ROWS rows of CSV"
python3 - "$ROWS" >"$WORK/catalog.csv" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout
out.write("sku,barcode,name,description,category,price_cents,tax_rate_bp,active,track_stock,low_stock_threshold,stock_on_hand\n")
cats = ["Coffee", "Tea", "Bakery", "Dairy", "Pantry", "Snacks", "Frozen", "Household"]
for i in range(n):
    desc = f'"Item {i}, with a comma and a ""quote"""' if i % 10 == 0 else ""
    out.write(f"BENCH-{i:07d},20{i:011d},Product {i:07d},{desc},{cats[i % len(cats)]},{100 + i % 9900},{[0, 825, 1000][i % 3]},true,{'true' if i % 5 else 'false'},{i % 10},{i % 100 if i % 5 else ''}\n")
PY
ls -l "$WORK/catalog.csv" | awk '{ printf "   %.1f MB\n", $5 / 1048576 }'

echo "== fresh database $BENCH_DB"
psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $BENCH_DB" -c "CREATE DATABASE $BENCH_DB" 2>&1 | grep -v NOTICE || true
"$TILL" migrate >/dev/null

"$TILL" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -fs "$BASE/health/readiness" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "$BASE/health/readiness" >/dev/null || { echo "till serve did not come up:" >&2; cat "$WORK/server.log" >&2; exit 1; }
# The first admin is created just after start-up (a password hash): retry the sign-in briefly.
TOKEN=""
for _ in $(seq 1 60); do
  TOKEN="$(curl -fs "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$ADMIN_EMAIL\",\"password\":\"$ADMIN_PASSWORD\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' 2>/dev/null)" && break
  sleep 0.5
done
[ -n "$TOKEN" ] || { echo "could not sign in as $ADMIN_EMAIL" >&2; exit 1; }

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status"; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status"; }
reset_hwm() { echo 5 >"/proc/$SERVER_PID/clear_refs"; }
mb() { awk -v k="$1" 'BEGIN { printf "%.0f MB", k / 1024 }'; }

phase() { # name, then the curl arguments; prints seconds
  local name=$1; shift
  local before; before=$(rss_kb); reset_hwm
  local t; t=$(curl -fsS -o "$WORK/out" -w '%{time_total}' -H "Authorization: Bearer $TOKEN" "$@")
  printf '%-22s %8.1f s   RSS before %7s   peak %7s\n' "$name" "$t" "$(mb "$before")" "$(mb "$(hwm_kb)")"
}

echo "== import and export ($ROWS rows)"
phase "import (dry run)" -X POST "$BASE/api/v1/products/import?dry_run=true" -H 'content-type: text/csv' --data-binary "@$WORK/catalog.csv"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("   ", {k: r[k] for k in ("created","updated","unchanged","error_count")})' "$WORK/out"
phase "import" -X POST "$BASE/api/v1/products/import" -H 'content-type: text/csv' --data-binary "@$WORK/catalog.csv"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("   ", {k: r[k] for k in ("applied","created","updated","unchanged","error_count")})' "$WORK/out"
phase "export" "$BASE/api/v1/products/export.csv"
echo "    $(($(wc -l <"$WORK/out") - 1)) lines after the header (descriptions hold no line breaks)"
phase "export (again)" "$BASE/api/v1/products/export.csv"
phase "re-import (unchanged)" -X POST "$BASE/api/v1/products/import" -H 'content-type: text/csv' --data-binary "@$WORK/catalog.csv"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("   ", {k: r[k] for k in ("created","updated","unchanged")})' "$WORK/out"
