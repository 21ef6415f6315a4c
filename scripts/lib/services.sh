# shellcheck shell=bash
# Till: make PostgreSQL, Redis (and nginx, Apache) available for tests and local runs.
#
# Source this file, then call:
#   till_ensure_services   PostgreSQL + Redis reachable; exports
#                            TILL_PG_URL            superuser URL without a database name,
#                                                   e.g. postgres://postgres@127.0.0.1:5432
#                            TILL_REDIS_URL         e.g. redis://127.0.0.1:6379
#                            TILL_REDIS_SERVER_BIN  redis-server binary (tests start private instances)
#   till_ensure_nginx      nginx installed (not started); exports TILL_NGINX_BIN
#   till_ensure_python_websockets  a python3 that imports `websockets` (apt: python3-websockets);
#                            exports TILL_PYTHON
#   till_ensure_apache     Apache httpd installed (not started); exports TILL_APACHE_BIN, TILL_APACHE_MODULES
#   till_stop_services     stop the private instances started from TILL_SERVICES_DIR (never system ones)
#
# Order of preference, for each service:
#   1. TILL_PG_URL / TILL_REDIS_URL from the environment, if they answer;
#   2. a server on the standard port (127.0.0.1:5432 with trust for user postgres, 127.0.0.1:6379);
#   3. a private instance under TILL_SERVICES_DIR, started on the first free candidate port
#      (installed with apt first if the binaries are missing).
#
# Knobs (environment):
#   TILL_SERVICES_DIR            private instances live here (default $HOME/.cache/till-services)
#   TILL_SERVICES_PRIVATE=1      skip steps 1–2 and always use private instances
#   TILL_PG_PORT_CANDIDATES      ports tried for a private PostgreSQL (default "5432 55432 … 55441")
#   TILL_REDIS_PORT_CANDIDATES   ports tried for a private Redis      (default "6379 56379 … 56388")
#
# As root, PostgreSQL runs as the `postgres` OS user (initdb refuses root). If that user cannot reach
# TILL_SERVICES_DIR (e.g. it is under /root, mode 700), the cluster goes to /var/lib/till-services/pg.
# Quiet when everything is already up; one line on stderr per thing installed or started; errors say why.

_TILL_APT_UPDATED=${_TILL_APT_UPDATED:-}

till__say() { printf 'till-services: %s\n' "$*" >&2; }
till__err() { printf 'till-services: error: %s\n' "$*" >&2; return 1; }

till__services_dir() {
  local d=${TILL_SERVICES_DIR:-${HOME:?HOME is not set}/.cache/till-services}
  mkdir -p "$d" || return 1
  (cd "$d" && pwd -P)
}

# True when something accepts TCP connections on 127.0.0.1:$1.
till__port_in_use() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# apt-get install, with one `apt-get update` per shell. Services are kept from auto-starting during the
# install (policy-rc.d): we start our own instances, and nginx must not grab port 80.
till__apt_install() {
  local sudo=() policy=/usr/sbin/policy-rc.d added_policy='' log rc=0
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || till__err "need to install $* but not root and no sudo" || return 1
    sudo=(sudo -n)
  fi
  command -v apt-get >/dev/null 2>&1 || till__err "need to install $* but apt-get is missing (Debian/Ubuntu only)" || return 1
  log=$(mktemp "${TMPDIR:-/tmp}/till-apt.XXXXXX")
  till__say "installing $* (apt)…"
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null && "${sudo[@]}" chmod 755 "$policy" && added_policy=1
  fi
  if [ -z "$_TILL_APT_UPDATED" ]; then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update >>"$log" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] && _TILL_APT_UPDATED=1
  fi
  if [ "$rc" -eq 0 ]; then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$log" 2>&1 || rc=$?
  fi
  [ -n "$added_policy" ] && "${sudo[@]}" rm -f "$policy"
  if [ "$rc" -ne 0 ]; then
    tail -n 30 "$log" >&2
    till__err "apt-get install $* failed (full log: $log)"
    return 1
  fi
  rm -f "$log"
}

# ---------------------------------------------------------------------------------------------- PostgreSQL

till__pg_answers() { # URL
  PGCONNECT_TIMEOUT=3 psql -w -X -d "$1" -Atqc 'select 1' >/dev/null 2>&1
}

# Directory holding initdb/pg_ctl/postgres: matching version $1 if given, else the newest installed.
till__pg_bindir() {
  local want=${1:-} d
  if [ -n "$want" ] && [ -x "/usr/lib/postgresql/$want/bin/initdb" ]; then
    echo "/usr/lib/postgresql/$want/bin"
    return 0
  fi
  d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
  d=$(command -v initdb 2>/dev/null) && [ -x "$(dirname "$d")/pg_ctl" ] && { dirname "$d"; return 0; }
  return 1
}

# Run a PostgreSQL server command as a non-root user (postgres when we are root), from / so that an
# unreadable working directory does not trip it.
till__pg_run() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

# The private cluster's data directory: $1/pg, unless we are root and the postgres user cannot reach $1.
till__pg_datadir() {
  if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$1" 2>/dev/null; then
    echo /var/lib/till-services/pg
  else
    echo "$1/pg"
  fi
}

till__pg_private() {
  local base pgdata bindir port ver log tried=
  base=$(till__services_dir) || till__err "cannot create TILL_SERVICES_DIR" || return 1
  pgdata=$base/pg

  if ! till__pg_bindir >/dev/null; then
    till__apt_install postgresql || return 1
  fi

  if [ "$(id -u)" -eq 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
      useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres ||
        till__err "cannot create the postgres OS user" || return 1
    fi
    pgdata=$(till__pg_datadir "$base")
    mkdir -p "$pgdata" && chown postgres: "$pgdata" && chmod 700 "$pgdata" || till__err "cannot prepare $pgdata" || return 1
  else
    mkdir -p "$pgdata" && chmod 700 "$pgdata" || till__err "cannot prepare $pgdata" || return 1
  fi
  log=$pgdata/server.log

  ver=
  [ -f "$pgdata/PG_VERSION" ] && ver=$(cat "$pgdata/PG_VERSION")
  bindir=$(till__pg_bindir "$ver") || till__err "PostgreSQL server binaries not found after install" || return 1

  if [ -z "$ver" ]; then
    till__say "initdb private PostgreSQL cluster in $pgdata"
    local out
    if ! out=$(till__pg_run "$bindir/initdb" -D "$pgdata" -U postgres -A trust -E UTF8 --no-locale --no-sync 2>&1); then
      printf '%s\n' "$out" >&2
      till__err "initdb failed for $pgdata"
      return 1
    fi
    # A throwaway cluster for tests and demos: TCP on loopback only, no unix socket (paths can be too
    # long), durability traded for speed, room for many per-test pools.
    till__pg_run tee -a "$pgdata/postgresql.conf" >/dev/null <<'EOF'

# --- till private cluster ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  elif till__pg_run "$bindir/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
    port=$(sed -n 4p "$pgdata/postmaster.pid" 2>/dev/null)
    if [ -n "$port" ] && till__pg_answers "postgres://postgres@127.0.0.1:$port"; then
      TILL_PG_URL="postgres://postgres@127.0.0.1:$port"
      return 0
    fi
    till__err "private PostgreSQL in $pgdata is running but does not answer on port ${port:-?} (log: $log)"
    return 1
  fi

  for port in ${TILL_PG_PORT_CANDIDATES:-5432 55432 55433 55434 55435 55436 55437 55438 55439 55440 55441}; do
    till__port_in_use "$port" && continue
    tried="$tried $port"
    till__say "starting private PostgreSQL on 127.0.0.1:$port"
    if till__pg_run "$bindir/pg_ctl" -D "$pgdata" -l "$log" -o "-p $port" -w -t 60 start >/dev/null 2>&1; then
      for _ in $(seq 1 60); do
        if till__pg_answers "postgres://postgres@127.0.0.1:$port"; then
          TILL_PG_URL="postgres://postgres@127.0.0.1:$port"
          return 0
        fi
        sleep 0.5
      done
      till__pg_run "$bindir/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1
    fi
  done
  [ -f "$log" ] && tail -n 20 "$log" >&2
  till__err "could not start a private PostgreSQL (ports tried:${tried:- none free}; log: $log)"
}

till__ensure_pg() {
  if ! command -v psql >/dev/null 2>&1 || ! command -v pg_isready >/dev/null 2>&1; then
    till__apt_install postgresql-client || return 1
  fi
  if [ -z "${TILL_SERVICES_PRIVATE:-}" ]; then
    if [ -n "${TILL_PG_URL:-}" ]; then
      TILL_PG_URL=${TILL_PG_URL%/}
      till__pg_answers "$TILL_PG_URL" && return 0
      till__say "TILL_PG_URL=$TILL_PG_URL does not answer; looking elsewhere"
    fi
    if pg_isready -q -h 127.0.0.1 -p 5432 -t 3 >/dev/null 2>&1 &&
      PGCONNECT_TIMEOUT=3 psql -w -X -h 127.0.0.1 -p 5432 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
      TILL_PG_URL=postgres://postgres@127.0.0.1:5432
      return 0
    fi
  fi
  till__pg_private
}

# ------------------------------------------------------------------------------------------------- Redis

till__redis_answers() { # URL
  [ "$(timeout 5 redis-cli -u "$1" ping 2>/dev/null)" = PONG ]
}

till__redis_private() {
  local base dir port pid tried=
  base=$(till__services_dir) || till__err "cannot create TILL_SERVICES_DIR" || return 1
  dir=$base/redis
  mkdir -p "$dir" || till__err "cannot create $dir" || return 1

  if [ -f "$dir/redis.pid" ] && [ -f "$dir/port" ]; then
    pid=$(cat "$dir/redis.pid")
    port=$(cat "$dir/port")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && till__redis_answers "redis://127.0.0.1:$port"; then
      TILL_REDIS_URL="redis://127.0.0.1:$port"
      return 0
    fi
  fi

  for port in ${TILL_REDIS_PORT_CANDIDATES:-6379 56379 56380 56381 56382 56383 56384 56385 56386 56387 56388}; do
    till__port_in_use "$port" && continue
    tried="$tried $port"
    till__say "starting private Redis on 127.0.0.1:$port"
    rm -f "$dir/redis.pid"
    if "$TILL_REDIS_SERVER_BIN" --daemonize yes --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
      --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null 2>&1; then
      for _ in $(seq 1 40); do
        if till__redis_answers "redis://127.0.0.1:$port"; then
          echo "$port" >"$dir/port"
          TILL_REDIS_URL="redis://127.0.0.1:$port"
          return 0
        fi
        sleep 0.25
      done
    fi
  done
  [ -f "$dir/redis.log" ] && tail -n 20 "$dir/redis.log" >&2
  till__err "could not start a private Redis (ports tried:${tried:- none free}; log: $dir/redis.log)"
}

till__ensure_redis() {
  # The binary is needed even when a Redis is reachable: tests start private instances from it.
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    till__apt_install redis-server || return 1
  fi
  TILL_REDIS_SERVER_BIN=$(command -v redis-server)
  if [ -z "${TILL_SERVICES_PRIVATE:-}" ]; then
    if [ -n "${TILL_REDIS_URL:-}" ]; then
      TILL_REDIS_URL=${TILL_REDIS_URL%/}
      till__redis_answers "$TILL_REDIS_URL" && return 0
      till__say "TILL_REDIS_URL=$TILL_REDIS_URL does not answer; looking elsewhere"
    fi
    if till__redis_answers redis://127.0.0.1:6379; then
      TILL_REDIS_URL=redis://127.0.0.1:6379
      return 0
    fi
  fi
  till__redis_private
}

# ------------------------------------------------------------------------------------------------ public

till_ensure_services() {
  till__ensure_pg || till__err "PostgreSQL is not available" || return 1
  till__ensure_redis || till__err "Redis is not available" || return 1
  export TILL_PG_URL TILL_REDIS_URL TILL_REDIS_SERVER_BIN
}

till_ensure_nginx() {
  local bin
  bin=$(PATH="$PATH:/usr/sbin:/sbin" command -v nginx 2>/dev/null) || {
    till__apt_install nginx || return 1
    bin=$(PATH="$PATH:/usr/sbin:/sbin" command -v nginx 2>/dev/null) || till__err "nginx missing after install" || return 1
  }
  TILL_NGINX_BIN=$bin
  export TILL_NGINX_BIN
}

# The cluster checks speak WebSocket through the `websockets` library. A python3 first on PATH (pyenv,
# a venv) may not see Debian's packages, so the system one is tried too.
till_ensure_python_websockets() {
  local p
  for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import websockets' 2>/dev/null; then
      TILL_PYTHON=$(command -v "$p")
      export TILL_PYTHON
      return 0
    fi
  done
  till__apt_install python3-websockets || return 1
  /usr/bin/python3 -c 'import websockets' 2>/dev/null || till__err "python3-websockets installed but /usr/bin/python3 cannot import it" || return 1
  TILL_PYTHON=/usr/bin/python3
  export TILL_PYTHON
}

# Apache httpd with the proxy modules installed (not started); exports TILL_APACHE_BIN and
# TILL_APACHE_MODULES (the directory holding mod_*.so).
till_ensure_apache() {
  local bin mods=/usr/lib/apache2/modules
  bin=$(PATH="$PATH:/usr/sbin:/sbin" command -v apache2 2>/dev/null) && [ -f "$mods/mod_proxy_balancer.so" ] || {
    till__apt_install apache2 || return 1
    bin=$(PATH="$PATH:/usr/sbin:/sbin" command -v apache2 2>/dev/null) || till__err "apache2 missing after install" || return 1
  }
  [ -f "$mods/mod_proxy_balancer.so" ] || till__err "apache2 has no mod_proxy_balancer in $mods" || return 1
  TILL_APACHE_BIN=$bin
  TILL_APACHE_MODULES=$mods
  export TILL_APACHE_BIN TILL_APACHE_MODULES
}

till_stop_services() {
  local base pgdata bindir dir
  base=$(till__services_dir) || return 1
  pgdata=$(till__pg_datadir "$base")
  if [ -f "$pgdata/postmaster.pid" ] && bindir=$(till__pg_bindir "$(cat "$pgdata/PG_VERSION" 2>/dev/null)"); then
    till__pg_run "$bindir/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1 && till__say "stopped private PostgreSQL ($pgdata)"
  fi
  dir=$base/redis
  if [ -f "$dir/redis.pid" ]; then
    local pid
    pid=$(cat "$dir/redis.pid")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" && till__say "stopped private Redis (pid $pid)"
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    fi
    rm -f "$dir/redis.pid"
  fi
}
