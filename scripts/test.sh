#!/usr/bin/env bash
# The test command: setup -> configure -> build -> start Postgres -> ctest (unit + integration)
# -> stop Postgres (also on failure) -> install + build the consumer project against the installed tree.
#
#   scripts/test.sh                 the whole run (what CI runs)
#   PREFLIGHT_SANITIZERS=0 scripts/test.sh   skip the sanitizer runs (CI runs them)
#   BUILD_DIR=... JOBS=...          override the build directory and the parallelism
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD_DIR=${BUILD_DIR:-$ROOT/build/test}
JOBS=${JOBS:-$(nproc)}
WERROR=${PREFLIGHT_WERROR:-ON}
step() { printf '\n==> %s\n' "$*"; }

step "setup: dependencies"
scripts/setup.sh

step "format check (.clang-format)"
scripts/format.sh --check

step "configure ($BUILD_DIR)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPREFLIGHT_WERROR="$WERROR" \
    -DCMAKE_INSTALL_PREFIX="$BUILD_DIR/install" >/dev/null

step "build"
cmake --build "$BUILD_DIR" -j "$JOBS"

step "start throwaway Postgres"
PREFLIGHT_TEST_PG_URL=$(scripts/pg.sh start)
export PREFLIGHT_TEST_PG_URL
trap 'scripts/pg.sh stop' EXIT
echo "postgres: $PREFLIGHT_TEST_PG_URL"

step "ctest: unit + integration"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS"

step "install + consumer project"
cmake --install "$BUILD_DIR" >/dev/null
cmake -S tests/consumer -B "$BUILD_DIR/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$BUILD_DIR/install" >/dev/null
cmake --build "$BUILD_DIR/consumer" -j "$JOBS"
"$BUILD_DIR/consumer/consumer"

if [ "${PREFLIGHT_SANITIZERS:-1}" != "0" ]; then
    step "tests under sanitizers (unit + integration: ASan+UBSan; unit: TSan; skip with PREFLIGHT_SANITIZERS=0)"
    scripts/sanitize.sh
fi

step "all tests passed"
