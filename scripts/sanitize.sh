#!/usr/bin/env bash
# Builds the unit tests under AddressSanitizer+UndefinedBehaviorSanitizer and under ThreadSanitizer
# (separate build dirs) and runs them. Any sanitizer report fails the run.
#   scripts/sanitize.sh            both
#   scripts/sanitize.sh asan|tsan  one of them
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
JOBS=${JOBS:-$(nproc)}
which=${1:-all}

run_one() {
    local name=$1 flags=$2 dir=$ROOT/build/$1
    echo "==> $name: configure + build unit tests (-fsanitize=$flags)"
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
        -DPREFLIGHT_SANITIZE="$flags" -DPREFLIGHT_WERROR=ON -DPREFLIGHT_BUILD_BENCH=OFF \
        -DPREFLIGHT_BUILD_SERVER=OFF >/dev/null
    mapfile -t targets < <(cmake --build "$dir" --target help | sed -n 's/^\(unit_[a-z_]*\):.*/\1/p')
    cmake --build "$dir" -j "$JOBS" --target "${targets[@]}"
    echo "==> $name: ctest -L unit"
    ctest --test-dir "$dir" -L unit --output-on-failure -j "$JOBS"
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}

case "$which" in
asan) run_one asan address,undefined ;;
tsan) run_one tsan thread ;;
all) run_one asan address,undefined; run_one tsan thread ;;
*) echo "usage: $0 [asan|tsan|all]" >&2; exit 2 ;;
esac
