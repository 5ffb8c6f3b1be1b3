#!/usr/bin/env bash
# Runs every script of scripts/ the way a new user would: from a fresh copy of this checkout (its tracked and new
# files, no build/ folder, in another folder), each one's --help, and --configure-only for each one that builds
# (bench, demo, faults, soak, sanitize; fuzz when clang-14 is installed). A script that assumes a folder an earlier
# run left behind fails here. Cheap: nothing is compiled. Run by scripts/test.sh; exit status 0 when all pass.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TMP=$(mktemp -d -t preflight-fresh.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
COPY=$TMP/preflight
mkdir -p "$COPY"
(cd "$ROOT" && git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    tar --null -T - -cf -) | tar -C "$COPY" -xf -
[ ! -e "$COPY/build" ] || { echo "fresh_copy_test: the copy has a build/ folder" >&2; exit 1; }

# The scripts' own state (Postgres state files, phase tables) must not leak in from the caller.
unset PREFLIGHT_PHASES PREFLIGHT_PG_STATE BUILD_DIR PREFLIGHTD RELIAB_LOAD RELIAB_BILLING_HANG
fail=0
check() { # check NAME CMD...: runs CMD in the copy, keeps its output, reports PASS/FAIL
    local name=$1 log
    shift
    log=$TMP/$(echo "$name" | tr -c 'A-Za-z0-9' '_').log
    if (cd "$COPY" && "$@") >"$log" 2>&1; then
        echo "PASS $name"
    else
        echo "FAIL $name (exit $?):"
        tail -n 20 "$log" | sed 's/^/    /'
        fail=1
    fi
}
for s in "$COPY"/scripts/*.sh; do
    check "$(basename "$s") --help" bash -c "out=\$(bash '$s' --help) && [ -n \"\$out\" ]"
done
check "bench.sh --configure-only" bash scripts/bench.sh --no-setup --configure-only
check "demo.sh --configure-only" bash scripts/demo.sh --configure-only
check "faults.sh --configure-only" bash scripts/faults.sh --configure-only
check "soak.sh --configure-only" bash scripts/soak.sh --configure-only
check "sanitize.sh --configure-only" bash scripts/sanitize.sh --configure-only
if command -v clang++-14 >/dev/null; then
    check "fuzz.sh --configure-only" bash scripts/fuzz.sh --configure-only
else
    echo "SKIP fuzz.sh --configure-only (clang++-14 not installed: scripts/setup.sh --with-fuzz-tools)"
fi
exit $fail
