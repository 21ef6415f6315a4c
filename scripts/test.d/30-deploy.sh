#!/usr/bin/env bash
# Deployment files: every configuration the repository ships or generates is accepted by its own tool.
#   nginx -t        nginx/nginx.conf (the compose one) and `till lb-config nginx` outputs
#   haproxy -c      `till lb-config haproxy` outputs (static servers; DNS server-template)
#   apache2 -t      `till lb-config apache` outputs (static UI and runtime dir; proxied UI; resolver)
#   compose config  docker-compose.yml with a .env made by `deploy.sh` (fresh secrets), with and without
#                   `--profile monitoring`, plus its shape (log rotation, memory limits, Redis policies,
#                   backup service, published ports)
#   TLS             the certificate `deploy.sh init` makes; nginx -t of the TLS configs with it
#   connections     deploy.sh refuses a scale whose pools exceed POSTGRES_MAX_CONNECTIONS
#   promtool        check config (monitoring/prometheus.yml), check rules and test rules (alerts)
#   dashboard       the Grafana JSON parses and names only metrics Till exports
#   and: .env.example names every setting Till reads; the Dockerfile copies every crate manifest.
# nginx, haproxy, apache2, docker-compose and prometheus (promtool) are installed with apt when missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=scripts/lib/services.sh
source scripts/lib/services.sh

# shellcheck source=scripts/lib/checks.sh
source scripts/lib/checks.sh
note() { echo "note  $*"; }

if [ -z "${TILL_BIN:-}" ] || [ ! -x "$TILL_BIN" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/till-target}"
  cargo build -q --bin till
  TILL_BIN="$CARGO_TARGET_DIR/debug/till"
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/till-deploy-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]; }

# ------------------------------------------------------------------------------------------------ nginx
till_ensure_nginx
nginx_version=$("$TILL_NGINX_BIN" -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p')
nginx_e=()
"$TILL_NGINX_BIN" -h 2>&1 | grep -q -- '-e filename' && nginx_e=(-e "$tmp/nginx-error.log")
mkdir -p "$tmp/nginx-prefix"
nginx_t() { "$TILL_NGINX_BIN" -t -q -p "$tmp/nginx-prefix/" -c "$1" "${nginx_e[@]}"; }

# `server NAME resolve` needs nginx >= 1.27.3 (compose pins nginx:1.28). On an older local nginx, test the
# same file with that one parameter dropped and the compose host name pointed at loopback (an older nginx
# resolves upstream names while reading the config, and `web` exists only inside the compose network).
# `http2 on` needs nginx >= 1.25.1; older ones take the same setting as a `listen … http2` parameter.
# The compose file's certificate paths point at a certificate made by `deploy.sh init` (below).
for_local_nginx() {
  local f=$1
  if ! version_ge "$nginx_version" 1.27.3; then
    sed -i -e 's/ resolve;$/;/' -e 's/server web:8080 /server 127.0.0.1:8080 /' "$f"
  fi
  if ! version_ge "$nginx_version" 1.25.1; then
    sed -i -e '/^ *http2 on;$/d' -e 's/^\( *listen [^;]* ssl\) default_server;$/\1 http2 default_server;/' "$f"
  fi
  sed -i "s|/etc/nginx/tls/|$tmp/deploy/nginx/tls/|g" "$f"
}
if ! version_ge "$nginx_version" 1.27.3; then
  note "local nginx is $nginx_version (< 1.27.3): the compose config is tested without \`resolve\` and with web → 127.0.0.1"
fi

# deploy.sh runs in a copy, so the repository never gets a .env or a certificate.
mkdir -p "$tmp/deploy"
cp -r deploy.sh docker-compose.yml .env.example nginx backup monitoring "$tmp/deploy/"
rm -rf "$tmp/deploy/nginx/tls"
check "deploy.sh init" bash -c "cd '$tmp/deploy' && ./deploy.sh init"

tls_cert_checks() {
  local d=$tmp/deploy/nginx/tls
  [ -f "$d/cert.pem" ] && [ -f "$d/key.pem" ] || { echo "no cert.pem/key.pem in nginx/tls"; return 1; }
  [ "$(stat -c %a "$d/key.pem")" = 600 ] || { echo "key.pem mode $(stat -c %a "$d/key.pem")"; return 1; }
  openssl x509 -in "$d/cert.pem" -noout -checkend 86400 >/dev/null || { echo "certificate invalid or expiring"; return 1; }
  openssl x509 -in "$d/cert.pem" -noout -ext subjectAltName | grep -q 'DNS:localhost' || { echo "no SAN"; return 1; }
  # The key belongs to the certificate.
  [ "$(openssl x509 -in "$d/cert.pem" -noout -pubkey)" = "$(openssl pkey -in "$d/key.pem" -pubout)" ] ||
    { echo "key does not match the certificate"; return 1; }
  # A second run keeps the certificate (yours, or the one made before).
  local sum
  sum=$(sha256sum "$d/cert.pem")
  (cd "$tmp/deploy" && ./deploy.sh init >/dev/null)
  [ "$(sha256sum "$d/cert.pem")" = "$sum" ] || { echo "a second run replaced the certificate"; return 1; }
}
check "TLS: deploy.sh makes a self-signed certificate (key 600, SAN, matching) once" tls_cert_checks

cp nginx/nginx.conf "$tmp/compose-nginx.conf"
for_local_nginx "$tmp/compose-nginx.conf"
check "nginx -t nginx/nginx.conf (compose: TLS, HTTP/2, redirect)" nginx_t "$tmp/compose-nginx.conf"

compose_tls_shape() {
  local c=nginx/nginx.conf
  grep -q '^        listen 443 ssl default_server;$' "$c" && grep -q '^        http2 on;$' "$c" &&
    grep -q '^        ssl_protocols TLSv1.2 TLSv1.3;$' "$c" &&
    grep -q 'return 301 https://$host$request_uri;' "$c" &&
    grep -q 'Strict-Transport-Security "max-age=31536000; includeSubDomains" always;' "$c" ||
    { echo "nginx/nginx.conf lacks HTTPS on 443 with HTTP/2, TLS 1.2+1.3, the redirect or HSTS"; return 1; }
}
check "nginx/nginx.conf: 443 ssl + http2, TLS 1.2/1.3 only, 80 → 443, HSTS" compose_tls_shape

"$TILL_BIN" lb-config nginx --upstream 127.0.0.1:18081 127.0.0.1:18082 127.0.0.1:18083 \
  --listen 127.0.0.1:18080 --runtime-dir "$tmp/nginx-run" --static-dir "$PWD/web" >"$tmp/lb-loopback.conf"
mkdir -p "$tmp/nginx-run"
check "nginx -t lb-config nginx (loopback, runtime dir, static UI)" nginx_t "$tmp/lb-loopback.conf"

"$TILL_BIN" lb-config nginx --upstream 10.0.0.11:8080 10.0.0.12:8080 --max-body-bytes 5000000 \
  --login-per-min 10 >"$tmp/lb-plain.conf"
check "nginx -t lb-config nginx (defaults)" nginx_t "$tmp/lb-plain.conf"

"$TILL_BIN" lb-config nginx --upstream web:8080 --resolver 127.0.0.11 >"$tmp/lb-dns.conf"
for_local_nginx "$tmp/lb-dns.conf"
check "nginx -t lb-config nginx (resolver)" nginx_t "$tmp/lb-dns.conf"

"$TILL_BIN" lb-config nginx --upstream 127.0.0.1:18081 --listen 127.0.0.1:18080 --tls-listen 127.0.0.1:18443 \
  --tls-cert /etc/nginx/tls/cert.pem --tls-key /etc/nginx/tls/key.pem --runtime-dir "$tmp/nginx-run" \
  >"$tmp/lb-tls.conf"
for_local_nginx "$tmp/lb-tls.conf"
check "nginx -t lb-config nginx (TLS on a custom port, runtime dir)" nginx_t "$tmp/lb-tls.conf"

check "lb-config rejects a bad upstream" bash -c "! '$TILL_BIN' lb-config nginx --upstream 'web' 2>/dev/null"

# ---------------------------------------------------------------------------------------------- HAProxy
command -v haproxy >/dev/null 2>&1 || till__apt_install haproxy
"$TILL_BIN" lb-config haproxy --upstream 127.0.0.1:18081 127.0.0.1:18082 --listen 127.0.0.1:18090 \
  --runtime-dir "$tmp" >"$tmp/haproxy.cfg"
check "haproxy -c lb-config haproxy (loopback)" haproxy -c -q -f "$tmp/haproxy.cfg"
"$TILL_BIN" lb-config haproxy --upstream web:8080 --resolver 127.0.0.11 >"$tmp/haproxy-dns.cfg"
check "haproxy -c lb-config haproxy (resolver, server-template)" haproxy -c -q -f "$tmp/haproxy-dns.cfg"

# ----------------------------------------------------------------------------------------------- Apache
# The generated file is included from a throwaway server config (its own ServerRoot, pid, logs and
# runtime dir) that loads exactly the modules the generated file says it needs, plus the base ones.
if till_ensure_apache; then
  mods=$TILL_APACHE_MODULES
  apache_t() { # CONF: apache2 -t with CONF as the site, in $tmp/apache
    local d=$tmp/apache m
    rm -rf "$d" && mkdir -p "$d"
    {
      echo "ServerRoot $d"
      echo "DefaultRuntimeDir $d"
      echo "PidFile $d/httpd.pid"
      echo "ErrorLog $d/error.log"
      echo "ServerName localhost"
      for m in mpm_event authz_core authz_host proxy proxy_http proxy_wstunnel proxy_balancer \
        lbmethod_bybusyness slotmem_shm headers; do
        [ -f "$mods/mod_$m.so" ] || { echo "missing $mods/mod_$m.so" >&2; return 1; }
        echo "LoadModule ${m}_module $mods/mod_$m.so"
      done
      echo "Include $1"
    } >"$d/httpd.conf"
    # Debian's apache2 reads APACHE_* variables from /etc/apache2/envvars; set what it needs.
    APACHE_RUN_DIR=$d APACHE_LOCK_DIR=$d APACHE_LOG_DIR=$d APACHE_PID_FILE=$d/httpd.pid \
      "$TILL_APACHE_BIN" -t -f "$d/httpd.conf"
  }
  "$TILL_BIN" lb-config apache --upstream 127.0.0.1:18081 127.0.0.1:18082 --listen 127.0.0.1:18095 \
    --static-dir "$PWD/web" --runtime-dir "$tmp/apache-run" >"$tmp/apache-static.conf"
  mkdir -p "$tmp/apache-run"
  check "apache2 -t lb-config apache (loopback, runtime dir, static UI)" apache_t "$tmp/apache-static.conf"
  "$TILL_BIN" lb-config apache --upstream 10.0.0.11:8080 10.0.0.12:8080 --listen 18096 \
    --max-body-bytes 5000000 >"$tmp/apache-plain.conf"
  check "apache2 -t lb-config apache (proxied UI, port only)" apache_t "$tmp/apache-plain.conf"
  "$TILL_BIN" lb-config apache --upstream web:8080 --resolver 127.0.0.11 --listen 127.0.0.1:18097 \
    >"$tmp/apache-dns.conf"
  check "apache2 -t lb-config apache (resolver)" apache_t "$tmp/apache-dns.conf"
else
  bad "apache2 could not be installed: lb-config apache is not validated"
fi

# ---------------------------------------------------------------------------------------------- compose
have_compose() {
  { command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; } || command -v docker-compose >/dev/null 2>&1
}
have_compose || till__apt_install docker-compose || true
if have_compose; then
  check "deploy.sh config (docker compose config with a generated .env, with and without --profile monitoring)" \
    bash -c "cd '$tmp/deploy' && ./deploy.sh config"
else
  note "docker-compose could not be installed: only a YAML parse of docker-compose.yml below"
  check "deploy.sh init" bash -c "cd '$tmp/deploy' && ./deploy.sh init"
fi

env_checks() {
  local f=$tmp/deploy/.env
  [ -f "$f" ] || { echo "no .env"; return 1; }
  [ "$(stat -c %a "$f")" = 600 ] || { echo ".env mode $(stat -c %a "$f")"; return 1; }
  ! grep -n '__[A-Z_]*__' "$f" || { echo "placeholders left"; return 1; }
  local k v seen=''
  for k in POSTGRES_PASSWORD REDIS_PASSWORD JWT_SECRET ADMIN_PASSWORD HEALTH_TOKEN PAYMENT_WEBHOOK_SECRET; do
    v=$(sed -n "s/^$k=//p" "$f")
    [[ "$v" =~ ^[0-9a-f]{24,}$ ]] || { echo "$k=$v is not a long random hex"; return 1; }
    case " $seen " in *" $v "*) echo "$k repeats another secret"; return 1 ;; esac
    seen="$seen $v"
  done
  [ "$(sed -n 's/^JWT_SECRET=//p' "$f" | tr -d '\n' | wc -c)" -ge 32 ] || { echo "JWT_SECRET too short"; return 1; }
  grep -q "^DATABASE_URL=postgres://till:$(sed -n 's/^POSTGRES_PASSWORD=//p' "$f")@postgres:5432/till$" "$f" ||
    { echo "DATABASE_URL does not carry POSTGRES_PASSWORD"; return 1; }
  cp "$f" "$tmp/env.before"
  (cd "$tmp/deploy" && ./deploy.sh init >/dev/null)
  cmp -s "$f" "$tmp/env.before" || { echo "a second run changed .env"; return 1; }
}
check ".env from deploy.sh: mode 600, distinct random secrets, kept on later runs" env_checks

# An .env from before this release: new settings are appended, a placeholder for a secret it already
# has takes that secret, and the now-refused COOKIE_SECURE=false becomes true (nginx serves HTTPS).
env_upgrade() {
  local d=$tmp/upgrade
  mkdir -p "$d"
  cp deploy.sh .env.example "$d/"
  grep -v -e '^REDIS_CACHE_URL=' -e '^GRAFANA_ADMIN_PASSWORD=' -e '^BACKUP_KEEP_DAYS=' .env.example |
    sed -e 's/__REDIS_PASSWORD__/oldredispw/g' -e 's/__[A-Z_]*__/0123456789abcdef0123456789abcdef/g' \
      -e 's/^COOKIE_SECURE=.*/COOKIE_SECURE=false/' >"$d/.env"
  (cd "$d" && ./deploy.sh init >/dev/null 2>&1) || return 1
  grep -qx 'REDIS_CACHE_URL=redis://:oldredispw@redis-cache:6379' "$d/.env" || { grep REDIS_CACHE "$d/.env"; return 1; }
  grep -Eqx 'GRAFANA_ADMIN_PASSWORD=[0-9a-f]{32}' "$d/.env" && grep -qx 'BACKUP_KEEP_DAYS=14' "$d/.env" &&
    grep -qx 'COOKIE_SECURE=true' "$d/.env" || { tail -n 5 "$d/.env"; return 1; }
}
check ".env from an older release: new settings added (existing secrets reused), COOKIE_SECURE=true" env_upgrade

# The compose file's shape, from the YAML itself.
py=''
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import yaml' 2>/dev/null; then py=$p; break; fi
done
if [ -n "$py" ]; then
  check "docker-compose.yml: services, ports, dependencies, health checks" "$py" - docker-compose.yml <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
s = c["services"]
need = {"nginx", "web", "worker", "postgres", "redis", "migrate"}
assert need <= set(s), f"services: {sorted(s)}"
published = [n for n, v in s.items() if v.get("ports") and not v.get("profiles")]
assert published == ["nginx"], f"only nginx may publish a port, not {published}"
assert {"${TILL_HTTP_PORT:-80}:80", "${TILL_HTTPS_PORT:-443}:443"} == set(s["nginx"]["ports"]), s["nginx"]["ports"]
assert any(v.endswith(":/etc/nginx/tls:ro") for v in s["nginx"]["volumes"])
# Monitoring: a profile, never started by default; what it publishes is on loopback only.
mon = {n for n, v in s.items() if "monitoring" in v.get("profiles", [])}
assert {"prometheus", "grafana", "node-exporter", "postgres-exporter", "redis-exporter"} <= mon, mon
for n in mon:
    for p in s[n].get("ports", []):
        assert p.startswith("127.0.0.1:"), f"{n} publishes {p} beyond loopback"
# Resources: every container's log rotates; every container has a memory limit.
for n, v in s.items():
    lg = v.get("logging") or {}
    assert lg.get("driver") == "json-file", f"{n}: logging {lg}"
    assert lg["options"]["max-size"] and int(lg["options"]["max-file"]) >= 2, f"{n}: {lg}"
    assert v.get("mem_limit"), f"{n} has no mem_limit"
cmdline = lambda n: " ".join(s[n]["command"])
# Sessions' Redis never evicts but is capped; the cache's Redis evicts only keys with a TTL.
assert "--maxmemory-policy noeviction" in cmdline("redis") and "--maxmemory " in cmdline("redis")
assert "--maxmemory-policy volatile-lru" in cmdline("redis-cache") and "--maxmemory " in cmdline("redis-cache")
assert "max_connections=${POSTGRES_MAX_CONNECTIONS:-300}" in cmdline("postgres")
# Backups: the schedule, retention from .env, the dumps on the host.
b = s["backup"]
assert b["command"] == ["schedule"] and "till-backup.sh" in " ".join(b["entrypoint"]), b
assert b["environment"]["BACKUP_KEEP_DAYS"] == "${BACKUP_KEEP_DAYS:-14}", b["environment"]
assert "./backups:/backups" in b["volumes"]
assert b["depends_on"]["postgres"]["condition"] == "service_healthy"
cmd = lambda n: s[n]["command"] if isinstance(s[n]["command"], str) else " ".join(s[n]["command"])
assert cmd("web") == "serve" and cmd("worker") == "worker" and cmd("migrate") == "migrate"
for n in ("web", "worker"):
    d = s[n]["depends_on"]
    assert d["migrate"]["condition"] == "service_completed_successfully", d
    assert d["postgres"]["condition"] == "service_healthy" and d["redis"]["condition"] == "service_healthy", d
    assert s[n]["env_file"] == ".env" and s[n]["restart"] == "unless-stopped"
for n in ("postgres", "redis"):
    assert s[n]["healthcheck"]["test"], n
assert "pg_isready" in str(s["postgres"]["healthcheck"]["test"])
assert any("pgdata" in v for v in s["postgres"]["volumes"])
assert s["migrate"]["restart"] in ("on-failure", "no") or s["migrate"]["restart"].startswith("on-failure")
assert "nginx.conf" in " ".join(s["nginx"]["volumes"])
subnet = c["networks"]["default"]["ipam"]["config"][0]["subnet"]
assert "TILL_SUBNET" in subnet, subnet
env = open(".env.example").read()
assert "TRUSTED_PROXIES=172.28.0.0/24" in env and "TILL_SUBNET=172.28.0.0/24" in env
PY
else
  note "no python3 with PyYAML: the compose file's shape is not checked"
fi

# Product images: one volume, written by every web instance at MEDIA_DIR and served by nginx at
# /media/ straight from disk with the year-long immutable cache Till itself sends.
if [ -n "$py" ]; then
  check "docker-compose.yml + nginx.conf: the media volume shared by web (MEDIA_DIR) and nginx (/media/)" \
    "$py" - docker-compose.yml nginx/nginx.conf .env.example Dockerfile <<'PY'
import re, sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
s = c["services"]
assert "media" in c["volumes"], c["volumes"]
web = s["web"].get("volumes", [])
assert "media:/var/lib/till/media" in web, web
assert "media:/srv/till/media:ro" in s["nginx"]["volumes"], s["nginx"]["volumes"]
conf = open(sys.argv[2]).read()
m = re.search(r"location /media/ \{(.*?)\n        \}", conf, re.S)
assert m, "nginx.conf has no location /media/"
body = m.group(1)
assert "alias /srv/till/media/;" in body and "try_files $uri =404;" in body, body
assert 'add_header Cache-Control "public, max-age=31536000, immutable";' in body, body
assert "proxy_pass" not in body, "media must be served from disk, not proxied"
assert """add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always;""" in body, body
assert re.search(r"location = /api/v1/products/import \{[^}]*client_max_body_size 64m;", conf), "import body limit"
assert re.search(r"location ~ \^/api/v1/products/\[\^/\]\+/images\$ \{[^}]*client_max_body_size 10m;", conf), "image body limit"
env = open(sys.argv[3]).read()
assert "MEDIA_DIR=/var/lib/till/media" in env and "MAX_IMAGE_BYTES=10485760" in env and "MAX_IMPORT_BYTES=67108864" in env
assert "install -d -o till -g till /var/lib/till/media" in open(sys.argv[4]).read()
PY
fi

if ! { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }; then
  deploy_without_engine() {
    local out
    if out=$(cd "$tmp/deploy" && ./deploy.sh up 2>&1); then
      echo "deploy.sh up succeeded without a Docker engine?"
      return 1
    fi
    printf '%s\n' "$out" | grep -Eq 'Docker engine is not reachable|docker is not installed' ||
      { printf '%s\n' "$out"; return 1; }
  }
  check "deploy.sh up explains a missing Docker engine" deploy_without_engine
fi

connection_budget() {
  local out
  if out=$(cd "$tmp/deploy" && ./deploy.sh up --scale 20 --no-build 2>&1); then
    echo "deploy.sh accepted 21 pools of 20 against max_connections 300"; return 1
  fi
  printf '%s\n' "$out" | grep -q 'over POSTGRES_MAX_CONNECTIONS=300' &&
    printf '%s\n' "$out" | grep -q 'lower DATABASE_MAX_CONNECTIONS to 13' || { printf '%s\n' "$out"; return 1; }
  # 13 web instances + the worker fit (14 × 20 + 10 = 290): refused later, if at all, for another reason.
  out=$(cd "$tmp/deploy" && ./deploy.sh up --scale 13 --no-build 2>&1) || true
  ! printf '%s\n' "$out" | grep -q 'POSTGRES_MAX_CONNECTIONS' || { printf '%s\n' "$out"; return 1; }
}
check "deploy.sh refuses a scale whose pools exceed PostgreSQL's max_connections, and says what to change" \
  connection_budget

# ------------------------------------------------------------------------------------------- monitoring
command -v promtool >/dev/null 2>&1 || till__apt_install prometheus || true
if command -v promtool >/dev/null 2>&1; then
  check "promtool check config monitoring/prometheus.yml" promtool check config monitoring/prometheus.yml
  check "promtool check rules monitoring/alerts.yml" promtool check rules monitoring/alerts.yml
  check "promtool test rules monitoring/alerts.test.yml" promtool test rules monitoring/alerts.test.yml
else
  bad "promtool could not be installed: the alert rules are not validated"
fi

# Every Till metric the rules and the dashboard read is one Till exports (a renamed metric would
# leave an alert that can never fire).
metric_names() {
  local exported used missing='' m
  exported=$(grep -ohE '"(till|http)_[a-z0-9_]+"' crates/http/src/*.rs crates/http/src/**/*.rs crates/server/src/*.rs 2>/dev/null | tr -d '"' | sort -u)
  "$py" -c 'import json,sys; json.load(open(sys.argv[1]))' monitoring/grafana/dashboards/till-overview.json ||
    { echo "dashboard JSON does not parse"; return 1; }
  used=$(grep -ohE '\b(till|http)_[a-z0-9_]+' monitoring/alerts.yml monitoring/grafana/dashboards/*.json |
    sed -E 's/_(bucket|sum|count)$//' | grep -v '^till_backup_' | sort -u)
  for m in $used; do
    printf '%s\n' "$exported" | grep -qx "$m" || missing="$missing $m"
  done
  [ -z "$missing" ] || { echo "not exported by Till:$missing"; return 1; }
  [ -n "$used" ] || { echo "no Till metric used?"; return 1; }
  grep -q 'till_backup_last_success_timestamp_seconds' backup/till-backup.sh || { echo "backup metric renamed"; return 1; }
}
if [ -n "$py" ]; then
  check "alerts and dashboard read only metrics Till exports; the dashboard JSON parses" metric_names
fi

# ------------------------------------------------------------------------------------ settings, image
settings_listed() {
  local k missing='' names
  # The settings as declared in the code: ("NAME", "default", "meaning") in the config sections.
  names=$(grep -oE '\(\s*"[A-Z][A-Z0-9_]*",\s*"' crates/app/src/config/mod.rs | grep -oE '[A-Z][A-Z0-9_]+' | sort -u)
  [ "$(printf '%s\n' "$names" | grep -c .)" -gt 30 ] || { echo "settings not found in crates/app/src/config/mod.rs"; return 1; }
  for k in $names; do
    grep -Eq "^(# )?$k=" .env.example || missing="$missing $k"
  done
  [ -z "$missing" ] || { echo ".env.example lacks:$missing"; return 1; }
}
check ".env.example names every setting Till reads" settings_listed

dockerfile_crates() {
  local d c missing=''
  for d in crates/*/; do
    c=$(basename "$d")
    grep -q "^COPY crates/$c/Cargo.toml crates/$c/Cargo.toml$" Dockerfile || missing="$missing $c(manifest)"
    if [ -f "$d/src/lib.rs" ] && [ ! -f "$d/src/main.rs" ]; then
      grep -Eq "for c in .*\\b$c\\b.*; do" Dockerfile || missing="$missing $c(stub)"
    fi
  done
  [ -z "$missing" ] || { echo "Dockerfile dependency layer lacks:$missing"; return 1; }
  grep -A2 '^HEALTHCHECK' Dockerfile | grep -q '/health/liveness' || { echo "no HEALTHCHECK on /health/liveness"; return 1; }
  grep -q '^USER ' Dockerfile || { echo "runs as root"; return 1; }
}
check "Dockerfile: dependency layer covers every crate, non-root, health check" dockerfile_crates

echo "deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
