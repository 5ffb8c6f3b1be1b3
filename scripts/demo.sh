#!/usr/bin/env bash
# The demo (the README's run command): installs what is missing, builds preflightd (Release, build/demo),
# starts the throwaway Postgres (migrated by preflightd, sample tenants from examples/data.json loaded into it),
# starts preflightd, plays a scenario with curl and prints each decision on one line, then stops everything.
#
#   scripts/demo.sh              with Postgres (scripts/pg.sh)
#   scripts/demo.sh --embedded   the embedded default: in-memory stores, no Postgres
#   scripts/demo.sh --configure-only   configure preflightd's build and stop (nothing built or run)
#
# Env: BUILD_DIR (build/demo), PORT (18090; the second preflightd of the "billing provider down" step uses PORT+1),
# JOBS (2); PREFLIGHTD (a prebuilt binary: skips the build), PREFLIGHTD_ARGS (extra flags), BILLING_DOWN_URL (the
# HTTP billing provider that is down: http://127.0.0.1:9/v1/balance/, nothing listens there).
# Exit status 0 when every decision was as expected.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
. scripts/lib/help.sh
MODE=postgres
CONFIGURE_ONLY=0
case "${1:-}" in
    --embedded) MODE=embedded ;;
    --configure-only) CONFIGURE_ONLY=1 ;;
    -h | --help) script_help; exit 0 ;;
    "") ;;
    *) echo "usage: scripts/demo.sh [--embedded | --configure-only | --help]" >&2; exit 2 ;;
esac
BUILD_DIR=${BUILD_DIR:-$ROOT/build/demo}
PORT=${PORT:-18090}
URL="http://127.0.0.1:$PORT"
API=$URL  # the preflightd that post/release_last talk to
step() { printf '\n==> %s\n' "$*"; }

step "setup: dependencies"
scripts/setup.sh
missing=()
for tool in curl jq; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ] && [ "$CONFIGURE_ONLY" = 0 ]; then
    echo "demo: installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends --no-upgrade "${missing[@]}" >/dev/null
fi

BIN=${PREFLIGHTD:-}
if [ -z "$BIN" ]; then
    step "build preflightd (Release, $BUILD_DIR)"
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPREFLIGHT_BUILD_TESTS=OFF \
        -DPREFLIGHT_BUILD_BENCH=OFF >/dev/null
    [ "$CONFIGURE_ONLY" = 1 ] && { echo "demo: configured $BUILD_DIR (--configure-only)"; exit 0; }
    cmake --build "$BUILD_DIR" -j "${JOBS:-2}" --target preflightd
    BIN=$BUILD_DIR/server/preflightd
fi

TMP=$(mktemp -d -t preflight-demo.XXXXXX)
PID="" PID2="" PG=0
cleanup() {
    for p in "$PID2" "$PID"; do
        if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p"
            wait "$p" || true
        fi
    done
    if [ "$PG" = 1 ]; then scripts/pg.sh stop >/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

BASE_ARGS=(--config examples/preflightd.json)
# shellcheck disable=SC2206
BASE_ARGS+=(${PREFLIGHTD_ARGS:-})
if [ "$MODE" = postgres ]; then
    step "start the throwaway Postgres"
    PG_URL=$(scripts/pg.sh start)
    PG=1
    echo "postgres: $PG_URL"
    BASE_ARGS+=(--postgres "$PG_URL")
fi
ARGS=("${BASE_ARGS[@]}" --port "$PORT")

step "start preflightd ($MODE): ${ARGS[*]}"
"$BIN" "${ARGS[@]}" >"$TMP/out" 2>"$TMP/err" &
PID=$!
for _ in $(seq 100); do
    grep -q listening "$TMP/out" 2>/dev/null && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
done
if ! grep -q listening "$TMP/out"; then
    echo "demo: preflightd did not start:" >&2
    cat "$TMP/err" >&2
    exit 1
fi
cat "$TMP/out"
curl -fsS "$URL/healthz" >/dev/null && echo "healthz: ok"

failures=0
LAST_BODY="" LAST_CODE=""
# post OPERATION USER ORG: POST /v1/preflight; sets LAST_CODE, LAST_BODY and $TMP/headers.
post() {
    local body
    body=$(jq -cn --arg op "$1" --arg user "$2" --arg org "$3" '{operation: $op, subject: {user: $user, org: $org}}')
    LAST_CODE=$(curl -sS -D "$TMP/headers" -o "$TMP/body" -w '%{http_code}' -X POST "$API/v1/preflight" \
        -H 'Content-Type: application/json' -d "$body")
    LAST_BODY=$(cat "$TMP/body")
}
header() { tr -d '\r' <"$TMP/headers" | awk -v h="$(echo "$1" | tr 'A-Z' 'a-z')" -F': ' 'tolower($1) == h {print $2}'; }
release_last() {
    local id
    id=$(jq -r '.lease_id // empty' <<<"$LAST_BODY")
    if [ -n "$id" ]; then curl -sS -o /dev/null -X POST "$API/v1/leases/$id/release"; fi
}
# show LABEL EXPECTED_STATUS: one compact line for the last decision.
show() {
    local summary retry
    summary=$(jq -r '
        (if .allowed then "allow lease=\(.lease_id // "-" | .[0:12])"
         else "deny code=\(.error.code) gate=\(.error.gate)" end)
        + ([(.trace // .decision.trace // [])[] | select(.fail_open) | .gate] as $fo
           | if ($fo | length) > 0 then " fail_open=\($fo | join(","))" else "" end)
        + ([(.trace // .decision.trace // [])[] | select(.outcome == "skipped")] | length as $s
           | if $s > 0 then " skipped=\($s)" else "" end)' <<<"$LAST_BODY")
    retry=$(header Retry-After)
    [ -n "$retry" ] && summary+=" retry-after=${retry}s"
    [ -n "$(header RateLimit)" ] && summary+=" ratelimit=[$(header RateLimit)]"
    local mark="ok"
    if [ "$LAST_CODE" != "$2" ]; then mark="UNEXPECTED (wanted $2)"; failures=$((failures + 1)); fi
    printf '%-44s %s %s  %s\n' "$1" "$LAST_CODE" "$summary" "$mark"
}

step "scenario"
post execute user_alice org_acme
show "allowed: alice@acme executes" 200
release_last

post execute user_banned org_acme
show "banned: user_banned executes" 403

post execute user_carol org_capped
show "over usage: carol@capped (cap 100, used 150)" 402

post execute user_dave org_nobilling
show "billing: org without a billing account" 200
release_last

# The billing provider down: a second preflightd (same stores, same configuration) whose balance gate asks an
# HTTP billing provider (server.balance_url, memoized per URL and API key) that does not answer. The balance gate
# fails open (within balance.budget_ms / server.balance_timeout_ms) and says so in the trace.
DOWN_URL=${BILLING_DOWN_URL:-http://127.0.0.1:9/v1/balance/}
API2="http://127.0.0.1:$((PORT + 1))"
"$BIN" "${BASE_ARGS[@]}" --port "$((PORT + 1))" --balance-url "$DOWN_URL" --server-balance-api-key demo_secret_key \
    --server-balance-timeout-ms 500 >"$TMP/out2" 2>"$TMP/err2" &
PID2=$!
for _ in $(seq 100); do
    grep -q listening "$TMP/out2" 2>/dev/null && break
    kill -0 "$PID2" 2>/dev/null || break
    sleep 0.1
done
if grep -q listening "$TMP/out2"; then
    API=$API2
    post execute user_alice org_acme
    echo "    (a second preflightd on port $((PORT + 1)), balance source: HTTP provider $DOWN_URL, not answering)"
    show "billing provider down: alice@acme" 200
    if ! jq -e '[.trace[] | select(.gate == "balance" and .fail_open)] | length > 0' <<<"$LAST_BODY" >/dev/null; then
        echo "    UNEXPECTED: the balance gate did not report fail_open"
        failures=$((failures + 1))
    fi
    release_last
    if curl -sS "$API2/v1/config" | grep -q demo_secret_key; then
        echo "    UNEXPECTED: /v1/config shows the billing API key"
        failures=$((failures + 1))
    fi
    API=$URL
    kill -TERM "$PID2"
    rc2=0
    wait "$PID2" || rc2=$?
    PID2=""
    [ "$rc2" = 0 ] || { echo "    UNEXPECTED: the second preflightd exited with $rc2"; failures=$((failures + 1)); }
else
    echo "demo: the second preflightd did not start:" >&2
    cat "$TMP/err2" >&2
    failures=$((failures + 1))
fi

allowed=0
for _ in $(seq 60); do
    post execute user_bob org_acme
    [ "$LAST_CODE" = 200 ] || break
    allowed=$((allowed + 1))
    release_last
done
show "burst: bob@acme after $allowed allowed" 429

post cancel user_bob org_acme
show "cancel: bob@acme, write bucket empty" 200
release_last

post resume user_banned org_acme
show "resume: user_banned (never gated)" 200

step "metrics"
curl -sS "$URL/metrics" | grep -E '^preflight_(decisions_total|gate_fail_open_total\{[^}]*\} [1-9]|leases_held)' || true

step "stop (SIGTERM drains, exit 0)"
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
PID=""
echo "preflightd exited with $rc"
[ "$rc" = 0 ] || failures=$((failures + 1))

if [ "$failures" -gt 0 ]; then
    echo "demo: $failures unexpected result(s)" >&2
    exit 1
fi
echo "demo: every decision as expected"
