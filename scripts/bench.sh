#!/usr/bin/env bash
# The one benchmark command: every workload of shared/BENCHMARKS.md with its exact parameters, then the report.
#
#   scripts/bench.sh [--only W1,W2,...] [--quick] [--no-setup] [--no-report] [--configure-only]
#
# 1. scripts/setup.sh --with-bench-tools (gnuplot-nox, wrk, python3); skipped with --no-setup
# 2. Release build of the benchmark executables in build/bench (never more than -j2)
# 3. a throwaway Postgres (scripts/pg.sh, its own state file; stopped on exit) for W5 and W6 (and W7 if it runs)
# 4. each workload bounded by `timeout`; its JSON objects are appended to build/bench/results.jsonl. A workload
#    whose binary is missing or that fails is recorded as {"workload":..., "not_run": "<why>"}; the run goes on.
# 5. bench/support/bench_report.py writes docs/benchmarks.md and docs/img/*.png from results.jsonl.
#
# --configure-only stops after step 2's configure (tests/scripts/fresh_copy_test.sh runs it from a fresh copy).
# --quick runs every workload with smaller counts (a smoke test; the figures are not comparable and the report
# says so). The exit status is 0 when every selected workload ran and passed its own checks, 1 otherwise (the
# report is written either way).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
. scripts/lib/help.sh
BUILD=${PREFLIGHT_BENCH_BUILD_DIR:-$ROOT/build/bench}
RESULTS=$BUILD/results.jsonl
LOGS=$BUILD/logs
ONLY="W1,W2,W3,W4,W5,W6,W7"
QUICK=0
SETUP=1
REPORT=1
CONFIGURE_ONLY=0

while [ $# -gt 0 ]; do
    case "$1" in
    --only) ONLY=${2:?--only needs a list, e.g. W3,W5}; shift 2 ;;
    --only=*) ONLY=${1#--only=}; shift ;;
    --quick) QUICK=1; shift ;;
    --no-setup) SETUP=0; shift ;;
    --no-report) REPORT=0; shift ;;
    --configure-only) CONFIGURE_ONLY=1; shift ;;
    -h | --help) script_help; exit 0 ;;
    *) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
ONLY=$(echo "$ONLY" | tr 'a-z' 'A-Z')
selected() { [[ ",$ONLY," == *",$1,"* ]]; }

START=$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log() { echo "bench.sh [$(($(date +%s) - START))s] $*" >&2; }

# --- 1. setup --------------------------------------------------------------------------------------------------
if [ "$SETUP" -eq 1 ]; then
    bash "$ROOT/scripts/setup.sh" --with-bench-tools
fi

# --- 2. build --------------------------------------------------------------------------------------------------
declare -A TARGET=([W1]=bench_gates_w1 [W2]=bench_e2e_w2 [W3]=bench_limits_w3 [W4]=bench_cache
    [W5]=bench_pg_limiter [W6]=bench_e2e_w6)
log "configuring $BUILD (Release)"
mkdir -p "$LOGS"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPREFLIGHT_BUILD_TESTS=OFF \
    -DPREFLIGHT_BUILD_BENCH=ON >"$LOGS/configure.log" 2>&1 || { cat "$LOGS/configure.log" >&2; exit 1; }
if [ "$CONFIGURE_ONLY" -eq 1 ]; then
    log "configured $BUILD (--configure-only: nothing built or run)"
    exit 0
fi
known_targets=$(cmake --build "$BUILD" --target help 2>/dev/null | sed -n 's/^\([A-Za-z0-9_]*\): .*/\1/p')
wanted=()
for w in W1 W2 W3 W4 W5 W6; do
    selected "$w" || continue
    if grep -qx "${TARGET[$w]}" <<<"$known_targets"; then wanted+=("${TARGET[$w]}"); fi
done
if selected W7 && grep -qx preflightd <<<"$known_targets"; then wanted+=(preflightd); fi
if [ ${#wanted[@]} -gt 0 ]; then
    log "building ${wanted[*]}"
    # One target failing to build must not hide the others: build them one by one.
    for t in "${wanted[@]}"; do
        cmake --build "$BUILD" -j2 --target "$t" >"$LOGS/build-$t.log" 2>&1 || log "build of $t failed (see $LOGS/build-$t.log)"
    done
fi
bin() { find "$BUILD" -type f -name "$1" -perm -u+x 2>/dev/null | head -n1; }

# --- 3. Postgres -----------------------------------------------------------------------------------------------
export PREFLIGHT_PG_STATE=/tmp/preflight-bench-pg-$(echo -n "$ROOT" | md5sum | cut -c1-12).state
PG_URL=""
cleanup() { [ -n "$PG_URL" ] && bash "$ROOT/scripts/pg.sh" stop >/dev/null 2>&1 || true; }
trap cleanup EXIT
if selected W5 || selected W6 || selected W7; then
    log "starting a throwaway Postgres"
    if PG_URL=$(bash "$ROOT/scripts/pg.sh" start); then
        export PREFLIGHT_BENCH_PG_URL=$PG_URL
    else
        PG_URL=""
        log "Postgres did not start: W5/W6 will be reported as not run"
    fi
fi

# --- 4. workloads ----------------------------------------------------------------------------------------------
: >"$RESULTS"
FAILED=0
not_run() { # workload reason
    python3 -c 'import json,sys; print(json.dumps({"workload": sys.argv[1], "name": sys.argv[1], "not_run": sys.argv[2]}))' \
        "$1" "$2" >>"$RESULTS"
}
# run_workload W limit_s cmd...: runs cmd under `timeout`, keeps its JSON lines, records a failure as not run.
run_workload() {
    local w=$1 limit=$2
    shift 2
    log "$w: $* (bounded to ${limit}s)"
    local out=$LOGS/$w.out err=$LOGS/$w.err rc=0
    timeout --kill-after=10 "$limit" "$@" >"$out" 2>"$err" || rc=$?
    grep '^{' "$out" >>"$RESULTS" || true
    if [ "$rc" -ne 0 ]; then
        FAILED=1
        local why="exit status $rc"
        [ "$rc" -eq 124 ] && why="timed out after ${limit}s"
        not_run "$w" "$why; stderr: $(tail -c 400 "$err" | tr '\n' ' ')"
        log "$w failed: $why"
    fi
}
need() { # workload binary-name: prints the path or records "not run"
    local b
    b=$(bin "$2")
    if [ -z "$b" ]; then
        not_run "$1" "binary $2 not built (see $LOGS/build-$2.log if it exists)"
        log "$1: $2 missing, not run"
        return 1
    fi
    echo "$b"
}
need_pg() {
    [ -n "$PG_URL" ] && return 0
    not_run "$1" "no Postgres (scripts/pg.sh start failed)"
    return 1
}

if [ "$QUICK" -eq 1 ]; then
    W1_ARGS=(100000) W2_ARGS=(--ops 50 --warmup 5) W3_ARGS=(--ops 100000) W4_ARGS=(--scale=0.05)
    W5_ARGS=(--ops 2000 --cap-s 2) W6_ARGS=(--ops 400 --warmup 50 --cap-s 2)
else
    W1_ARGS=() W2_ARGS=() W3_ARGS=() W4_ARGS=() W5_ARGS=() W6_ARGS=()
fi

if selected W1 && b=$(need W1 bench_gates_w1); then run_workload W1 240 "$b" "${W1_ARGS[@]}"; fi
if selected W2 && b=$(need W2 bench_e2e_w2); then run_workload W2 60 "$b" "${W2_ARGS[@]}"; fi
if selected W3 && b=$(need W3 bench_limits_w3); then run_workload W3 180 "$b" "${W3_ARGS[@]}"; fi
if selected W4 && b=$(need W4 bench_cache); then run_workload W4 180 "$b" "${W4_ARGS[@]}"; fi
if selected W5 && b=$(need W5 bench_pg_limiter) && need_pg W5; then
    # The reference used a pool of 8 connections and one client thread.
    run_workload W5 150 "$b" --url "$PG_URL" --pool 8 "${W5_ARGS[@]}"
fi
if selected W6 && b=$(need W6 bench_e2e_w6) && need_pg W6; then
    run_workload W6 150 "$b" --url "$PG_URL" "${W6_ARGS[@]}"
fi
if selected W7; then
    # Contract with bench/server/: an executable bench/server/run_w7.sh BUILD_DIR [--quick] that starts preflightd
    # (in-memory, then on $PREFLIGHT_BENCH_PG_URL), runs wrk -t2 -c64 -d30s with its Lua script and prints one
    # JSON object per case (workload "W7", name, ops_per_s, p50_us, p99_us, errors, rss_before_kb, rss_after_kb).
    if [ -x "$ROOT/bench/server/run_w7.sh" ] && command -v wrk >/dev/null; then
        q=()
        [ "$QUICK" -eq 1 ] && q=(--quick)
        run_workload W7 150 "$ROOT/bench/server/run_w7.sh" "$BUILD" "${q[@]}"
    else
        not_run W7 "bench/server/run_w7.sh (preflightd + wrk) is not in this checkout, or wrk is missing"
        log "W7: not run"
    fi
fi

bash "$ROOT/scripts/pg.sh" stop >/dev/null 2>&1 || true
PG_URL=""
DURATION=$(($(date +%s) - START))
log "workloads done in ${DURATION}s; $(wc -l <"$RESULTS") result lines in $RESULTS"

# --- 5. report -------------------------------------------------------------------------------------------------
if [ "$REPORT" -eq 1 ]; then
    META=$BUILD/meta.json
    note="2 cores shared with the Postgres server (and with anything else running); figures move between runs"
    [ "$QUICK" -eq 1 ] && note="--quick run: reduced counts, figures NOT comparable with the references; $note"
    python3 - "$META" "$DURATION" "$note" "$ONLY" "$LOAD_BEFORE" <<'PY'
import json, os, platform, subprocess, sys, time
meta_path, duration, note, only, load_before = sys.argv[1:6]
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return ""
cpu = sh("lscpu | sed -n 's/^Model name: *//p'") or platform.processor()
meta = {
    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    "machine": cpu,
    "cpus": str(os.cpu_count()),
    "kernel": platform.release(),
    "compiler": sh("c++ --version | head -n1"),
    "postgres": sh("$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | tail -n1)/postgres --version"),
    "mode": "workloads " + only,
    "load_before": load_before + " (1/5/15-minute load averages; 2 cores)",
    "load_after": sh("cut -d' ' -f1-3 /proc/loadavg"),
    "duration_s": duration + " s (build included)",
    "note": note,
}
with open(meta_path, "w") as f:
    json.dump(meta, f)
PY
    # Hand-written notes (what each figure means, caveats) are appended from bench/support/benchmarks-notes.md.
    python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); m["extra_md_file"]=sys.argv[2]; json.dump(m, open(sys.argv[1],"w"))' \
        "$META" "$ROOT/bench/support/benchmarks-notes.md"
    python3 "$ROOT/bench/support/bench_report.py" "$RESULTS" "$ROOT/docs/benchmarks.md" "$ROOT/docs/img" --meta "$META"
    log "report: docs/benchmarks.md, plots in docs/img/"
fi
exit "$FAILED"
