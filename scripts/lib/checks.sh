# Shared by the check suites in scripts/test.d/: count and print named checks.
#   ok NAME / bad NAME      record a pass or a failure
#   check NAME CMD…         run CMD; on failure show the end of its output
# Each suite ends by comparing $failed with 0.
# shellcheck shell=bash

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok    $*"; }
bad() { failed=$((failed + 1)); echo "FAIL  $*"; }
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    ok "$name"
  else
    bad "$name"
    printf '%s\n' "$out" | tail -n 20 | sed 's/^/      /'
  fi
}
