#!/usr/bin/env bash
# Till: bring Till up locally with demo data, on http://127.0.0.1:8080 by default.
#
#   scripts/dev.sh [--no-build]
#
# Ensures PostgreSQL and Redis (installing/starting them when missing, see scripts/lib/services.sh),
# creates the database `till` if needed, builds the release binary, runs `till migrate` and
# `till seed --demo` (safe to re-run), then execs `till serve` in the foreground (Ctrl-C stops it).
#
#   --no-build        skip `cargo build --release` and use the binary already built
#
# Environment (all optional):
#   ADMIN_EMAIL       first admin's email             (default admin@till.local)
#   ADMIN_PASSWORD    first admin's password          (default till-admin-pass)
#   JWT_SECRET        token signing secret            (default: a fixed development value)
#   BIND_ADDR         listen address                  (default 127.0.0.1:8080)
#   APP_ENV           development|production          (default development)
#   LOG_FORMAT        json|pretty                     (default pretty)
#   CARGO_TARGET_DIR  build directory                 (default $HOME/.cache/till-target)
#   TILL_PG_URL, TILL_REDIS_URL, TILL_SERVICES_DIR, …  where PostgreSQL/Redis are (see scripts/lib/services.sh)
# Any other setting from the configuration list in README.md is passed through to `till serve` as is.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "dev.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/till-target}"
# shellcheck source=scripts/lib/services.sh
source scripts/lib/services.sh
till_ensure_services

if [ "$(psql -w -X -d "$TILL_PG_URL" -Atqc "select 1 from pg_database where datname = 'till'")" != 1 ]; then
  psql -w -X -d "$TILL_PG_URL" -qc 'create database till'
fi

export DATABASE_URL="$TILL_PG_URL/till"
export REDIS_URL="$TILL_REDIS_URL"
export ADMIN_EMAIL="${ADMIN_EMAIL:-admin@till.local}"
export ADMIN_PASSWORD="${ADMIN_PASSWORD:-till-admin-pass}"
export JWT_SECRET="${JWT_SECRET:-till-dev-only-jwt-secret-do-not-use-in-production}"
export STATIC_DIR="${STATIC_DIR:-$PWD/web}"
export MEDIA_DIR="${MEDIA_DIR:-$PWD/.run/media}"
export BIND_ADDR="${BIND_ADDR:-127.0.0.1:8080}"
export APP_ENV="${APP_ENV:-development}"
export LOG_FORMAT="${LOG_FORMAT:-pretty}"

till="$CARGO_TARGET_DIR/release/till"
if [ "$build" = 1 ]; then
  echo "==> cargo build --release --bin till"
  cargo build --release --bin till
elif [ ! -x "$till" ]; then
  echo "dev.sh: $till is not built yet; run without --no-build" >&2
  exit 1
fi

echo "==> till migrate"
"$till" migrate
echo "==> till seed --demo"
"$till" seed --demo

host=${BIND_ADDR%:*}
port=${BIND_ADDR##*:}
case "$host" in 0.0.0.0 | "" | "[::]") host=127.0.0.1 ;; esac
cat <<MSG

Till is starting on http://$host:$port/
  PostgreSQL  $DATABASE_URL
  Redis       $REDIS_URL
  Admin login $ADMIN_EMAIL / $ADMIN_PASSWORD   (demo staff accounts: printed by the seed above)

MSG
exec "$till" serve
