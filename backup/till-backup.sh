#!/usr/bin/env bash
# Till's PostgreSQL backups: consistent dumps with a manifest, retention, restore, and a restore drill.
#
#   till-backup.sh dump [DIR]             one dump, DIR/till-<UTC time>.dump (pg_dump -Fc), and beside it
#                                         .counts: every table's row count and the stock totals, taken in
#                                         the same snapshot as the dump. Files are mode 600. Then deletes
#                                         dumps older than BACKUP_KEEP_DAYS (never the newest).
#   till-backup.sh schedule [DIR]         dump every day at BACKUP_TIME (UTC), and at start when the newest
#                                         dump is over a day old: the compose `backup` service runs this
#   till-backup.sh restore FILE [--yes]   replace the database with FILE in one transaction (the schema is
#                                         dropped and re-created, so nothing of the old data survives);
#                                         a safety dump of the current database is taken first
#   till-backup.sh verify [FILE|DIR]      the restore drill: restore FILE (default: the newest dump in DIR)
#                                         into a scratch database, compare its row counts and stock totals
#                                         with the manifest, check the stock ledger (every tracked product's
#                                         stock_on_hand equals the sum of its inventory_movements), then drop
#                                         the scratch database. Exit status 0 only when everything matches.
#   till-backup.sh newest [DIR]           print the newest dump's path
#
# Environment:
#   BACKUP_DATABASE_URL  PostgreSQL URL (libpq syntax: sslmode=require etc. are honoured); default DATABASE_URL
#   BACKUP_DIR           default /backups
#   BACKUP_KEEP_DAYS     retention in days (default 14)
#   BACKUP_TIME          daily dump time, HH:MM in UTC (default 02:30)
#   BACKUP_METRICS_FILE  when set, `schedule` writes the last success time there in Prometheus text format
#                        (for node-exporter's textfile collector; the BackupTooOld alert reads it)
# Needs bash, pg_dump, pg_restore and psql of the server's major version or newer (the postgres image).
set -euo pipefail

die() { printf 'till-backup: %s\n' "$*" >&2; exit 1; }
say() { printf 'till-backup: %s\n' "$*" >&2; }

URL=${BACKUP_DATABASE_URL:-${DATABASE_URL:-}}
DIR=${BACKUP_DIR:-/backups}
KEEP_DAYS=${BACKUP_KEEP_DAYS:-14}
[[ "$KEEP_DAYS" =~ ^[0-9]+$ ]] && [ "$KEEP_DAYS" -ge 1 ] || die "BACKUP_KEEP_DAYS must be a whole number of days >= 1"

need_url() { [ -n "$URL" ] || die "set BACKUP_DATABASE_URL or DATABASE_URL"; }

# URL with its database name replaced by $2 (query parameters kept).
url_with_db() {
  local url=$1 name=$2 base params=''
  base=${url%%\?*}
  [ "$base" = "$url" ] || params="?${url#*\?}"
  printf '%s/%s%s' "${base%/*}" "$name" "$params"
}

psql_q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# Every table's row count, by name, then the stock totals: one query, so one snapshot.
COUNTS_SQL="SELECT c.relname || ' ' || (xpath('/row/n/text()',
    query_to_xml(format('SELECT count(*) AS n FROM public.%I', c.relname), false, true, '')))[1]::text
  FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
  UNION ALL SELECT 'stock_on_hand_total ' || COALESCE(sum(stock_on_hand), 0) FROM products
  UNION ALL SELECT 'movement_delta_total ' || COALESCE(sum(delta), 0) FROM inventory_movements
  ORDER BY 1"

# Tracked products whose stock_on_hand is not the sum of their movements.
LEDGER_SQL="SELECT count(*) FROM products p
  LEFT JOIN (SELECT product_id, sum(delta) AS s FROM inventory_movements GROUP BY product_id) m
    ON m.product_id = p.id
  WHERE p.track_stock AND p.stock_on_hand <> COALESCE(m.s, 0)"

newest() {
  local dir=${1:-$DIR} f
  f=$(find "$dir" -maxdepth 1 -type f -name 'till-*.dump' -printf '%f\n' 2>/dev/null | sort | tail -n 1)
  [ -n "$f" ] || return 1
  printf '%s/%s\n' "$dir" "$f"
}

cmd_dump() {
  need_url
  local dir=${1:-$DIR} stamp f snap line
  mkdir -p "$dir"
  umask 077
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  f="$dir/till-$stamp.dump"
  # One snapshot for the dump and its manifest: this session exports it and stays in its
  # transaction until both are taken, so the counts describe exactly what the dump holds.
  coproc SNAP { psql_q -d "$URL"; }
  printf '%s\n' "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_export_snapshot();" >&"${SNAP[1]}"
  read -r -t 30 snap <&"${SNAP[0]}" || die "could not open a snapshot on the database"
  [[ "$snap" =~ ^[0-9A-F-]+$ ]] || die "could not open a snapshot: $snap"
  if ! pg_dump --snapshot="$snap" --format=custom --no-owner --no-privileges -d "$URL" -f "$f.partial"; then
    rm -f "$f.partial"
    die "pg_dump failed"
  fi
  printf '%s;\n\\echo __till_end__\n' "$COUNTS_SQL" >&"${SNAP[1]}"
  : >"$f.counts.partial"
  while read -r -t 300 line <&"${SNAP[0]}"; do
    [ "$line" = __till_end__ ] && break
    printf '%s\n' "$line" >>"$f.counts.partial"
  done
  printf 'COMMIT;\n' >&"${SNAP[1]}"
  exec {SNAP[1]}>&-
  wait "$SNAP_PID" || true
  grep -q '^products ' "$f.counts.partial" || { rm -f "$f.partial" "$f.counts.partial"; die "could not count rows"; }
  chmod 600 "$f.partial" "$f.counts.partial"
  mv "$f.counts.partial" "$f.counts"
  mv "$f.partial" "$f"
  say "wrote $f ($(du -h "$f" | cut -f1), $(grep -vc '_total ' "$f.counts") tables)"
  prune "$dir"
  printf '%s\n' "$f"
}

# Deletes dumps (and manifests) older than KEEP_DAYS, always keeping the newest.
prune() {
  local dir=$1 keep old
  keep=$(newest "$dir") || return 0
  while IFS= read -r old; do
    [ "$old" = "$keep" ] && continue
    rm -f "$old" "$old.counts"
    say "deleted $old (older than $KEEP_DAYS days)"
  done < <(find "$dir" -maxdepth 1 -type f -name 'till-*.dump' -mmin "+$((KEEP_DAYS * 1440))" | sort)
}

write_metric() {
  [ -n "${BACKUP_METRICS_FILE:-}" ] || return 0
  {
    echo "# HELP till_backup_last_success_timestamp_seconds When the last scheduled dump finished."
    echo "# TYPE till_backup_last_success_timestamp_seconds gauge"
    echo "till_backup_last_success_timestamp_seconds $(date -u +%s)"
  } >"$BACKUP_METRICS_FILE.tmp" && mv "$BACKUP_METRICS_FILE.tmp" "$BACKUP_METRICS_FILE"
}

cmd_schedule() {
  local dir=${1:-$DIR} at=${BACKUP_TIME:-02:30} now next last
  [[ "$at" =~ ^([01][0-9]|2[0-3]):[0-5][0-9]$ ]] || die "BACKUP_TIME must be HH:MM (UTC), not $at"
  trap 'say "stopping"; exit 0' TERM INT
  say "daily dumps at $at UTC into $dir, kept $KEEP_DAYS days"
  last=$(newest "$dir" 2>/dev/null) || last=''
  if [ -z "$last" ] || [ -n "$(find "$last" -mmin +1440)" ]; then
    cmd_dump "$dir" >/dev/null && write_metric || say "dump failed; next try at $at"
  fi
  while true; do
    now=$(date -u +%s)
    next=$(date -u -d "today $at" +%s)
    [ "$next" -gt "$now" ] || next=$(date -u -d "tomorrow $at" +%s)
    sleep $((next - now)) &
    wait $! || true
    cmd_dump "$dir" >/dev/null && write_metric || say "dump failed; next try tomorrow at $at"
  done
}

cmd_restore() {
  need_url
  local file='' yes=0 safety
  while [ $# -gt 0 ]; do
    case "$1" in
      --yes | -y) yes=1 ;;
      -*) die "restore: unknown option $1" ;;
      *) [ -z "$file" ] || die "restore takes one FILE"; file=$1 ;;
    esac
    shift
  done
  [ -n "$file" ] || die "usage: till-backup.sh restore FILE [--yes]"
  [ -f "$file" ] || die "no such file: $file"
  pg_restore --list "$file" >/dev/null || die "$file is not a pg_dump custom-format archive"
  [ "$yes" = 1 ] || die "restore replaces the whole database: pass --yes"
  safety=$(cmd_dump "$DIR/pre-restore") || die "the safety dump failed; nothing was restored"
  say "safety dump of the current database: $safety"
  # Drop and re-create the schema and load the dump in ONE transaction: either the database is
  # exactly the backup, or (on any error) it is untouched.
  pg_restore --no-owner --no-privileges -f - "$file" |
    psql_q -d "$URL" --single-transaction \
      -c 'SET client_min_messages TO warning' -c 'DROP SCHEMA IF EXISTS public CASCADE' \
      -c 'CREATE SCHEMA public' -f - >/dev/null ||
    die "restore failed; the database is unchanged (safety dump: $safety)"
  say "restored $file"
}

# Compares two count listings; prints the differences.
compare_counts() {
  diff <(sort "$1") <(sort "$2") | sed -n 's/^</  backup:   /p; s/^>/  restored: /p'
}

cmd_verify() {
  need_url
  local arg=${1:-$DIR} file scratch scratch_url bad=0 mismatches products
  if [ -d "$arg" ]; then
    file=$(newest "$arg") || die "no dump in $arg"
  else
    file=$arg
  fi
  [ -f "$file" ] || die "no such file: $file"
  scratch="till_verify_$(date -u +%Y%m%d%H%M%S)_$$"
  scratch_url=$(url_with_db "$URL" "$scratch")
  psql_q -d "$URL" -c "CREATE DATABASE $scratch" || die "cannot create the scratch database $scratch"
  # shellcheck disable=SC2064
  trap "psql_q -d '$URL' -c 'DROP DATABASE IF EXISTS $scratch WITH (FORCE)' >/dev/null 2>&1 || true" EXIT
  say "restoring $file into $scratch"
  pg_restore --no-owner --no-privileges --exit-on-error -d "$scratch_url" "$file" ||
    die "the dump does not restore"
  psql_q -d "$scratch_url" -c "$COUNTS_SQL" >"$file.verify.tmp"
  if [ -f "$file.counts" ]; then
    if ! cmp -s <(sort "$file.counts") <(sort "$file.verify.tmp"); then
      echo "FAIL row counts or stock totals differ from the backup's manifest:"
      compare_counts "$file.counts" "$file.verify.tmp"
      bad=1
    else
      echo "ok   row counts and stock totals equal the manifest ($(grep -vc '_total ' "$file.counts") tables)"
    fi
  else
    echo "FAIL no manifest $file.counts: row counts cannot be compared"
    bad=1
  fi
  rm -f "$file.verify.tmp"
  mismatches=$(psql_q -d "$scratch_url" -c "$LEDGER_SQL")
  products=$(psql_q -d "$scratch_url" -c "SELECT count(*) FROM products WHERE track_stock")
  if [ "$mismatches" = 0 ]; then
    echo "ok   stock ledger balances: $products tracked products, stock_on_hand = sum of movements"
  else
    echo "FAIL stock ledger: $mismatches of $products tracked products have stock_on_hand <> sum of movements"
    bad=1
  fi
  [ "$bad" = 0 ] || die "verification of $file failed"
  say "verified $file"
}

case "${1:-}" in
  dump) shift; cmd_dump "$@" ;;
  schedule) shift; cmd_schedule "$@" ;;
  restore) shift; cmd_restore "$@" ;;
  verify) shift; cmd_verify "$@" ;;
  newest) shift; newest "$@" || die "no dump in ${1:-$DIR}" ;;
  -h | --help | help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" ;;
  *) die "usage: till-backup.sh dump|schedule|restore|verify|newest (try --help)" ;;
esac
