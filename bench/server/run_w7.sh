#!/usr/bin/env bash
# W7 for scripts/bench.sh: runs bench/server/w7.sh against BUILD_DIR/server/preflightd, in memory and on
# Postgres, with every limit raised so the fixed request stays allowed, and prints one JSON object per case.
#   bench/server/run_w7.sh BUILD_DIR [--quick]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:?usage: run_w7.sh BUILD_DIR [--quick]}
DURATION=30s
[ "${2:-}" = "--quick" ] && DURATION=5s
export PREFLIGHTD="$BUILD/server/preflightd" DURATION
raise=()
for tier in "" pro. team. enterprise.; do
    for k in read_rps write_rps; do raise+=("--rate-limit-${tier//./-}${k//_/-}=1e9"); done
    for k in read_burst write_burst; do raise+=("--rate-limit-${tier//./-}${k//_/-}=1e12"); done
done
raise+=(--backstop-max=1000000000000 --admission-max-concurrent=1000000000)
export PREFLIGHTD_ARGS="${raise[*]}"

one() {
    local name=$1
    shift
    local out
    out=$("$ROOT/bench/server/w7.sh" "$@" 2>&1) || { echo "$out" >&2; return 1; }
    echo "$out" >&2
    awk -v name="$name" -v dur="$DURATION" '
        /^W7 requests\/s/ { rps=$3; match($0, /preflights [0-9]+/); pre=substr($0, RSTART+11, RLENGTH-11)+0;
                            match($0, /releases [0-9]+/); rel=substr($0, RSTART+9, RLENGTH-9)+0;
                            match($0, /non-200 [0-9]+/); bad=substr($0, RSTART+8, RLENGTH-8)+0;
                            match($0, /socket errors [0-9]+/); sock=substr($0, RSTART+14, RLENGTH-14)+0 }
        /^W7 latency/ { p50=$4; p99=$7; mx=$10 }
        /RSS before/ { before=$4 } /RSS after/ { after=$4 }
        END {
            total = pre + rel + bad
            pps = (total > 0) ? rps * pre / total : 0
            printf("{\"workload\":\"W7\",\"name\":\"%s\",\"parameters\":{\"wrk\":\"-t2 -c64 -d%s\",\"server_threads\":2,\"lease_release_per_preflight\":true},\"requests_per_s\":%s,\"ops_per_s\":%.0f,\"p50_us\":%s,\"p99_us\":%s,\"max_us\":%s,\"errors\":%d,\"rss_before_kb\":%s,\"rss_after_kb\":%s}\n",
                   name, dur, rps, pps, p50, p99, mx, bad + sock, before, after)
        }' <<<"$out"
}
one memory
one postgres --postgres
