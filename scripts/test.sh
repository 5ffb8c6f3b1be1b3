#!/usr/bin/env bash
# The test command: setup -> configure -> build -> start Postgres -> ctest (unit, then integration)
# -> install + build the consumer project against the installed tree -> the scripts from a fresh copy
# -> the sanitizer builds and runs (scripts/sanitize.sh) -> a table of every phase's wall time.
# Postgres is stopped on exit, also on failure; the table is printed then too.
#
#   scripts/test.sh                 the whole run (what CI runs)
#   PREFLIGHT_SANITIZERS=0 scripts/test.sh   skip the sanitizer runs (CI runs them)
#   BUILD_DIR=... JOBS=...          override the build directory and the parallelism
#   PREFLIGHT_CCACHE=OFF            compile without the compiler cache (docs/development.md)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
. scripts/lib/help.sh
case "${1:-}" in
-h | --help) script_help; exit 0 ;;
"") ;;
*) echo "test.sh: no arguments (--help)" >&2; exit 2 ;;
esac
BUILD_DIR=${BUILD_DIR:-$ROOT/build/test}
JOBS=${JOBS:-$(nproc)}
WERROR=${PREFLIGHT_WERROR:-ON}
unset PREFLIGHT_PHASES  # this run's own table
. scripts/lib/phases.sh
. scripts/lib/ccache.sh

PG_STARTED=0
finish() {
    local rc=$?
    [ "$PG_STARTED" = 1 ] && scripts/pg.sh stop
    phase_report
    [ "$rc" -eq 0 ] || echo "test.sh: FAILED (exit status $rc)" >&2
}
trap finish EXIT

phase "setup: dependencies"
scripts/setup.sh

phase "format check (.clang-format)"
scripts/format.sh --check

phase "configure ($BUILD_DIR)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPREFLIGHT_WERROR="$WERROR" \
    -DCMAKE_INSTALL_PREFIX="$BUILD_DIR/install" >/dev/null

phase "build (-Werror, RelWithDebInfo)"
ccache_mark
cmake --build "$BUILD_DIR" -j "$JOBS"
ccache_report "-Werror build"

phase "start throwaway Postgres"
PREFLIGHT_TEST_PG_URL=$(scripts/pg.sh start)
PG_STARTED=1
export PREFLIGHT_TEST_PG_URL
echo "postgres: $PREFLIGHT_TEST_PG_URL"

phase "ctest: unit"
ctest --test-dir "$BUILD_DIR" -L '^unit$' --output-on-failure -j "$JOBS"

phase "ctest: integration"
ctest --test-dir "$BUILD_DIR" -L '^integration$' --output-on-failure -j "$JOBS"

phase "install + consumer project"
cmake --install "$BUILD_DIR" >/dev/null
cmake -S tests/consumer -B "$BUILD_DIR/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$BUILD_DIR/install" >/dev/null
cmake --build "$BUILD_DIR/consumer" -j "$JOBS"
"$BUILD_DIR/consumer/consumer"

phase "scripts from a fresh copy (--help, --configure-only)"
tests/scripts/fresh_copy_test.sh

if [ "${PREFLIGHT_SANITIZERS:-1}" != "0" ]; then
    # sanitize.sh records its own phases (build and run of each sanitizer) in this run's table.
    phase_end
    scripts/sanitize.sh
fi

echo
echo "test.sh: all tests passed"
