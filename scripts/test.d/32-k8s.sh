#!/usr/bin/env bash
# Kubernetes manifests (deploy/k8s): each overlay renders, validates and passes a security scan, and
# says what the `till` binary actually does.
#   render          kubectl kustomize deploy/k8s/overlays/{dev,prod}
#   validate        kubernetes-validate --strict, against Kubernetes 1.30 and 1.37 (bundled schemas)
#   checkov         on both rendered overlays and on the Dockerfile: no failed check; every suppression
#                   (checkov.io/skipN annotations, #checkov:skip comments) carries its reason
#   shape           scripts/lib/k8s_check.py: probes, drain timing, autoscaler, disruption budget,
#                   Job, security contexts, resources, Ingress, NetworkPolicies; env names against the
#                   settings in crates/app/src/config/mod.rs (secrets never in the ConfigMap)
#   runtime         scripts/lib/k8s_runtime.py: the debug `till` runs the Job's, web's and worker's args
#                   with the rendered ConfigMap: every probe path, /metrics, the Ingress's Exact paths,
#                   and the SIGTERM drain
# kubectl comes from Debian's kubernetes-client when missing (apt); kubernetes-validate and checkov from
# PyPI into a private venv ($HOME/.cache/till-services/venv-k8s-check), pinned below.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
# shellcheck source=scripts/lib/services.sh
source scripts/lib/services.sh
# shellcheck source=scripts/lib/checks.sh
source scripts/lib/checks.sh
note() { echo "note  $*"; }

KUBERNETES_VALIDATE_VERSION=1.37.0
CHECKOV_VERSION=3.3.30
K8S_VERSIONS="1.30.0 1.37.0"
OVERLAYS="dev prod"

# ---------------------------------------------------------------------------------------------- tools
command -v kubectl >/dev/null 2>&1 || till__apt_install kubernetes-client
venv="$(till__services_dir)/venv-k8s-check"
if ! "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -qxF "$KUBERNETES_VALIDATE_VERSION" ||
  ! "$venv/bin/checkov" --version 2>/dev/null | grep -qxF "$CHECKOV_VERSION"; then
  till__say "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION and checkov $CHECKOV_VERSION into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "checkov==$CHECKOV_VERSION"
fi
py="$venv/bin/python"

if [ -z "${TILL_BIN:-}" ] || [ ! -x "$TILL_BIN" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/till-target}"
  cargo build -q --bin till
  TILL_BIN="$CARGO_TARGET_DIR/debug/till"
fi
export TILL_BIN

tmp=$(mktemp -d "${TMPDIR:-/tmp}/till-k8s-test.XXXXXX")
db=''
cleanup() {
  [ -z "$db" ] || timeout 30 psql -w -X -d "$TILL_PG_URL/postgres" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# Runs scripts/lib/SCRIPT ARGS…; its `ok NAME` / `FAIL NAME: why` lines become this suite's checks.
relay() {
  local out line script=$1
  shift
  if ! out=$("$py" "scripts/lib/$script" "$@" 2>"$tmp/relay.err"); then
    bad "$script $* ran"
    tail -n 20 "$tmp/relay.err" | sed 's/^/      /'
    return 0
  fi
  sed 's/^/      /' "$tmp/relay.err"
  while IFS= read -r line; do
    case "$line" in
      "ok "*) ok "${line#ok }" ;;
      "FAIL "*) bad "${line#FAIL }" ;;
      *) echo "      $line" ;;
    esac
  done <<<"$out"
}

# --------------------------------------------------------------------------------------------- render
for o in $OVERLAYS; do
  # stderr: newer kustomize notes the fields kept for kubectl 1.20's (bases, patchesStrategicMerge…).
  check "kubectl kustomize deploy/k8s/overlays/$o" \
    bash -c "kubectl kustomize deploy/k8s/overlays/$o >'$tmp/$o.yaml' 2>'$tmp/$o.err' || { cat '$tmp/$o.err'; exit 1; }"
done

validate() {
  local v
  for v in $K8S_VERSIONS; do
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$v" "$1" || return 1
  done
  # --quiet prints only problems; make sure objects were really read.
  [ "$(grep -c '^kind:' "$1")" -ge 15 ] || { echo "only $(grep -c '^kind:' "$1") objects"; return 1; }
}
for o in $OVERLAYS; do
  check "kubernetes-validate --strict ($K8S_VERSIONS): overlays/$o" validate "$tmp/$o.yaml"
done

# -------------------------------------------------------------------------------------------- checkov
# --skip-download: no contact with the vendor's platform (guidelines, custom policies).
(cd "$tmp" && cp "$root/Dockerfile" Dockerfile &&
  "$venv/bin/checkov" --skip-download --compact -o json --framework kubernetes dockerfile \
    $(for o in $OVERLAYS; do printf -- '-f %s.yaml ' "$o"; done) -f Dockerfile >checkov.json 2>checkov.err) || true
if [ -s "$tmp/checkov.json" ]; then
  relay k8s_check.py checkov "$tmp/checkov.json"
else
  bad "checkov produced no report"
  tail -n 20 "$tmp/checkov.err" | sed 's/^/      /'
fi

# Suppressions in the sources carry their reason where they are (checkov reads them from the rendered
# annotations and from the Dockerfile's comments).
suppressions_explained() {
  local bad_lines
  bad_lines=$(grep -rhoE 'checkov\.io/skip[0-9]+: .*' deploy/k8s | grep -vE 'skip[0-9]+: "?CKV2?_[A-Z0-9_]+=.{30,}' || true)
  [ -z "$bad_lines" ] || { echo "without a reason: $bad_lines"; return 1; }
  bad_lines=$(grep -hoiE '#\s*checkov:skip=.*' Dockerfile | grep -vE 'skip=CKV2?_[A-Z0-9_]+:.{30,}' || true)
  [ -z "$bad_lines" ] || { echo "without a reason: $bad_lines"; return 1; }
}
check "every checkov suppression in deploy/k8s and the Dockerfile gives its reason" suppressions_explained

# ---------------------------------------------------------------------------------------------- shape
for o in $OVERLAYS; do
  relay k8s_check.py static "$o" "$tmp/$o.yaml"
done
relay k8s_check.py overlays "$tmp/dev.yaml" "$tmp/prod.yaml"

no_secret_values() {
  git ls-files deploy/k8s | grep -E 'till-secrets\.env$|\.secret\.env$' && { echo "a secrets file is committed"; return 1; }
  local f
  for f in deploy/k8s/till-secrets.env deploy/k8s/overlays/prod/till-secrets.env; do
    git check-ignore -q "$f" || { echo "$f is not gitignored"; return 1; }
  done
  grep -vE '^(#|$)' deploy/k8s/till-secrets.env.example | grep -vE '=(|.*CHANGE_ME.*|admin@example\.com)$' &&
    { echo "the example carries a value that is not a placeholder"; return 1; }
  return 0
}
check "no secret values in the repository: till-secrets.env is gitignored; the example has placeholders" no_secret_values

# -------------------------------------------------------------------------------------------- runtime
till_ensure_services
db="till_t_$(date +%s)_k8s$$"
if psql -w -X -d "$TILL_PG_URL/postgres" -qc "CREATE DATABASE \"$db\"" >/dev/null; then
  mkdir -p "$tmp/logs"
  K8S_CHECK_DATABASE_URL="$TILL_PG_URL/$db" K8S_CHECK_REDIS_URL="$TILL_REDIS_URL" K8S_CHECK_LOGS="$tmp/logs" \
    relay k8s_runtime.py "$tmp/prod.yaml"
  if [ "$failed" -gt 0 ]; then
    for f in "$tmp"/logs/*.log; do
      [ -f "$f" ] && { echo "      --- $(basename "$f")"; tail -n 8 "$f" | sed 's/^/      /'; }
    done
  fi
else
  bad "could not create the database for the runtime checks"
fi

echo "k8s: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
