#!/usr/bin/env bash
# Interop suites: the fhirguard demo server with real third-party software.
#
#   browser/     fhirclient (SMART's JavaScript client) in headless Chromium,
#                against the demo and its embedded authorization server
#   authserver/  panva's oidc-provider as the demo's external authorization
#                server (JWT and opaque access tokens, revocation, key rotation)
#   gateway/     `fhirguard proxy` in front of a real FHIR engine (engine/:
#                Medplum's fhir-router, in memory): the Go suite
#                ./interop/gateway, run with FHIRGUARD_GATEWAY_SUITE=require
#                (GATEWAY_TEST_FLAGS, default -race, adds go test flags)
#
# Installs what is missing (Debian's chromium only when /usr/bin/chromium is
# absent; each npm project from its committed lockfile, without optional and
# peer dependencies, no audit, no fund), builds the demo from this work tree,
# runs the suites and cleans up every process it started. Every server
# listens on 127.0.0.1 on a port the kernel picks.
#
# Usage: bash interop/run.sh [browser|authserver|gateway ...]   (default: all three)
# Environment: CHROMIUM (default /usr/bin/chromium), INTEROP_LOG_DIR (keep
# the demo logs there), INTEROP_DEADLINE_MS (default poll deadline, 60000),
# DEMO_BIN (use this demo binary instead of building one).
set -euo pipefail
cd "$(dirname "$0")"
INTEROP=$(pwd)
ROOT=$(cd .. && pwd)

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(browser authserver gateway)

export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

work=$(mktemp -d "${TMPDIR:-/tmp}/fhirguard-interop.XXXXXX")
if [ -n "${INTEROP_LOG_DIR:-}" ]; then mkdir -p "$INTEROP_LOG_DIR"; else export INTEROP_LOG_DIR=$work; fi
pgids=()
cleanup() {
  local status=$?
  for pg in "${pgids[@]}"; do kill -TERM -- "-$pg" 2>/dev/null || true; done
  for pg in "${pgids[@]}"; do
    for _ in $(seq 1 50); do kill -0 -- "-$pg" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pg" 2>/dev/null || true
  done
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { echo "-- $*"; }
timed() { local t0=$SECONDS; "$@"; echo "   ($(( SECONDS - t0 )) s)"; }

command -v node >/dev/null || { echo "interop: node is not installed (the suites need Node.js 20 or newer)"; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || { echo "interop: node $(node --version) is too old (need 20 or newer)"; exit 1; }

needs_browser=false needs_demo=false
for s in "${suites[@]}"; do
  [ "$s" = browser ] && needs_browser=true
  [ "$s" != gateway ] && needs_demo=true
done
if $needs_browser && [ ! -x "$CHROMIUM" ]; then
  step "install Debian's chromium"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  timed bash -c "$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null"
fi

# npm ci from the committed lockfile, unless node_modules already matches it.
# The gateway suite's npm project is the engine's.
for s in "${suites[@]}"; do
  dir=$s
  [ "$s" = gateway ] && dir=engine
  [ -f "$INTEROP/$dir/package-lock.json" ] || { echo "interop: unknown suite $s"; exit 2; }
  stamp="$INTEROP/$dir/node_modules/.interop-lock"
  if ! cmp -s "$INTEROP/$dir/package-lock.json" "$stamp" 2>/dev/null; then
    step "npm ci ($dir)"
    (cd "$INTEROP/$dir" && timed npm ci --omit=optional --omit=peer --no-audit --no-fund --loglevel=error)
    cp "$INTEROP/$dir/package-lock.json" "$stamp"
  fi
done

if ! $needs_demo; then
  :
elif [ -n "${DEMO_BIN:-}" ]; then
  step "demo binary from DEMO_BIN: $DEMO_BIN"
else
  step "build the demo (./examples/chi)"
  (cd "$ROOT" && timed go build -o "$work/demo" ./examples/chi)
  export DEMO_BIN="$work/demo"
fi

# Each suite runs in its own process group (setsid), so that the trap can
# end it and everything it started (the demo, Chromium) whatever happens.
failed=0
for s in "${suites[@]}"; do
  step "suite $s"
  t0=$SECONDS
  if [ "$s" = gateway ]; then
    # shellcheck disable=SC2086 # GATEWAY_TEST_FLAGS is a list of flags
    (cd "$ROOT" && FHIRGUARD_GATEWAY_SUITE=require exec setsid go test -count=1 ${GATEWAY_TEST_FLAGS--race} ./interop/gateway) &
  else
    setsid node "$INTEROP/$s/test.js" &
  fi
  pid=$!
  pgids+=("$pid")
  rc=0
  wait "$pid" || rc=$?
  echo "   ($s: $(( SECONDS - t0 )) s, exit $rc)"
  if [ "$rc" -ne 0 ]; then
    failed=1
    if [ -s "$INTEROP_LOG_DIR/demo-$s.log" ]; then
      echo "   last lines of the demo's log:"
      tail -n 20 "$INTEROP_LOG_DIR/demo-$s.log" | sed 's/^/   | /'
    fi
  fi
done
exit "$failed"
