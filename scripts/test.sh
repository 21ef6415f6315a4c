#!/usr/bin/env bash
# Till: the one test command — formatting, lints, build, every test, then the extra suites in scripts/test.d/.
#
#   scripts/test.sh [ARGS…]     ARGS go to `cargo test --workspace` (e.g. a test name filter)
#
# PostgreSQL, Redis and nginx are installed (apt) and started when missing; see scripts/lib/services.sh.
# Exported for the tests:
#   TILL_TEST_PG_URL            superuser URL without a database name (tests create their own databases)
#   TILL_TEST_REDIS_URL         a running Redis
#   TILL_TEST_REDIS_SERVER_BIN  redis-server, for tests that start private instances
#   TILL_BIN                    the debug `till` binary, for tests that spawn it
#   TILL_NGINX_BIN              nginx, for the load-balancer suites in scripts/test.d/
# Environment: CARGO_TARGET_DIR (default $HOME/.cache/till-target, outside the clone so rebuilds stay short),
# plus the TILL_SERVICES_* knobs of scripts/lib/services.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/till-target}"
# shellcheck source=scripts/lib/services.sh
source scripts/lib/services.sh

if [ -t 1 ]; then
  step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
  step() { printf '\n==> %s\n' "$*"; }
fi

step "services (PostgreSQL, Redis, nginx)"
till_ensure_services
till_ensure_nginx
export TILL_TEST_PG_URL="$TILL_PG_URL"
export TILL_TEST_REDIS_URL="$TILL_REDIS_URL"
export TILL_TEST_REDIS_SERVER_BIN="$TILL_REDIS_SERVER_BIN"
export TILL_BIN="$CARGO_TARGET_DIR/debug/till"
echo "PostgreSQL $TILL_TEST_PG_URL · Redis $TILL_TEST_REDIS_URL · nginx $TILL_NGINX_BIN"

# A bare toolchain may lack the components; rustup can add them.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  step "rustup component add rustfmt clippy"
  rustup component add rustfmt clippy
fi

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build --bin till"
cargo build --bin till

step "drop test databases older than an hour"
cutoff=$(( $(date +%s) - 3600 ))
psql "$TILL_TEST_PG_URL/postgres" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'till\_t\_%'" |
  while IFS= read -r db; do
    created=${db#till_t_}; created=${created%%_*}
    [[ "$created" =~ ^[0-9]+$ ]] && [ "$created" -lt "$cutoff" ] || continue
    psql "$TILL_TEST_PG_URL/postgres" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
  done

step "cargo test --workspace${*:+ $*}"
cargo test --workspace "$@"

if [ $# -eq 0 ]; then
  # The dependency fault tests passed above; run them once more to print their figures.
  step "fault figures: PostgreSQL cut and Redis stopped under checkout load"
  cargo test -q -p till-http --test faults_db --test redis_down -- --nocapture 2>&1 |
    grep -oE '(redis outage under load|outage): .*' || true
fi

if [ -d scripts/test.d ]; then
  while IFS= read -r suite; do
    [ -x "$suite" ] || continue
    step "$suite"
    "$suite"
  done < <(printf "%s\n" scripts/test.d/*.sh | LC_ALL=C sort)
fi

step "all tests passed"
