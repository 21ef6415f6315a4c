#!/usr/bin/env bash
# The restore drill, against the real PostgreSQL: backup/till-backup.sh (the compose `backup` service and
# `deploy.sh backup|restore|verify` run the same script) on a database migrated and seeded by `till`.
#   dump      files mode 600; the manifest's row counts are the database's
#   verify    restores into a scratch database, equal to the manifest, ledger balanced; scratch dropped
#             and it FAILS on a tampered manifest and on a broken stock ledger
#   restore   replaces the database (safety dump first), `till migrate` is a no-op after; a file that
#             is not a dump changes nothing
#   retention dumps older than BACKUP_KEEP_DAYS go, the newest always stays
# Databases it makes (till_drill_*, till_verify_*) are dropped at the end. pg_dump/psql come from
# postgresql-client (installed with apt when missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=scripts/lib/services.sh
source scripts/lib/services.sh

# shellcheck source=scripts/lib/checks.sh
source scripts/lib/checks.sh

if [ -z "${TILL_BIN:-}" ] || [ ! -x "$TILL_BIN" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/till-target}"
  cargo build -q --bin till
  TILL_BIN="$CARGO_TARGET_DIR/debug/till"
fi
till_ensure_services
command -v pg_dump >/dev/null 2>&1 && command -v psql >/dev/null 2>&1 || till__apt_install postgresql-client

server=${TILL_PG_URL%/}
db="till_drill_$$"
url="$server/$db"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/till-backup-test.XXXXXX")
cleanup() {
  psql -X -q -d "$server/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

backup() { DATABASE_URL="$url" BACKUP_DIR="$tmp/backups" backup/till-backup.sh "$@"; }
sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$url" -c "$1"; }

psql -X -q -d "$server/postgres" -c "CREATE DATABASE $db" >/dev/null
DATABASE_URL="$url" APP_ENV=development "$TILL_BIN" migrate >/dev/null
DATABASE_URL="$url" APP_ENV=development "$TILL_BIN" seed --demo >/dev/null
DATABASE_URL="$url" APP_ENV=development "$TILL_BIN" seed --products 300 >/dev/null

good=''
dump_checks() {
  good=$(backup dump) || return 1
  [ "$(stat -c %a "$good")" = 600 ] && [ "$(stat -c %a "$good.counts")" = 600 ] ||
    { echo "modes: $(stat -c '%n %a' "$good" "$good.counts")"; return 1; }
  local t want got
  for t in products inventory_movements users categories _sqlx_migrations; do
    want=$(sql "SELECT count(*) FROM $t")
    got=$(sed -n "s/^$t //p" "$good.counts")
    [ "$want" = "$got" ] || { echo "$t: manifest says '$got', database has $want"; return 1; }
  done
  [ "$(sql 'SELECT count(*) FROM products')" -ge 300 ] || { echo "the seed made too few products"; return 1; }
}
check "dump: files mode 600; manifest row counts are the database's" dump_checks
good=$(backup newest)

verify_good() {
  local out
  out=$(backup verify "$good" 2>&1) || { printf '%s\n' "$out"; return 1; }
  printf '%s\n' "$out" | grep -q '^ok   row counts' && printf '%s\n' "$out" | grep -q '^ok   stock ledger balances' ||
    { printf '%s\n' "$out"; return 1; }
  # The default is the newest dump in the directory.
  backup verify >/dev/null 2>&1
}
check "verify: the restored copy equals the manifest and its stock ledger balances" verify_good

verify_tampered() {
  mkdir -p "$tmp/tampered"
  cp "$good" "$tmp/tampered/till-20000101T000000Z.dump"
  sed 's/^products \([0-9]*\)$/products 999999/' "$good.counts" >"$tmp/tampered/till-20000101T000000Z.dump.counts"
  local out
  if out=$(backup verify "$tmp/tampered/till-20000101T000000Z.dump" 2>&1); then
    echo "verify passed with a manifest claiming 999999 products"; return 1
  fi
  printf '%s\n' "$out" | grep -q 'FAIL row counts' || { printf '%s\n' "$out"; return 1; }
}
check "verify fails when the restored rows differ from the manifest" verify_tampered

broken=''
verify_broken_ledger() {
  # stock_on_hand moved without a movement: the ledger no longer explains the stock.
  sql "UPDATE products SET stock_on_hand = stock_on_hand + 7
       WHERE id = (SELECT id FROM products WHERE track_stock ORDER BY sku LIMIT 1)"
  sleep 1  # a distinct file name (one dump per second)
  broken=$(backup dump) || return 1
  local out
  if out=$(backup verify "$broken" 2>&1); then
    echo "verify passed a dump whose stock ledger does not balance"; return 1
  fi
  printf '%s\n' "$out" | grep -q 'FAIL stock ledger: 1 of' || { printf '%s\n' "$out"; return 1; }
}
check "verify fails when a product's stock is not the sum of its movements" verify_broken_ledger

restore_checks() {
  sql "CREATE TABLE not_in_backup (x int)"
  backup restore "$good" --yes >/dev/null 2>&1 || { backup restore "$good" --yes; return 1; }
  [ -z "$(sql "SELECT to_regclass('not_in_backup')")" ] || { echo "a table made after the backup survived"; return 1; }
  psql -X -q -At -d "$url" -c "$(sed -n '/^COUNTS_SQL="/,/ORDER BY 1"/p' backup/till-backup.sh |
    sed '1s/^COUNTS_SQL="//; $s/"$//')" | sort >"$tmp/after"
  sort "$good.counts" | cmp -s - "$tmp/after" || { diff <(sort "$good.counts") "$tmp/after"; return 1; }
  ls "$tmp/backups/pre-restore/"till-*.dump >/dev/null 2>&1 || { echo "no safety dump"; return 1; }
  DATABASE_URL="$url" APP_ENV=development "$TILL_BIN" migrate >/dev/null
}
check "restore: the database is the backup again (later table gone), safety dump taken, migrate ok" restore_checks

restore_garbage() {
  echo "not a dump" >"$tmp/garbage.dump"
  local before
  before=$(sql "SELECT count(*) FROM products")
  if backup restore "$tmp/garbage.dump" --yes >/dev/null 2>&1; then
    echo "restored a file that is not a dump"; return 1
  fi
  [ "$(sql "SELECT count(*) FROM products")" = "$before" ] || { echo "the database changed"; return 1; }
}
check "restore of a file that is not a dump changes nothing" restore_garbage

retention() {
  local d=$tmp/retention f
  mkdir -p "$d"
  for f in till-20200101T000000Z till-20200102T000000Z; do
    cp "$good" "$d/$f.dump" && cp "$good.counts" "$d/$f.dump.counts"
    touch -d '20 days ago' "$d/$f.dump" "$d/$f.dump.counts"
  done
  DATABASE_URL="$url" BACKUP_DIR="$d" BACKUP_KEEP_DAYS=14 backup/till-backup.sh dump >/dev/null 2>&1
  [ "$(find "$d" -maxdepth 1 -name 'till-*.dump' | wc -l)" = 1 ] || { ls -l "$d"; return 1; }
  [ ! -e "$d/till-20200101T000000Z.dump.counts" ] || { echo "a manifest of a deleted dump stayed"; return 1; }
  # When every dump is old, the newest still stays.
  touch -d '30 days ago' "$d"/till-*
  DATABASE_URL="$url" BACKUP_DIR="$d" BACKUP_KEEP_DAYS=14 bash -c 'source <(sed -n "/^newest() {/,/^}/p; /^prune() {/,/^}/p" backup/till-backup.sh); say() { :; }; KEEP_DAYS=14; prune "$BACKUP_DIR"'
  [ "$(find "$d" -maxdepth 1 -name 'till-*.dump' | wc -l)" = 1 ] || { echo "the newest old dump was deleted"; return 1; }
}
check "retention: dumps older than BACKUP_KEEP_DAYS deleted, the newest always kept" retention

no_scratch_left() {
  local left
  left=$(psql -X -q -At -d "$server/postgres" -c "SELECT string_agg(datname, ' ') FROM pg_database WHERE datname LIKE 'till\_verify\_%'")
  [ -z "$left" ] || { echo "left behind: $left"; return 1; }
}
check "verify drops its scratch databases" no_scratch_left

echo "backup: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
