#!/usr/bin/env bash
# Builds the unit tests under AddressSanitizer+UndefinedBehaviorSanitizer and under ThreadSanitizer
# (separate build dirs) and runs them. Any sanitizer report fails the run (leaks included).
# With PREFLIGHT_TEST_PG_URL set (scripts/test.sh sets it), the ASan+UBSan run also builds and runs the
# integration tests against that Postgres (the server's are left out: the sanitizer builds skip the server).
#   scripts/sanitize.sh            both
#   scripts/sanitize.sh asan|tsan  one of them
#   scripts/sanitize.sh --configure-only [asan|tsan]   configure their build directories and stop
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
JOBS=${JOBS:-$(nproc)}
. scripts/lib/help.sh
CONFIGURE_ONLY=0
case "${1:-}" in
-h | --help) script_help; exit 0 ;;
--configure-only) CONFIGURE_ONLY=1; shift ;;
esac
which=${1:-all}
# Called by test.sh, the phases join its table; alone, this script prints its own (scripts/lib/phases.sh).
. scripts/lib/phases.sh
. scripts/lib/ccache.sh
trap phase_report EXIT

run_one() {
    local name=$1 flags=$2 kinds=$3 dir=$ROOT/build/$1
    phase "$name: configure + build the $kinds tests (-fsanitize=$flags)"
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
        -DPREFLIGHT_SANITIZE="$flags" -DPREFLIGHT_WERROR=ON -DPREFLIGHT_BUILD_BENCH=OFF \
        -DPREFLIGHT_BUILD_SERVER=OFF >/dev/null
    [ "$CONFIGURE_ONLY" = 1 ] && { echo "==> $name: configured $dir (--configure-only)"; phase_end; return 0; }
    local pattern=${kinds//,/\\|}
    local help
    help=$(cmake --build "$dir" --target help)
    mapfile -t targets < <(sed -n "s/^\\(\\($pattern\\)_[a-z_]*\\):.*/\\1/p" <<<"$help")
    # The example programs some tests run (examples/CMakeLists.txt).
    if grep -q '^preflight_examples:' <<<"$help"; then targets+=(preflight_examples); fi
    ccache_mark
    cmake --build "$dir" -j "$JOBS" --target "${targets[@]}"
    ccache_report "$name build"
    phase "$name: ctest -L ${kinds//,/|}"
    ctest --test-dir "$dir" -L "^(${kinds//,/|})\$" --output-on-failure -j "$JOBS"
    phase_end
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
# Leaks inside third-party libraries that the project cannot fix (each one named and explained in the file).
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/scripts/lsan.supp:print_suppressions=0}
asan_kinds=unit
[ -n "${PREFLIGHT_TEST_PG_URL:-}" ] && asan_kinds=unit,integration
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}

case "$which" in
asan) run_one asan address,undefined "$asan_kinds" ;;
tsan) run_one tsan thread unit ;;
all) run_one asan address,undefined "$asan_kinds"; run_one tsan thread unit ;;
*) echo "usage: $0 [asan|tsan|all]" >&2; exit 2 ;;
esac
