#!/usr/bin/env bash
# Till: end-to-end tests of the web UI in headless Chromium against a real `till serve`.
#
#   scripts/test.d/50-e2e.sh [TEST_FILE…]     (files under e2e/tests/; default: all)
#
# Installs what is missing (Debian's chromium, node/npm, e2e/node_modules via `npm ci`), builds the
# debug `till` unless TILL_BIN points at one, creates and migrates a fresh database, runs
# `till seed --demo`, serves STATIC_DIR=web on a free port with real PostgreSQL and Redis (own
# namespace), runs `node --test` on e2e/tests/, then stops the server and drops the database.
# Screenshots of every screen land in e2e/screenshots/ (gitignored); the server log in
# e2e/.run/server.log.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/till-target}"
# shellcheck source=scripts/lib/services.sh
source scripts/lib/services.sh
till_ensure_services

if ! command -v chromium >/dev/null 2>&1; then
  till__apt_install chromium
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  till__apt_install nodejs npm
fi
# npm ci only when the lock file changed since the last install.
stamp=e2e/node_modules/.till-lock
if [ ! -f "$stamp" ] || ! cmp -s e2e/package-lock.json "$stamp"; then
  (cd e2e && npm ci --no-audit --no-fund --loglevel=error)
  cp e2e/package-lock.json "$stamp"
fi

till="${TILL_BIN:-$CARGO_TARGET_DIR/debug/till}"
if [ -z "${TILL_BIN:-}" ]; then
  cargo build --quiet --bin till
fi

mkdir -p e2e/.run e2e/screenshots
db="till_e2e_$(date +%s)_$$"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
  shuf -i 20000-60000 -n 1)
server_pid=''
worker_pid=''
cleanup() {
  for pid in $server_pid $worker_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  psql -w -X -d "$TILL_PG_URL/postgres" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

psql -w -X -d "$TILL_PG_URL/postgres" -qc "CREATE DATABASE \"$db\"" >/dev/null

export DATABASE_URL="$TILL_PG_URL/$db"
export REDIS_URL="$TILL_REDIS_URL"
export REDIS_NAMESPACE="e2e$$"
export ADMIN_EMAIL=admin@till.local
export ADMIN_PASSWORD=till-admin-pass
export JWT_SECRET=till-e2e-only-jwt-secret-not-for-production-use
export STATIC_DIR="$root/web"
# Product photos uploaded by the tests: a fresh directory each run.
export MEDIA_DIR="$root/e2e/.run/media"
rm -rf "$MEDIA_DIR"
export BIND_ADDR="127.0.0.1:$port"
export APP_ENV=development
export LOG_FORMAT=json
# Every test signs in several people from one IP within a minute.
export RATE_LIMIT_LOGIN_PER_MIN=1000 RATE_LIMIT_LOGIN_IP_PER_MIN=1000 RATE_LIMIT_REGISTER_PER_MIN=1000
export RATE_LIMIT_ANON_PER_MIN=100000
export RATE_LIMIT_USER_PER_MIN=100000

"$till" migrate >/dev/null
"$till" seed --demo >/dev/null

"$till" serve >e2e/.run/server.log 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/health/readiness" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "50-e2e: till serve exited; log:" >&2
    tail -50 e2e/.run/server.log >&2
    exit 1
  fi
  sleep 0.1
done

# The worker delivers webhooks (the back office's test ping reaches a receiver the test runs).
WORKER_HEALTH_ADDR=127.0.0.1:0 WEBHOOK_RETRY_BASE_MS=500 "$till" worker >e2e/.run/worker.log 2>&1 &
worker_pid=$!

export BASE_URL="http://127.0.0.1:$port"
cd e2e
if [ $# -gt 0 ]; then
  files=("$@")
else
  files=(tests/*.test.mjs)
fi
node --test --test-concurrency=1 --test-timeout=120000 "${files[@]}"
