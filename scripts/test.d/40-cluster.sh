#!/usr/bin/env bash
# Scale-out suite: `scripts/cluster.sh up 3` (3 instances behind a real nginx, shared PostgreSQL and Redis),
# then scripts/lib/cluster_check.py: sessions honoured everywhere, one shared rate limit, SIGKILL of an
# instance and a rolling restart under GET load with zero failed requests, nginx's own answers.
#
# Uses TILL_BIN (scripts/test.sh sets it) or builds the debug binary. Its own ports (TILL_CLUSTER_PORT,
# default 18180), state directory and database (till_cluster_test), so a dev cluster on 18080 is untouched.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# The checks' WebSocket client (python3-websockets, installed with apt when missing).
# shellcheck source=scripts/lib/services.sh
source scripts/lib/services.sh
till_ensure_python_websockets

if [ -z "${TILL_BIN:-}" ] || [ ! -x "$TILL_BIN" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/till-target}"
  cargo build -q --bin till
  export TILL_BIN="$CARGO_TARGET_DIR/debug/till"
fi

export TILL_CLUSTER_DIR="${TILL_CLUSTER_TEST_DIR:-$PWD/.tmp/cluster-test}"
export TILL_CLUSTER_PORT="${TILL_CLUSTER_PORT:-18180}"
export TILL_CLUSTER_DB=till_cluster_test TILL_CLUSTER_FRESH=1
# A low anonymous limit to see it shared; signed-in load must never be limited; short drains keep it quick.
export RATE_LIMIT_ANON_PER_MIN=40 RATE_LIMIT_USER_PER_MIN=1000000 RATE_LIMIT_LOGIN_PER_MIN=100
export SHUTDOWN_DRAIN_MS=1500
unset REDIS_NAMESPACE DATABASE_URL REDIS_URL

cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ -d "$TILL_CLUSTER_DIR" ]; then
    for f in "$TILL_CLUSTER_DIR"/web-*.log; do
      [ -f "$f" ] && { echo "--- tail $f"; tail -n 15 "$f"; }
    done
  fi
  scripts/cluster.sh down || true
  exit "$rc"
}
trap cleanup EXIT

scripts/cluster.sh up 3
eval "$(scripts/cluster.sh env)"
export TILL_CLUSTER_URL TILL_CLUSTER_INSTANCES TILL_CLUSTER_ADMIN_EMAIL TILL_CLUSTER_ADMIN_PASSWORD
export TILL_CLUSTER_SCRIPT="$PWD/scripts/cluster.sh"
"$TILL_PYTHON" scripts/lib/cluster_check.py "$@"
