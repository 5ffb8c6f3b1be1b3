#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with Debian's clang-14 (-fsanitize=fuzzer,address,undefined) and runs
# each for a set time, growing its corpus in fuzz/corpus/<target>/. A crash stops the run with the input saved
# as build/fuzz/findings/<target>/crash-*; replay it with build/fuzz/fuzz_<target> <file>.
#   scripts/fuzz.sh                       every target, 60 s each
#   scripts/fuzz.sh --seconds 300 http    one target, 5 minutes
#   scripts/fuzz.sh --configure-only      configure build/fuzz and stop (nothing built or run)
# Needs clang-14 and libclang-rt-14-dev: scripts/setup.sh --with-fuzz-tools.
# -fno-sanitize=function: clang 14 cannot emit that check for coroutine frames ("Cannot represent a difference
# across sections"); every other UBSan check is on.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
. scripts/lib/help.sh
SECONDS_EACH=60
CONFIGURE_ONLY=0
JOBS=${JOBS:-2}
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) SECONDS_EACH=$2; shift 2 ;;
    --seconds=*) SECONDS_EACH=${1#--seconds=}; shift ;;
    --configure-only) CONFIGURE_ONLY=1; shift ;;
    -h|--help) script_help; exit 0 ;;
    *) targets+=("$1"); shift ;;
    esac
done
[ ${#targets[@]} -eq 0 ] && targets=(config fact_data decision http)

command -v clang++-14 >/dev/null || { echo "fuzz.sh: clang++-14 missing; run scripts/setup.sh --with-fuzz-tools" >&2; exit 2; }

BUILD=$ROOT/build/fuzz
echo "==> configure + build fuzz targets in $BUILD (clang-14, -fsanitize=fuzzer,address,undefined)"
CXX=clang++-14 cmake -S fuzz -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=function -fno-sanitize-recover=all -fno-omit-frame-pointer" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
[ "$CONFIGURE_ONLY" = 1 ] && { echo "fuzz.sh: configured $BUILD (--configure-only)"; exit 0; }
cmake --build "$BUILD" -j "$JOBS" --target "${targets[@]/#/fuzz_}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
    corpus=$ROOT/fuzz/corpus/$t
    findings=$BUILD/findings/$t
    mkdir -p "$corpus" "$findings"
    before=$(find "$corpus" -type f | wc -l)
    echo "==> fuzz_$t for ${SECONDS_EACH}s (corpus: $before files)"
    log=$BUILD/fuzz_$t.log
    # The extra directory receives new inputs; merged into the checked-in corpus afterwards, minimised.
    new=$BUILD/new_$t
    rm -rf "$new" && mkdir -p "$new"
    if ! "$BUILD/fuzz_$t" "$new" "$corpus" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -max_len=8192 -print_final_stats=1 -artifact_prefix="$findings/" >"$log" 2>&1; then
        echo "!! fuzz_$t found a problem; see $log and $findings/" >&2
        tail -n 40 "$log" >&2
        status=1
        continue
    fi
    # Merge: keep only inputs that add coverage to the checked-in corpus.
    "$BUILD/fuzz_$t" -merge=1 "$corpus" "$new" >"$BUILD/merge_$t.log" 2>&1
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    after=$(find "$corpus" -type f | wc -l)
    echo "    fuzz_$t: ${execs:-?} inputs tried, corpus $before -> $after files, no findings"
done
exit $status
