#!/usr/bin/env bash
# Till: deploy on one Docker host with Docker Compose (nginx + N web instances + worker + PostgreSQL + Redis).
#
#   ./deploy.sh [up] [--scale N] [--no-build]
#                           first run: create .env from .env.example with fresh secrets; then build the
#                           image, start PostgreSQL and Redis, migrate, start nginx, N web instances
#                           (default 2, or as many as run now) and the worker, and wait until ready
#   ./deploy.sh status      containers, their health, and readiness through nginx
#   ./deploy.sh logs [SERVICE…]          follow the logs (all services, or those named)
#   ./deploy.sh down [ARGS…]             stop and remove the containers; data volumes are kept
#                                        (`down -v` deletes them too)
#   ./deploy.sh backup                   pg_dump to backups/till-<UTC timestamp>.dump (custom format)
#   ./deploy.sh restore FILE [--yes]     load a backup into the database: stops web and worker, restores,
#                                        clears Redis (sessions and caches of the old data), starts again
#   ./deploy.sh init                     only create .env (if missing)
#   ./deploy.sh config                   check docker-compose.yml with .env (no Docker engine needed)
#
# Needs docker with the compose plugin (`docker compose`) or docker-compose, and a reachable engine;
# `init` and `config` need no engine. Environment: TILL_READY_TIMEOUT (seconds, default 180).
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
  local pg redis jwt admin health webhook
  pg=$(rand_hex 24) redis=$(rand_hex 24) jwt=$(rand_hex 32) admin=$(rand_hex 12) health=$(rand_hex 24)
  webhook=$(rand_hex 32)
  (
    umask 077
    sed -e "s/__POSTGRES_PASSWORD__/$pg/g" -e "s/__REDIS_PASSWORD__/$redis/g" \
      -e "s/__JWT_SECRET__/$jwt/g" -e "s/__ADMIN_PASSWORD__/$admin/g" \
      -e "s/__HEALTH_TOKEN__/$health/g" -e "s/__PAYMENT_WEBHOOK_SECRET__/$webhook/g" .env.example >.env.tmp
    mv .env.tmp .env
  )
  if grep -q '__[A-Z_]*__' .env; then
    die ".env still has placeholders: $(grep -o '__[A-Z_]*__' .env | sort -u | tr '\n' ' ')"
  fi
  say "created .env with fresh secrets (mode 600). First admin: $(env_get ADMIN_EMAIL) / $admin"
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

# Prints the HTTP status of GET $1 (000 when nothing answers).
http_status() {
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null -m 3 -w '%{http_code}' "$1" 2>/dev/null || echo 000
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
  say "ready: http://127.0.0.1:$(http_port)/"
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
  need_engine
  init_env
  if [ -z "$scale" ]; then
    scale=$(running_web)
    [ "$scale" -gt 0 ] || scale=2
  fi
  [[ "$scale" =~ ^[1-9][0-9]*$ ]] || die "--scale must be a positive number, not $scale"
  if [ "$build" = 1 ]; then
    say "building the image"
    compose build
  fi
  say "starting PostgreSQL and Redis"
  compose up -d postgres redis
  wait_postgres
  say "migrating"
  compose run --rm migrate
  local workers=1
  if ! image_has_worker; then
    workers=0
    say "note: this image has no \`till worker\` subcommand yet; the worker service is not started"
  fi
  say "starting nginx, $scale web instance(s) and $workers worker(s)"
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
    curl -s -m 3 "$url/health" || true
    echo
  fi
}

cmd_backup() {
  need_engine
  mkdir -p backups
  local f
  f="backups/till-$(date -u +%Y%m%dT%H%M%SZ).dump"
  say "pg_dump → $f"
  compose exec -T postgres pg_dump -U till -d till --format=custom --no-owner --no-privileges >"$f.partial" ||
    { rm -f "$f.partial"; die "pg_dump failed"; }
  mv "$f.partial" "$f"
  say "backup written: $f ($(du -h "$f" | cut -f1))"
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
  local scale
  scale=$(running_web)
  [ "$scale" -gt 0 ] || scale=2
  say "stopping web and worker"
  compose stop web worker
  say "restoring $file"
  compose exec -T postgres pg_restore -U till -d till --clean --if-exists --no-owner --no-privileges \
    --single-transaction <"$file"
  say "clearing Redis (sessions, caches and rate limits of the replaced data)"
  compose exec -T redis redis-cli FLUSHDB >/dev/null  # REDISCLI_AUTH is set in that container
  compose run --rm migrate
  local workers=1
  image_has_worker || workers=0
  compose up -d --scale "web=$scale" --scale "worker=$workers"
  wait_ready
}

cmd_config() {
  find_compose
  init_env
  compose config -q
  say "docker-compose.yml is valid ($(compose config --services | tr '\n' ' '))"
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
  init) init_env; say ".env is in place" ;;
  config) cmd_config ;;
  *) die "unknown command: $1 (try --help)" ;;
esac
