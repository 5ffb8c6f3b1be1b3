#!/usr/bin/env bash
# Soak: N minutes of mixed traffic against preflightd with in-memory stores (examples/data.json), most of it
# for users and orgs never seen before (a flood of distinct keys) plus the hot tenants. Every 10 s it samples
# preflightd's RSS and the key counts /metrics exposes (leases held, lease registry entries, open connections,
# request counters), then checks that they stay bounded and draws the curve.
#
#   scripts/soak.sh                 10 minutes (writes docs/img/soak.png and prints a Markdown table)
#   scripts/soak.sh --minutes 3     any length
#   scripts/soak.sh --smoke         1 minute (no boundedness verdict on RSS: too short to plateau)
#   scripts/soak.sh --configure-only  configure the drivers' build and stop (nothing built or run)
#
# Env: RATE (total requests/s, default 1500), CONNECTIONS (8), FRESH (% of requests for a new user/org, 60),
# PNG (where to write the plot, default docs/img/soak.png; "" = none), OUT (work directory, default a temp dir),
# and those of tools/reliability/common.sh (PREFLIGHTD, RELIAB_LOAD, BUILD_DIR, JOBS).
# Verdict (not in --smoke): RSS over the second half of the run at most 1.25 x the peak of the first half + 16 MiB;
# leases held and registry entries never above the configured bound. Exit status 0 on PASS.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
. "$ROOT/tools/reliability/common.sh"
. scripts/lib/help.sh

MINUTES=10
SMOKE=0
while [ $# -gt 0 ]; do
    case "$1" in
    --minutes) MINUTES=$2; shift 2 ;;
    --smoke) MINUTES=1; SMOKE=1; shift ;;
    --configure-only) reliab_build configure; exit 0 ;;
    -h|--help) script_help; exit 0 ;;
    *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
RATE=${RATE:-1500}
CONNECTIONS=${CONNECTIONS:-8}
FRESH=${FRESH:-60}
PNG=${PNG-$ROOT/docs/img/soak.png}
MAX_LEASES=20000
LEASE_TTL_MS=30000

reliab_build
OUT=${OUT:-$(mktemp -d -t preflight-soak.XXXXXX)}
mkdir -p "$OUT"
PID_soak="" LOAD_PID=""
cleanup() {
    [ -n "$LOAD_PID" ] && kill "$LOAD_PID" 2>/dev/null || true
    stop_pid "$PID_soak"
}
trap cleanup EXIT

PORT=$(free_port)
# 10% of granted leases are never released: they stay held until the lease ttl (30 s) expires them.
start_preflightd soak "$PORT" --data examples/data.json --threads 2 --server-lease-ttl-ms "$LEASE_TTL_MS" \
    --admission-lease-ttl-ms "$LEASE_TTL_MS" --server-max-leases "$MAX_LEASES"
PID=$PID_soak
SECS=$((MINUTES * 60))
echo "==> soak: ${MINUTES} min, ${RATE} req/s over ${CONNECTIONS} connections, ${FRESH}% new users/orgs (pid $PID, port $PORT)"
"$RELIAB_LOAD" --port "$PORT" --seconds "$SECS" --connections "$CONNECTIONS" --rate "$RATE" --fresh "$FRESH" \
    --read 20 --release 90 --report-ms 10000 >"$OUT/load.log" 2>&1 &
LOAD_PID=$!

samples=$OUT/samples.tsv
printf 't_s\trss_mib\tleases_held\tregistry_entries\topen_connections\trequests_total\trate_limit_keys\twindow_keys\tadmission_keys\n' \
    >"$samples"
start=$(date +%s)
while kill -0 "$LOAD_PID" 2>/dev/null; do
    now=$(($(date +%s) - start))
    rss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status")
    m=$(curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics")
    get() { echo "$m" | awk -v n="$1" '$1 == n { print $2; exit }'; }
    # Key counts of the embedded stores: preflight_rate_limit_keys, preflight_fixed_window_keys and
    # preflight_admission_keys (empty when preflightd does not export them).
    printf '%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$now" "$(echo "$rss_kb / 1024" | bc -l)" \
        "$(get preflight_leases_held)" "$(get preflight_lease_registry_entries)" \
        "$(get preflight_http_open_connections)" "$(get preflight_api_preflight_requests_total)" \
        "$(get preflight_rate_limit_keys)" "$(get preflight_fixed_window_keys)" "$(get preflight_admission_keys)" \
        >>"$samples"
    sleep 10
done
wait "$LOAD_PID" || true
LOAD_PID=""
summary=$(grep '^SUMMARY' "$OUT/load.log" || true)
echo "driver: $summary"
grep '^REASON' "$OUT/load.log" | sort -t= -k2 -nr | head -n 12 || true

echo
echo "| t (s) | RSS (MiB) | leases held | registry entries | open conns | requests | rate-limit keys | window keys | admission keys |"
echo "|------:|----------:|------------:|-----------------:|-----------:|---------:|----------------:|------------:|---------------:|"
tail -n +2 "$samples" | awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }'

if [ -n "$PNG" ] && command -v gnuplot >/dev/null; then
    mkdir -p "$(dirname "$PNG")"
    gnuplot <<GP
set terminal png size 900,450
set output "$PNG"
set title "preflightd soak: ${MINUTES} min, ${RATE} req/s, ${FRESH}% new users/orgs"
set xlabel "time (s)"
set ylabel "RSS (MiB)"
set y2label "leases held / registry entries"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set key bottom right
set datafile separator "\t"
plot "$samples" using 1:2 skip 1 with linespoints title "RSS (MiB)" axes x1y1, \
     "$samples" using 1:3 skip 1 with lines title "leases held" axes x1y2, \
     "$samples" using 1:4 skip 1 with lines title "registry entries" axes x1y2
GP
    echo "plot: $PNG"
fi

fail=0
s500=$(field "$summary" s500)
errs=$(field "$summary" transport_errors)
if [ "${s500:-1}" != 0 ] || [ "${errs:-1}" != 0 ]; then
    echo "FAIL: ${s500:-?} answers 500, ${errs:-?} transport errors"
    fail=1
fi
over=$(tail -n +2 "$samples" | awk -F'\t' -v m="$MAX_LEASES" '$3 > m || $4 > m' | wc -l)
if [ "$over" != 0 ]; then
    echo "FAIL: $over samples with more leases than the bound $MAX_LEASES"
    fail=1
fi
if [ "$SMOKE" = 0 ]; then
    half=$((SECS / 2))
    verdict=$(tail -n +2 "$samples" | awk -F'\t' -v h="$half" '
        $1 <= h && $2 > p1 { p1 = $2 }
        $1 > h && $2 > p2 { p2 = $2 }
        END { lim = 1.25 * p1 + 16; printf "%s first-half peak %.1f MiB, second-half peak %.1f MiB (limit %.1f)", (p2 <= lim ? "ok" : "over"), p1, p2, lim }')
    echo "RSS: $verdict"
    case "$verdict" in ok*) ;; *) fail=1 ;; esac
fi
echo "samples: $samples"
if [ "$fail" = 0 ]; then echo "PASS soak (${MINUTES} min)"; else echo "FAIL soak (${MINUTES} min)"; fi
exit "$fail"
