#!/usr/bin/env bash
# Till: deploy on one Docker host with Docker Compose (nginx + N web instances + worker + PostgreSQL + Redis).
#
#   ./deploy.sh [up] [--scale N] [--no-build]
#                           first run: create .env from .env.example with fresh secrets and a self-signed
#                           TLS certificate (nginx/tls/, unless you put yours there); then build the image,
#                           start PostgreSQL and Redis, migrate, start nginx, N web instances (default 2, or
#                           as many as run now) and the worker, and wait until ready. When web instances
#                           already run, they are replaced one at a time (rolling: no request is lost).
#                           Refuses a scale whose connection pools exceed POSTGRES_MAX_CONNECTIONS.
#   ./deploy.sh status      containers, their health, and readiness through nginx
#   ./deploy.sh logs [SERVICE…]          follow the logs (all services, or those named)
#   ./deploy.sh down [ARGS…]             stop and remove the containers; data volumes are kept
#                                        (`down -v` deletes them too)
#   ./deploy.sh backup                   a dump now: backups/till-<UTC time>.dump (+ .counts manifest)
#   ./deploy.sh restore FILE [--yes]     load a backup into the database: stops web and worker, takes a safety
#                                        dump, restores in one transaction, deletes Till's Redis keys (its
#                                        REDIS_NAMESPACE only), migrates, starts again
#   ./deploy.sh verify [FILE]            restore drill: FILE (default: the newest backup) into a scratch
#                                        database; compares row counts and the stock ledger; drops it
#   ./deploy.sh monitoring               start Prometheus, exporters and Grafana (compose profile `monitoring`)
#   ./deploy.sh init                     only create .env (if missing) and the TLS certificate (if missing)
#   ./deploy.sh config                   check docker-compose.yml with .env, with and without the monitoring
#                                        profile (no Docker engine needed)
#
# Needs docker with the compose plugin (`docker compose`) or docker-compose, and a reachable engine;
# `init` and `config` need no engine. Environment: TILL_READY_TIMEOUT (seconds, default 180).
# docs/operations.md describes TLS, backups, resources, monitoring and rolling deploys.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

die() { printf 'deploy.sh: %s\n' "$*" >&2; exit 1; }
say() { printf '==> %s\n' "$*"; }

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

COMPOSE=()
find_compose() {
  if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
  else
    die "Docker Compose is missing: install Docker's compose plugin (docker compose) or docker-compose (Debian: apt-get install docker-compose)"
  fi
}
compose() { "${COMPOSE[@]}" "$@"; }

need_engine() {
  command -v docker >/dev/null 2>&1 || die "docker is not installed (https://docs.docker.com/engine/install/)"
  docker info >/dev/null 2>&1 ||
    die "the Docker engine is not reachable: is dockerd running, and may this user use it (docker group)?"
  find_compose
}

# Random hex of $1 bytes.
rand_hex() {
  if command -v openssl >/dev/null 2>&1; then
    openssl rand -hex "$1"
  else
    head -c "$1" /dev/urandom | od -An -v -tx1 | tr -d ' \n'
  fi
}

# .env from .env.example, each __NAME__ placeholder replaced by its own fresh secret. Never overwrites.
init_env() {
  [ -f .env ] && return 0
  [ -f .env.example ] || die ".env.example is missing"
  local pg redis jwt admin health webhook grafana
  pg=$(rand_hex 24) redis=$(rand_hex 24) jwt=$(rand_hex 32) admin=$(rand_hex 12) health=$(rand_hex 24)
  webhook=$(rand_hex 32) grafana=$(rand_hex 16)
  (
    umask 077
    sed -e "s/__POSTGRES_PASSWORD__/$pg/g" -e "s/__REDIS_PASSWORD__/$redis/g" \
      -e "s/__JWT_SECRET__/$jwt/g" -e "s/__ADMIN_PASSWORD__/$admin/g" \
      -e "s/__HEALTH_TOKEN__/$health/g" -e "s/__PAYMENT_WEBHOOK_SECRET__/$webhook/g" \
      -e "s/__GRAFANA_ADMIN_PASSWORD__/$grafana/g" .env.example >.env.tmp
    mv .env.tmp .env
  )
  if grep -q '__[A-Z_]*__' .env; then
    die ".env still has placeholders: $(grep -o '__[A-Z_]*__' .env | sort -u | tr '\n' ' ')"
  fi
  say "created .env with fresh secrets (mode 600). First admin: $(env_get ADMIN_EMAIL) / $admin"
}

# An .env from an older release: settings added to .env.example since are appended (a secret
# placeholder gets a fresh value); nothing already there changes.
upgrade_env() {
  [ -f .env ] && [ -f .env.example ] || return 0
  local line key ph value added=''
  while IFS= read -r line; do
    [[ "$line" =~ ^([A-Z][A-Z0-9_]*)= ]] || continue
    key=${BASH_REMATCH[1]}
    grep -q "^$key=" .env && continue
    # A placeholder naming a secret .env already has (REDIS_CACHE_URL's __REDIS_PASSWORD__) takes
    # that value; any other gets a fresh one.
    while [[ "$line" =~ __([A-Z_]+)__ ]]; do
      ph=${BASH_REMATCH[1]}
      value=$(env_get "$ph")
      [ -n "$value" ] || value=$(rand_hex 16)
      line=${line//__${ph}__/$value}
    done
    printf '%s\n' "$line" >>.env
    added="$added $key"
  done <.env.example
  [ -z "$added" ] || say "added to .env (new settings, defaults):$added"
  # nginx serves HTTPS now, and production refuses an insecure session cookie.
  if [ "$(env_get APP_ENV)" = production ] && [ "$(env_get COOKIE_SECURE)" = false ]; then
    sed -i 's/^COOKIE_SECURE=false$/COOKIE_SECURE=true/' .env
    say "set COOKIE_SECURE=true in .env: nginx serves HTTPS, and production refuses false"
  fi
}

# nginx's certificate: nginx/tls/cert.pem + key.pem. Yours when present; else a self-signed one for
# this host's names (browsers warn; replace it with a real one, then `docker compose restart nginx`).
ensure_tls() {
  local dir=nginx/tls host
  [ -f "$dir/cert.pem" ] && [ -f "$dir/key.pem" ] && return 0
  [ -f "$dir/cert.pem" ] || [ -f "$dir/key.pem" ] && die "$dir has only one of cert.pem and key.pem"
  command -v openssl >/dev/null 2>&1 || die "openssl is needed to make a self-signed certificate (or put cert.pem and key.pem in $dir)"
  host=$(hostname -f 2>/dev/null || hostname)
  mkdir -p "$dir"
  (
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
      -subj "/CN=$host" -addext "subjectAltName=DNS:$host,DNS:localhost,IP:127.0.0.1" \
      -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1
  ) || die "openssl could not make a certificate"
  chmod 644 "$dir/cert.pem"  # nginx's workers read it; the key stays 600 (read by the master, as root)
  say "made a self-signed TLS certificate for $host in $dir (replace it with yours: cert.pem + key.pem)"
}

# Refuses a scale whose pools could open more connections than PostgreSQL allows:
# (web instances + worker) × DATABASE_MAX_CONNECTIONS + a reserve for migrate, backups and psql.
check_connection_budget() {
  local web=$1 workers=$2 pool max reserve=10 need
  pool=$(env_get DATABASE_MAX_CONNECTIONS)
  pool=${pool:-20}
  max=$(env_get POSTGRES_MAX_CONNECTIONS)
  max=${max:-300}
  [[ "$pool" =~ ^[0-9]+$ && "$max" =~ ^[0-9]+$ ]] || die "DATABASE_MAX_CONNECTIONS and POSTGRES_MAX_CONNECTIONS must be numbers"
  need=$(((web + workers) * pool + reserve))
  if [ "$need" -gt "$max" ]; then
    die "($web web instance(s) + $workers worker) × DATABASE_MAX_CONNECTIONS=$pool + $reserve reserved = $need connections, over POSTGRES_MAX_CONNECTIONS=$max. In .env, lower DATABASE_MAX_CONNECTIONS to $(((max - reserve) / (web + workers))) or less, or raise POSTGRES_MAX_CONNECTIONS to $need or more (PostgreSQL restarts), or scale to $(((max - reserve) / pool - workers)) or fewer web instances."
  fi
}

# The value of KEY in .env (last one wins, like compose).
env_get() {
  sed -n "s/^$1=//p" .env 2>/dev/null | tail -n 1
}

http_port() {
  local p
  p=$(env_get TILL_HTTP_PORT)
  echo "${p:-80}"
}

# Prints the HTTP status of GET $1 (000 when nothing answers). Plain HTTP answers the readiness
# probe without a redirect; HTTPS is checked without verifying a (possibly self-signed) certificate.
http_status() {
  if command -v curl >/dev/null 2>&1; then
    curl -sk -o /dev/null -m 3 -w '%{http_code}' "$1" 2>/dev/null || echo 000
  else
    local host=${1#http://} path
    path=/${host#*/} host=${host%%/*}
    timeout 3 bash -c "exec 3<>/dev/tcp/${host%:*}/${host##*:} && printf 'GET $path HTTP/1.0\r\nHost: x\r\n\r\n' >&3 && head -n1 <&3" 2>/dev/null |
      awk '{print $2}' | grep . || echo 000
  fi
}

wait_ready() {
  local url deadline
  url="http://127.0.0.1:$(http_port)/health/readiness"
  deadline=$(($(date +%s) + ${TILL_READY_TIMEOUT:-180}))
  say "waiting for $url"
  until [ "$(http_status "$url")" = 200 ]; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      compose ps >&2 || true
      die "not ready after ${TILL_READY_TIMEOUT:-180}s; see ./deploy.sh logs web"
    fi
    sleep 2
  done
  local https
  https=$(env_get TILL_HTTPS_PORT)
  https=${https:-443}
  if [ "$https" = 443 ]; then https=''; else https=":$https"; fi
  say "ready: https://127.0.0.1$https/ (HTTP on port $(http_port) redirects there)"
}

wait_postgres() {
  for _ in $(seq 1 90); do
    compose exec -T postgres pg_isready -q -U till -d till -h 127.0.0.1 >/dev/null 2>&1 && return 0
    sleep 2
  done
  die "PostgreSQL did not become ready; see ./deploy.sh logs postgres"
}

running_web() {
  compose ps -q web 2>/dev/null | grep -c . || true
}

# Waits until container $1 answers its readiness probe (from inside: the image has curl).
wait_container_ready() {
  local id=$1 deadline
  deadline=$(($(date +%s) + ${TILL_READY_TIMEOUT:-180}))
  until docker exec "$id" sh -c 'curl -fsS -o /dev/null "http://127.0.0.1:${BIND_ADDR##*:}/health/readiness"' 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 2
  done
}

# Replaces the running web containers one at a time: start one on the new image, wait until it is
# ready and nginx has resolved it (its resolver caches `web` for 5 s), then stop one old container
# (SIGTERM: it drains for SHUTDOWN_DRAIN_MS while nginx routes around it, then finishes what it
# serves). Capacity never drops below the current scale; a new container that never becomes ready
# stops the roll with every old one still serving.
roll_web() {
  local target=$1 old id before after new n
  old=$(compose ps -q web)
  for id in $old; do
    before=$(compose ps -q web | sort)
    n=$(printf '%s\n' "$before" | grep -c .)
    compose up -d --no-deps --no-recreate --scale "web=$((n + 1))" web
    after=$(compose ps -q web | sort)
    new=$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | head -n 1)
    [ -n "$new" ] || die "rolling: no new web container started"
    say "rolling: new web container ${new:0:12} started; waiting until it is ready"
    if ! wait_container_ready "$new"; then
      docker rm -f "$new" >/dev/null 2>&1 || true
      die "rolling: the new web container never became ready; the old ones keep serving (see ./deploy.sh logs web)"
    fi
    sleep 6
    say "rolling: stopping old web container ${id:0:12}"
    docker stop -t 45 "$id" >/dev/null
    docker rm "$id" >/dev/null
  done
  n=$(running_web)
  if [ "$n" != "$target" ]; then
    compose up -d --no-deps --no-recreate --scale "web=$target" web
  fi
}

# True when the built image has the `till worker` subcommand.
image_has_worker() {
  local image
  image=$(env_get TILL_IMAGE)
  docker run --rm --entrypoint /usr/local/bin/till "${image:-till:latest}" worker --help >/dev/null 2>&1
}

cmd_up() {
  local scale='' build=1
  while [ $# -gt 0 ]; do
    case "$1" in
      --scale) [ $# -ge 2 ] || die "--scale needs a number"; scale=$2; shift 2 ;;
      --scale=*) scale=${1#--scale=}; shift ;;
      --no-build) build=0; shift ;;
      *) die "up: unknown argument $1 (try --help)" ;;
    esac
  done
  if [ -n "$scale" ]; then
    [[ "$scale" =~ ^[1-9][0-9]*$ ]] || die "--scale must be a positive number, not $scale"
  fi
  init_env
  upgrade_env
  # Checked before anything starts (and before the engine is needed): the worker counts as one.
  [ -z "$scale" ] || check_connection_budget "$scale" 1
  ensure_tls
  need_engine
  local running
  running=$(running_web)
  if [ -z "$scale" ]; then
    scale=$running
    [ "$scale" -gt 0 ] || scale=2
    check_connection_budget "$scale" 1
  fi
  if [ "$build" = 1 ]; then
    say "building the image"
    compose build
  fi
  say "starting PostgreSQL and Redis"
  compose up -d postgres redis redis-cache
  wait_postgres
  say "migrating"
  compose run --rm migrate
  local workers=1
  if ! image_has_worker; then
    workers=0
    say "note: this image has no \`till worker\` subcommand yet; the worker service is not started"
  fi
  if [ "$running" -gt 0 ]; then
    say "replacing $running web instance(s) one at a time"
    roll_web "$scale"
  fi
  # Web containers made by the roll already run the new image and configuration: compose keeps them.
  say "starting nginx, $scale web instance(s), $workers worker(s) and scheduled backups"
  compose up -d --remove-orphans --scale "web=$scale" --scale "worker=$workers"
  wait_ready
}

cmd_status() {
  need_engine
  compose ps
  local url
  url="http://127.0.0.1:$(http_port)"
  printf '\nreadiness through nginx: %s\n' "$(http_status "$url/health/readiness")"
  if command -v curl >/dev/null 2>&1; then
    # /health over HTTPS (plain HTTP redirects it); -k: the certificate may be self-signed.
    local https
    https=$(env_get TILL_HTTPS_PORT)
    curl -sk -m 3 "https://127.0.0.1:${https:-443}/health" || true
    echo
  fi
}

cmd_backup() {
  need_engine
  mkdir -p backups
  say "pg_dump (custom format) with a row-count manifest into ./backups"
  compose run --rm --no-deps backup dump /backups
}

# Deletes every Redis key under REDIS_NAMESPACE (sessions, limits and caches of the replaced data);
# keys of anything else sharing that Redis are left alone (no FLUSHDB).
clear_redis_namespace() {
  local service=$1 ns
  ns=$(env_get REDIS_NAMESPACE)
  ns=${ns:-till}
  [[ "$ns" =~ ^[A-Za-z0-9_.-]+$ ]] || die "REDIS_NAMESPACE $ns has characters a key pattern cannot carry safely"
  compose exec -T "$service" sh -c 'redis-cli --scan --pattern "$1:*" | xargs -r -n 500 redis-cli unlink >/dev/null' \
    sh "$ns"  # REDISCLI_AUTH is set in that container
}

cmd_restore() {
  local file='' yes=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --yes | -y) yes=1 ;;
      -*) die "restore: unknown option $1" ;;
      *) [ -z "$file" ] || die "restore takes one FILE"; file=$1 ;;
    esac
    shift
  done
  [ -n "$file" ] || die "usage: ./deploy.sh restore FILE [--yes]"
  [ -f "$file" ] || die "no such file: $file"
  need_engine
  if [ "$yes" != 1 ]; then
    [ -t 0 ] || die "restore replaces the database: pass --yes to confirm when not on a terminal"
    read -r -p "Replace the database with $file? Every change since that backup is lost. [y/N] " answer
    [[ "$answer" =~ ^[Yy] ]] || die "cancelled"
  fi
  # The backup container sees ./backups only.
  mkdir -p backups
  local name
  name=$(basename "$file")
  if [ "$(cd "$(dirname "$file")" && pwd -P)" != "$(cd backups && pwd -P)" ]; then
    (umask 077 && cp "$file" "backups/$name")
    [ -f "$file.counts" ] && cp "$file.counts" "backups/$name.counts"
  fi
  local scale
  scale=$(running_web)
  [ "$scale" -gt 0 ] || scale=2
  say "stopping web, worker and scheduled backups"
  compose stop web worker backup
  say "restoring $name (a safety dump of the current database is taken first, into backups/pre-restore/)"
  compose run --rm --no-deps backup restore "/backups/$name" --yes
  say "deleting Till's Redis keys (sessions, limits and caches of the replaced data)"
  clear_redis_namespace redis
  clear_redis_namespace redis-cache
  compose run --rm migrate
  local workers=1
  image_has_worker || workers=0
  compose up -d --scale "web=$scale" --scale "worker=$workers" web worker backup
  wait_ready
}

cmd_verify() {
  need_engine
  local target=/backups
  if [ $# -gt 0 ]; then
    [ -f "$1" ] || die "no such file: $1"
    [ "$(cd "$(dirname "$1")" && pwd -P)" = "$(mkdir -p backups && cd backups && pwd -P)" ] ||
      die "verify reads backups from ./backups; copy $1 (and its .counts) there"
    target=/backups/$(basename "$1")
  fi
  compose run --rm --no-deps backup verify "$target"
}

cmd_config() {
  find_compose
  init_env
  upgrade_env
  compose config -q
  say "docker-compose.yml is valid ($(compose config --services | tr '\n' ' '))"
  compose --profile monitoring config -q
  say "with --profile monitoring: $(compose --profile monitoring config --services | tr '\n' ' ')"
}

case "${1:-up}" in
  -h | --help | help) usage ;;
  up) shift || true; cmd_up "$@" ;;
  --scale | --scale=* | --no-build) cmd_up "$@" ;;
  status) need_engine; cmd_status ;;
  logs) shift; need_engine; compose logs -f --tail=200 "$@" ;;
  down) shift; need_engine; compose down "$@" ;;
  backup) cmd_backup ;;
  restore) shift; cmd_restore "$@" ;;
  verify) shift; cmd_verify "$@" ;;
  monitoring) need_engine; compose --profile monitoring up -d prometheus node-exporter postgres-exporter redis-exporter grafana ;;
  init) init_env; upgrade_env; ensure_tls; say ".env and the TLS certificate are in place" ;;
  config) cmd_config ;;
  *) die "unknown command: $1 (try --help)" ;;
esac
