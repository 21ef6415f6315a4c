#!/usr/bin/env bash
# Till: a scale-out cluster on loopback — N `till serve` instances (and `till worker`, when the binary has
# it) behind a real nginx, whose config is the repository's one (`till lb-config nginx`, as nginx/nginx.conf)
# rendered for loopback; all share PostgreSQL (database till_cluster) and Redis (scripts/lib/services.sh).
#
#   scripts/cluster.sh up [N]     start N instances (default 3), the worker and nginx; wait until ready
#   scripts/cluster.sh down       stop exactly what `up` started (recorded pids), gracefully
#   scripts/cluster.sh status     each process, its pid and its readiness
#   scripts/cluster.sh restart I  rolling restart of instance I: SIGTERM (it drains: readiness 503 for
#                                 SHUTDOWN_DRAIN_MS, then it stops), wait until it exited, start it, wait
#                                 until it is ready and nginx sends to it again
#   scripts/cluster.sh stop I     SIGTERM instance I and wait until it exited
#   scripts/cluster.sh kill I     SIGKILL instance I (a crash)
#   scripts/cluster.sh start I    start instance I again; wait until it is ready and nginx sends to it
#   scripts/cluster.sh env        shell assignments for clients: TILL_CLUSTER_URL (nginx), TILL_CLUSTER_INSTANCES,
#                                 TILL_CLUSTER_ADMIN_EMAIL/PASSWORD, TILL_CLUSTER_DIR, …
#
# nginx listens on 127.0.0.1:TILL_CLUSTER_PORT (default 18080), instance I on TILL_CLUSTER_PORT+I.
# Environment (read by `up`; later commands use what `up` recorded):
#   TILL_CLUSTER_DIR      state: pids, logs, rendered nginx config (default .tmp/cluster in the repository)
#   TILL_CLUSTER_PORT     base port (default 18080)
#   TILL_CLUSTER_DB       database name (default till_cluster); created and migrated when missing
#   TILL_CLUSTER_FRESH=1  drop and recreate that database first
#   TILL_BIN              the `till` binary; otherwise `cargo build --release` (CARGO_TARGET_DIR, default
#                         $HOME/.cache/till-target)
#   Till settings         any of them set here (RATE_LIMIT_ANON_PER_MIN, SHUTDOWN_DRAIN_MS, JWT_SECRET, …) is
#                         given to every instance, including ones restarted later. Defaults here:
#                         TRUSTED_PROXIES=127.0.0.1 (so nginx's X-Forwarded-For counts), a fresh
#                         REDIS_NAMESPACE per `up` (fresh rate-limit buckets), ADMIN_EMAIL=admin@cluster.local,
#                         ADMIN_PASSWORD=cluster-admin-pass, DATABASE_MAX_CONNECTIONS=8, LOG_FORMAT=json.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"

DIR=${TILL_CLUSTER_DIR:-$ROOT/.tmp/cluster}

die() { printf 'cluster.sh: %s\n' "$*" >&2; exit 1; }
say() { printf 'cluster: %s\n' "$*" >&2; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

# Settings handed to every instance when present in the environment at `up`.
TILL_KEYS="DATABASE_URL DATABASE_READ_URL DATABASE_MAX_CONNECTIONS REDIS_URL REDIS_NAMESPACE APP_ENV JWT_SECRET
JWT_TTL_SECONDS SESSION_TTL_SECONDS COOKIE_SECURE RATE_LIMIT_ANON_PER_MIN RATE_LIMIT_USER_PER_MIN
RATE_LIMIT_LOGIN_PER_MIN RATE_LIMIT_LOGIN_IP_PER_MIN RATE_LIMIT_REGISTER_PER_MIN TRUSTED_PROXIES MAX_BODY_BYTES REQUEST_TIMEOUT_SECONDS WS_MAX_CONNECTIONS WS_MAX_PER_USER
ORDER_UNPAID_TTL_MINUTES ONLINE_OPEN_ORDERS_PER_CUSTOMER PAYMENT_WEBHOOK_SECRET CURRENCY DEFAULT_CALLING_CODE STORE_TIMEZONE ADMIN_EMAIL ADMIN_PASSWORD HEALTH_TOKEN
LOG_FORMAT STATIC_DIR SHUTDOWN_DRAIN_MS HTTP_HEADER_READ_TIMEOUT_MS MAX_CONNECTIONS ALLOWED_ORIGINS DATABASE_ACQUIRE_TIMEOUT_MS
DATABASE_STATEMENT_TIMEOUT_MS DATABASE_IDLE_TIMEOUT_SECONDS DATABASE_MAX_LIFETIME_SECONDS RUST_LOG"

# ----------------------------------------------------------------------------------------- processes

# True while PID runs (a zombie counts as gone) and its command line contains PATTERN: a recycled pid
# that now belongs to something else is never signalled.
ours() { # PID PATTERN
  local pid=$1 state
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ "$state" != Z ] || return 1
  tr "\0" " " <"/proc/$pid/cmdline" | grep -qF -- "$2"
}

pid_of() { cat "$DIR/$1.pid" 2>/dev/null || true; }

# Sends SIG to the process recorded as NAME, waits up to SECS for it to end, then SIGKILLs it.
stop_proc() { # NAME PATTERN SIG SECS
  local pid
  pid=$(pid_of "$1")
  if ours "$pid" "$2"; then
    kill "-$3" "$pid" 2>/dev/null || true
    local deadline=$(($(date +%s) + $4))
    while ours "$pid" "$2"; do
      if [ "$(date +%s)" -ge "$deadline" ]; then
        say "$1 (pid $pid) still running after $4 s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
        break
      fi
      sleep 0.1
    done
  fi
  rm -f "$DIR/$1.pid"
}

http_code() { curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true; }

# Waits until GET URL answers 200, while PID (if given) is alive.
wait_200() { # URL SECS NAME [PID PATTERN]
  local deadline=$(($(date +%s) + $2))
  until [ "$(http_code "$1")" = 200 ]; do
    if [ -n "${4:-}" ] && ! ours "$4" "$5"; then
      tail -n 30 "$DIR/$3.log" >&2 2>/dev/null || true
      die "$3 exited before it was ready (log: $DIR/$3.log)"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || die "$3 not ready after $2 s at $1 (log: $DIR/$3.log)"
    sleep 0.2
  done
}

# -------------------------------------------------------------------------------------------- state

load_state() {
  [ -f "$DIR/state" ] || die "no cluster in $DIR (run: scripts/cluster.sh up N)"
  # shellcheck disable=SC1091
  source "$DIR/state"
}

instance_port() { echo $((BASE + $1)); }

check_index() {
  [[ "${1:-}" =~ ^[1-9][0-9]*$ ]] && [ "$1" -le "$N" ] || die "instance must be 1..$N, not ${1:-nothing}"
}

# --------------------------------------------------------------------------------------------- start

start_instance() { # I
  local i=$1 port name pid
  port=$(instance_port "$i")
  name=web-$i
  if ours "$(pid_of "$name")" "$BIN"; then
    die "$name is already running (pid $(pid_of "$name"))"
  fi
  till__port_in_use "$port" && die "port $port is taken by something else"
  (
    set -a
    # shellcheck disable=SC1091
    source "$DIR/till.env"
    set +a
    export BIND_ADDR=127.0.0.1:$port INSTANCE_ID=$name
    exec "$BIN" serve
  ) </dev/null >>"$DIR/$name.log" 2>&1 &
  pid=$!
  echo "$pid" >"$DIR/$name.pid"
  wait_200 "http://127.0.0.1:$port/health/readiness" 60 "$name" "$pid" "$BIN"
  say "$name ready on 127.0.0.1:$port (pid $pid)"
}

# Waits until nginx sends requests to instance I again: after failures it skips a server for its
# fail_timeout, so a rolling restart must not stop the next instance before this (or all could be out).
wait_in_rotation() { # I
  local deadline=$(($(date +%s) + 20)) want="\"instance\":\"web-$1\""
  until curl -s -m 2 "http://127.0.0.1:$BASE/health" 2>/dev/null | grep -qF "$want"; do
    [ "$(date +%s)" -lt "$deadline" ] || die "nginx did not send to web-$1 within 20 s"
    sleep 0.1
  done
  say "nginx sends to web-$1 again"
}

start_worker() {
  (
    set -a
    # shellcheck disable=SC1091
    source "$DIR/till.env"
    set +a
    export INSTANCE_ID=worker
    # Its health and metrics listener, clear of the web instances' ports.
    export WORKER_HEALTH_ADDR="127.0.0.1:$((BASE + 900))"
    exec "$BIN" worker
  ) </dev/null >>"$DIR/worker.log" 2>&1 &
  echo $! >"$DIR/worker.pid"
  sleep 0.5
  ours "$(pid_of worker)" "$BIN" || { tail -n 20 "$DIR/worker.log" >&2; die "the worker exited at once"; }
  say "worker running (pid $(pid_of worker))"
}

nginx_cmd() { # extra args…
  local e=()
  # -e (1.19.5+) keeps nginx from touching the system error log before it reads our config.
  "$NGINX" -h 2>&1 | grep -q -- '-e filename' && e=(-e "$NGINX_DIR/error.log")
  "$NGINX" -p "$NGINX_DIR/" -c "$NGINX_DIR/nginx.conf" "${e[@]}" "$@"
}

cmd_up() {
  local n=${1:-3}
  [[ "$n" =~ ^[1-9][0-9]?$ ]] || die "up: N must be 1..99, not $n"
  if [ -f "$DIR/state" ]; then
    (
      load_state
      for f in "$DIR"/web-*.pid "$DIR"/worker.pid; do
        [ -f "$f" ] && ours "$(cat "$f")" "$BIN" && exit 1
      done
      ours "$(cat "$NGINX_DIR/nginx.pid" 2>/dev/null)" nginx && exit 1
      exit 0
    ) || die "a cluster is already running from $DIR: scripts/cluster.sh down first"
  fi
  command -v curl >/dev/null 2>&1 || till__apt_install curl || die "curl is needed"
  till_ensure_services
  till_ensure_nginx

  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  rm -f "$DIR"/*.pid "$DIR"/*.log

  local bin=${TILL_BIN:-}
  if [ -z "$bin" ]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/till-target}"
    say "building the release binary (set TILL_BIN to skip)"
    (cd "$ROOT" && cargo build --release --bin till >&2)
    bin=$CARGO_TARGET_DIR/release/till
  fi
  [ -x "$bin" ] || die "no till binary at $bin"
  bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

  local base=${TILL_CLUSTER_PORT:-18080} db=${TILL_CLUSTER_DB:-till_cluster}
  [[ "$db" =~ ^[a-z_][a-z0-9_]*$ ]] || die "TILL_CLUSTER_DB must be a plain lower-case name"
  local port
  for port in $(seq "$base" $((base + n))); do
    till__port_in_use "$port" && die "port $port is in use (set TILL_CLUSTER_PORT to another base)"
  done

  # The database: fresh on request, created when missing, migrated.
  local admin="$TILL_PG_URL/postgres"
  if [ "${TILL_CLUSTER_FRESH:-}" = 1 ]; then
    PGOPTIONS="-c client_min_messages=warning" psql -w -X -q -d "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  fi
  if [ "$(psql -w -X -d "$admin" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
    psql -w -X -q -d "$admin" -c "CREATE DATABASE $db" >/dev/null
    say "created database $db"
  fi

  # Settings for every instance, frozen now so that restarts get the same ones.
  export DATABASE_URL="${DATABASE_URL:-$TILL_PG_URL/$db}"
  export REDIS_URL="${REDIS_URL:-$TILL_REDIS_URL}"
  export REDIS_NAMESPACE="${REDIS_NAMESPACE:-till-cluster-$(date +%s)-$$}"
  export TRUSTED_PROXIES="${TRUSTED_PROXIES:-127.0.0.1}"
  export JWT_SECRET="${JWT_SECRET:-till-cluster-local-secret-0123456789abcdef}"
  export ADMIN_EMAIL="${ADMIN_EMAIL:-admin@cluster.local}"
  export ADMIN_PASSWORD="${ADMIN_PASSWORD:-cluster-admin-pass}"
  export DATABASE_MAX_CONNECTIONS="${DATABASE_MAX_CONNECTIONS:-8}"
  export LOG_FORMAT="${LOG_FORMAT:-json}"
  [ -d "$ROOT/web" ] && export STATIC_DIR="${STATIC_DIR:-$ROOT/web}"
  local key
  : >"$DIR/till.env"
  for key in $TILL_KEYS; do
    [ -n "${!key:-}" ] && printf '%s=%q\n' "$key" "${!key}" >>"$DIR/till.env"
  done

  say "migrating $db"
  (
    set -a
    # shellcheck disable=SC1091
    source "$DIR/till.env"
    "$bin" migrate
  ) >>"$DIR/migrate.log" 2>&1 || { tail -n 20 "$DIR/migrate.log" >&2; die "till migrate failed"; }

  # nginx's own files. As root, nginx's workers run as nobody and must reach their temp directories:
  # when the state directory is private (e.g. under /root), they go under /tmp.
  local ndir="$DIR/nginx"
  mkdir -p "$ndir"
  chmod 755 "$ndir"
  if [ "$(id -u)" = 0 ] && ! runuser -u nobody -- test -x "$ndir" 2>/dev/null; then
    ndir=$(mktemp -d /tmp/till-cluster-nginx.XXXXXX)
    chmod 755 "$ndir"
  fi
  local static=()
  if [ -d "$ROOT/web" ]; then
    if [ "$(id -u)" != 0 ] || runuser -u nobody -- test -r "$ROOT/web" -a -x "$ROOT/web" 2>/dev/null; then
      static=(--static-dir "$ROOT/web")
    else
      say "note: nginx's workers cannot read $ROOT/web; the instances serve the UI instead"
    fi
  fi
  local ups=()
  for i in $(seq 1 "$n"); do ups+=("127.0.0.1:$((base + i))"); done

  cat >"$DIR/state" <<STATE
N=$n
BASE=$base
BIN=$(printf '%q' "$bin")
NGINX=$(printf '%q' "$TILL_NGINX_BIN")
NGINX_DIR=$(printf '%q' "$ndir")
DB=$db
STATE
  load_state

  "$BIN" lb-config nginx --upstream "${ups[@]}" --listen "127.0.0.1:$base" --runtime-dir "$ndir" \
    "${static[@]}" -o "$ndir/nginx.conf" 2>/dev/null

  for i in $(seq 1 "$n"); do start_instance "$i"; done
  if "$BIN" --help 2>/dev/null | grep -qE '^[[:space:]]+worker([[:space:]]|$)'; then
    start_worker
  else
    say "note: this till has no \`worker\` subcommand yet; no worker started"
  fi

  nginx_cmd -t -q || die "nginx rejected $ndir/nginx.conf"
  nginx_cmd
  local npid=''
  for _ in $(seq 1 50); do
    npid=$(cat "$ndir/nginx.pid" 2>/dev/null || true)
    [ -n "$npid" ] && break
    sleep 0.1
  done
  wait_200 "http://127.0.0.1:$base/health/readiness" 30 nginx "$npid" nginx
  say "nginx on http://127.0.0.1:$base/ (pid $npid) → $n instance(s); state in $DIR"
}

cmd_down() {
  [ -f "$DIR/state" ] || { say "nothing to stop in $DIR"; return 0; }
  load_state
  local drain=5000 f name pids=()
  drain=$(sed -n 's/^SHUTDOWN_DRAIN_MS=//p' "$DIR/till.env" 2>/dev/null)
  drain=${drain:-5000}
  # nginx first, so nothing new arrives; then every instance at once (they drain in parallel).
  local npid
  npid=$(cat "$NGINX_DIR/nginx.pid" 2>/dev/null || true)
  if ours "$npid" nginx; then
    kill -QUIT "$npid" 2>/dev/null || true
    for _ in $(seq 1 50); do ours "$npid" nginx || break; sleep 0.1; done
    ours "$npid" nginx && kill -TERM "$npid" 2>/dev/null
  fi
  for f in "$DIR"/web-*.pid "$DIR"/worker.pid; do
    [ -f "$f" ] || continue
    name=$(basename "$f" .pid)
    if ours "$(cat "$f")" "$BIN"; then
      kill -TERM "$(cat "$f")" 2>/dev/null || true
      pids+=("$name")
    else
      rm -f "$f"
    fi
  done
  for name in "${pids[@]}"; do
    stop_proc "$name" "$BIN" TERM $((drain / 1000 + 15))
  done
  case "$NGINX_DIR" in
    /tmp/till-cluster-nginx.*) # made by `up` for a private state directory: keep its logs, drop the rest
      cp "$NGINX_DIR"/*.log "$DIR/" 2>/dev/null || true
      rm -rf "$NGINX_DIR" ;;
  esac
  rm -f "$DIR/state"
  say "stopped (logs kept in $DIR)"
}

cmd_status() {
  load_state
  local i pid code
  printf '%-8s %-8s %-7s %-22s %s\n' NAME PID STATE ADDRESS READINESS
  npid=$(cat "$NGINX_DIR/nginx.pid" 2>/dev/null || true)
  if ours "$npid" nginx; then
    printf '%-8s %-8s %-7s %-22s %s\n' nginx "$npid" up "127.0.0.1:$BASE" "$(http_code "http://127.0.0.1:$BASE/health/readiness")"
  else
    printf '%-8s %-8s %-7s %-22s %s\n' nginx - down "127.0.0.1:$BASE" -
  fi
  for i in $(seq 1 "$N"); do
    pid=$(pid_of "web-$i")
    if ours "$pid" "$BIN"; then
      code=$(http_code "http://127.0.0.1:$(instance_port "$i")/health/readiness")
      printf '%-8s %-8s %-7s %-22s %s\n' "web-$i" "$pid" up "127.0.0.1:$(instance_port "$i")" "$code"
    else
      printf '%-8s %-8s %-7s %-22s %s\n' "web-$i" - down "127.0.0.1:$(instance_port "$i")" -
    fi
  done
  pid=$(pid_of worker)
  if ours "$pid" "$BIN"; then
    printf '%-8s %-8s %-7s\n' worker "$pid" up
  fi
}

cmd_env() {
  load_state
  local i urls=''
  for i in $(seq 1 "$N"); do urls="$urls http://127.0.0.1:$(instance_port "$i")"; done
  printf 'TILL_CLUSTER_DIR=%q\n' "$DIR"
  printf 'TILL_CLUSTER_N=%s\n' "$N"
  printf 'TILL_CLUSTER_URL=http://127.0.0.1:%s\n' "$BASE"
  printf 'TILL_CLUSTER_INSTANCES=%q\n' "${urls# }"
  printf 'TILL_CLUSTER_ADMIN_EMAIL=%q\n' "$(sed -n 's/^ADMIN_EMAIL=//p' "$DIR/till.env")"
  printf 'TILL_CLUSTER_ADMIN_PASSWORD=%s\n' "$(sed -n 's/^ADMIN_PASSWORD=//p' "$DIR/till.env")"
  printf 'TILL_CLUSTER_NGINX_CONF=%q\n' "$NGINX_DIR/nginx.conf"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  restart | stop | kill | start)
    load_state
    check_index "${2:-}"
    case "$1" in
      restart)
        drain=$(sed -n 's/^SHUTDOWN_DRAIN_MS=//p' "$DIR/till.env")
        stop_proc "web-$2" "$BIN" TERM $((${drain:-5000} / 1000 + 15))
        start_instance "$2"
        wait_in_rotation "$2"
        ;;
      stop)
        drain=$(sed -n 's/^SHUTDOWN_DRAIN_MS=//p' "$DIR/till.env")
        stop_proc "web-$2" "$BIN" TERM $((${drain:-5000} / 1000 + 15))
        say "web-$2 stopped"
        ;;
      kill) stop_proc "web-$2" "$BIN" KILL 5; say "web-$2 killed" ;;
      start) start_instance "$2"; wait_in_rotation "$2" ;;
    esac
    ;;
  -h | --help | help | "") usage ;;
  *) die "unknown command: $1 (try --help)" ;;
esac
