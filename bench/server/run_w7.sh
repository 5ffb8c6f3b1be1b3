#!/usr/bin/env bash
# W7 for scripts/bench.sh: runs bench/server/w7.sh against BUILD_DIR/server/preflightd, with every limit raised so
# the fixed request stays allowed, and prints one JSON object per case:
#   memory            execute + release of its lease, in memory (the target's figure: preflights/s)
#   memory_read_only  a fixed allowed `read` preflight (ban + read-class rate limit; holds no admission slot, so
#                     nothing to release): every request is a preflight (docs/server.md, "W7")
#   postgres          execute + release on the Postgres stores
#   bench/server/run_w7.sh BUILD_DIR [--quick]        Env: THREADS (server io threads, 2)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:?usage: run_w7.sh BUILD_DIR [--quick]}
DURATION=30s
[ "${2:-}" = "--quick" ] && DURATION=5s
THREADS=${THREADS:-2}
export PREFLIGHTD="$BUILD/server/preflightd" DURATION THREADS
raise=()
for tier in "" pro. team. enterprise.; do
    for k in read_rps write_rps; do raise+=("--rate-limit-${tier//./-}${k//_/-}=1e9"); done
    for k in read_burst write_burst; do raise+=("--rate-limit-${tier//./-}${k//_/-}=1e12"); done
done
# And the monthly usage quota of the paid plans: usage is recorded on release, so a long run would otherwise reach the
# pro plan's 100,000 requests and measure 402s. Raised, not 0 (= unlimited), which would skip the usage read.
for plan in pro team; do raise+=("--usage-limits-$plan=1000000000000"); done
raise+=(--backstop-max=1000000000000 --admission-max-concurrent=1000000000)
export PREFLIGHTD_ARGS="${raise[*]}"

one() {
    local name=$1
    shift
    local out
    out=$("$ROOT/bench/server/w7.sh" "$@" 2>&1) || { echo "$out" >&2; return 1; }
    echo "$out" >&2
    awk -v name="$name" -v dur="$DURATION" -v threads="$THREADS" -v rel="${W7_RELEASE:-1}" '
        /^W7 requests\/s/ { rps=$3; match($0, /preflights [0-9]+/); pre=substr($0, RSTART+11, RLENGTH-11)+0;
                            match($0, /releases [0-9]+/); rel=substr($0, RSTART+9, RLENGTH-9)+0;
                            match($0, /non-200 [0-9]+/); bad=substr($0, RSTART+8, RLENGTH-8)+0;
                            match($0, /socket errors [0-9]+/); sock=substr($0, RSTART+14, RLENGTH-14)+0 }
        /^W7 latency/ { p50=$4; p99=$7; mx=$10 }
        /RSS before/ { before=$4 } /RSS after/ { after=$4 }
        /^w7: server CPU/ { cpu=$4 }
        END {
            total = pre + rel + bad
            pps = (total > 0) ? rps * pre / total : 0
            printf("{\"workload\":\"W7\",\"name\":\"%s\",\"parameters\":{\"wrk\":\"-t2 -c64 -d%s\",\"server_threads\":%d,\"lease_release_per_preflight\":%s},\"requests_per_s\":%s,\"ops_per_s\":%.0f,\"p50_us\":%s,\"p99_us\":%s,\"max_us\":%s,\"errors\":%d,\"rss_before_kb\":%s,\"rss_after_kb\":%s,\"server_cpu_us_per_request\":%s}\n",
                   name, dur, threads, (rel == "0" ? "false" : "true"), rps, pps, p50, p99, mx, bad + sock, before, after,
                   (cpu == "" ? "null" : cpu))
        }' <<<"$out"
}
one memory
W7_RELEASE=0 W7_OPERATION=read one memory_read_only
one postgres --postgres
