#!/usr/bin/env bash
# Fault injection against the throwaway Postgres under load (loopback only, bounded: about 3 minutes).
# Drives preflightd --postgres with concurrent traffic from tools/reliability/reliab_load and injects:
#   a1  Postgres killed (kill -9 of the postmaster) and restarted mid-run, default fail policies:
#       fail-closed gates (ban, usage, member_cap) answer 503, nothing else does, no 500; the pool recovers
#       without restarting preflightd; leases: rows in preflight_leases = leases the driver kept = /metrics.
#   a2  the same with ban/usage/member_cap set fail-open: during the outage the limiters fail open (200 or the
#       local fallback's 429), no 503, no 500.
#   b   slow statements: a session holds ACCESS EXCLUSIVE locks on the hot tables for 4 s: every decision
#       within its gate budget (300 ms) + slack, no 500.
#   c   a holder of leases killed with SIGKILL: a second preflightd on the same database sees the slots taken,
#       and they return once the lease ttl has passed.
#   d   the billing source hangs (accepts, never answers): decisions fail open within the balance budget.
#
#   scripts/faults.sh            all of them
#   scripts/faults.sh a1 c       some
#   scripts/faults.sh --configure-only   configure the drivers' build and stop (nothing built or run)
#
# Env: RATE (requests/s during a1/a2/b, default 600), SLACK_MS (latency slack over the budget, 250), those of
# tools/reliability/common.sh (PREFLIGHTD, RELIAB_LOAD, RELIAB_BILLING_HANG, BUILD_DIR, JOBS), OUT (work dir).
# Prints one PASS/FAIL line with figures per fault; exit status 0 when all pass.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
. "$ROOT/tools/reliability/common.sh"
. scripts/lib/help.sh

case "${1:-}" in
-h | --help) script_help; exit 0 ;;
--configure-only) reliab_build configure; exit 0 ;;
esac
faults=("$@")
for f in "${faults[@]}"; do
    case "$f" in a1 | a2 | b | c | d) ;; *) echo "faults.sh: unknown fault $f (a1 a2 b c d; --help)" >&2; exit 2 ;; esac
done
[ ${#faults[@]} -eq 0 ] && faults=(a1 a2 b c d)
RATE=${RATE:-600}
SLACK_MS=${SLACK_MS:-250}
BUDGET_MS=300
LEASE_TTL_MS=8000

reliab_build
OUT=${OUT:-$(mktemp -d -t preflight-faults.XXXXXX)}
mkdir -p "$OUT"
export PREFLIGHT_PG_STATE=$OUT/pg.state  # a cluster of our own, never another run's
PGBIN=$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
PG_URL=""
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
    [ -n "$PG_URL" ] && scripts/pg.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

pg_start() { PG_URL=$(scripts/pg.sh start); }
pg_state() { . "$PREFLIGHT_PG_STATE"; }  # PGTMP, PORT
as_pg() { (cd "$PGTMP" && if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi); }
psql_q() { psql "$PG_URL" -XAtq -c "$1"; }
postmaster_pid() { head -n1 "$PGTMP/data/postmaster.pid"; }
# Restarts the killed cluster on its data directory and port (pg.sh start would make a new, empty one).
pg_restart() {
    for _ in $(seq 100); do
        if as_pg "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -o "-p $PORT" -w -t 30 start >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1  # the killed postmaster's backends may still hold the shared memory for a moment
    done
    echo "could not restart Postgres:" >&2
    tail -n 20 "$PGTMP/server.log" >&2
    return 1
}

BUDGETS=(--ban-budget-ms $BUDGET_MS --usage-budget-ms $BUDGET_MS --member-cap-budget-ms $BUDGET_MS
    --backstop-budget-ms $BUDGET_MS --rate-limit-budget-ms $BUDGET_MS --admission-budget-ms $BUDGET_MS
    --balance-budget-ms $BUDGET_MS)
# Generous limits so that denials come from faults, not from the traffic itself.
LIMITS=(--rate-limit-write-rps 100000 --rate-limit-write-burst 100000 --rate-limit-read-rps 100000
    --rate-limit-read-burst 100000 --rate-limit-pro-write-rps 100000 --rate-limit-pro-write-burst 100000
    --rate-limit-pro-read-rps 100000 --rate-limit-pro-read-burst 100000 --backstop-max 100000000
    --admission-max-concurrent 1000 --usage-limits-free 0 --usage-limits-pro 0)

RESULTS=()
record() {  # record PASS|FAIL name figures...
    local verdict=$1 name=$2
    shift 2
    RESULTS+=("$verdict $name: $*")
    echo "$verdict $name: $*"
}

# Runs the load for SECS while a fault is injected by FN at AT s (FN runs in the foreground of a subshell).
# Sets LOAD_LOG.
run_load() {  # run_load NAME PORT SECS ARGS...
    local name=$1 port=$2 secs=$3
    shift 3
    LOAD_LOG=$OUT/load_$name.log
    "$RELIAB_LOAD" --port "$port" --seconds "$secs" --connections 8 --rate "$RATE" --fresh 50 --read 20 \
        --release 100 --report-ms 1000 "$@" >"$LOAD_LOG" 2>&1 &
    LOAD_PID=$!
}

# Fault a1/a2: kill -9 of the postmaster at 8 s, restart at 14 s, load for 30 s.
fault_a() {
    local name=$1 open=$2
    local extra=()
    [ "$open" = 1 ] && extra=(--ban-fail-open --usage-fail-open --member-cap-fail-open)
    pg_start
    pg_state
    local port
    port=$(free_port)
    start_preflightd "$name" "$port" --postgres "$PG_URL" --data examples/data.json --threads 2 \
        --server-lease-ttl-ms 600000 --admission-lease-ttl-ms 600000 "${BUDGETS[@]}" "${LIMITS[@]}" "${extra[@]}"
    local pid_var="PID_$name"
    local pid=${!pid_var}
    PIDS+=("$pid")
    run_load "$name" "$port" 30 --hold-every 50 --held-file "$OUT/held_$name.txt"
    sleep 8
    local pm
    pm=$(postmaster_pid)
    kill -9 "$pm"
    local killed_at=$SECONDS
    sleep 6
    pg_restart
    local restarted_at=$SECONDS
    wait "$LOAD_PID"
    local summary
    summary=$(grep '^SUMMARY' "$LOAD_LOG")
    # Outage = intervals from the kill (t=9) to the restart (t=14); recovery = first interval after the restart
    # with no 503 and some 200.
    local t_restart=$((restarted_at - killed_at + 8))
    local outage recovered
    outage=$(awk -v a=9 -v b="$t_restart" '/^INTERVAL/ {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            if (v["t"] + 0 >= a && v["t"] + 0 <= b) { r += v["requests"]; s200 += v["s200"]; s429 += v["s429"]; s503 += v["s503"]; s500 += v["s500"] }
        } END { printf "requests=%d s200=%d s429=%d s503=%d s500=%d", r, s200, s429, s503, s500 }' "$LOAD_LOG")
    recovered=$(awk -v b="$t_restart" '/^INTERVAL/ {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            if (v["t"] + 0 > b && v["s503"] == 0 && v["s200"] > 0) { printf "%.0f", v["t"] - b; exit }
        }' "$LOAD_LOG")
    # Leases: the ids the driver kept vs the live rows of preflight_leases vs the server's registry. A kept lease
    # missing from the table is lost; a row nobody holds is an orphan (a reservation whose answer was lost to the
    # kill or came after the gate's budget): it holds its slot until the lease ttl. At most one per driver
    # connection can be in flight when Postgres dies.
    local kept rows held lost orphans
    kept=$(field "$summary" held)
    tr -d '-' <"$OUT/held_$name.txt" | sort >"$OUT/held_$name.sorted"
    psql_q "SELECT replace(lease_id::text, '-', '') FROM preflight_leases WHERE expires_at > clock_timestamp()" |
        sort >"$OUT/rows_$name.sorted"
    rows=$(wc -l <"$OUT/rows_$name.sorted")
    lost=$(comm -23 "$OUT/held_$name.sorted" "$OUT/rows_$name.sorted" | wc -l)
    orphans=$(comm -13 "$OUT/held_$name.sorted" "$OUT/rows_$name.sorted" | wc -l)
    held=$(metric "$port" preflight_leases_held)
    local connects fail_open
    connects=$(metric "$port" preflight_pg_connects_total)
    fail_open=$(curl -s --max-time 5 "http://127.0.0.1:$port/metrics" |
        sed -n 's/^preflight_gate_fail_open_total{gate="\([a-z_]*\)"} \([0-9]*\)$/\1=\2/p' | tr '\n' ' ')
    # Which refusals are allowed: a1 (fail-closed facts): 503 only from ban, usage, member_cap. a2 (fail-open
    # facts): 503 only from usage for execute (a failed subscription lookup is always a 503, docs/gates.md), never
    # for a read (ban, member_cap and the limiters fail open).
    local allowed_503='^REASON 503 (ban|usage|member_cap) '
    [ "$open" = 1 ] && allowed_503='^REASON 503 usage gate_unavailable execute '
    local bad_503 read_503
    bad_503=$({ grep '^REASON 503' "$LOAD_LOG" || true; } | { grep -v -E "$allowed_503" || true; } |
        awk -F'count=' '{ s += $2 } END { print s + 0 }')
    read_503=$({ grep -E '^REASON 503 .* read ' "$LOAD_LOG" || true; } | awk -F'count=' '{ s += $2 } END { print s + 0 }')
    local s500 errs pending out_503 out_200
    s500=$(field "$summary" s500)
    errs=$(field "$summary" transport_errors)
    pending=$(field "$summary" pending_releases)
    out_503=$(field "$outage" s503)
    out_200=$(field "$outage" s200)
    local ok=1
    [ "$s500" = 0 ] && [ "$errs" = 0 ] && [ "$bad_503" = 0 ] && [ "$pending" = 0 ] || ok=0
    [ -n "$recovered" ] || ok=0
    [ "$lost" = 0 ] && [ "$held" = "$kept" ] && [ "$orphans" -le 8 ] || ok=0
    [ "${out_503:-0}" -gt 0 ] || ok=0
    if [ "$open" = 1 ]; then [ "$read_503" = 0 ] && [ "${out_200:-0}" -gt 0 ] || ok=0; fi
    { grep '^REASON' "$LOAD_LOG" || true; } | sed "s/^/    $name /"
    record "$([ $ok = 1 ] && echo PASS || echo FAIL)" "$name (postgres kill -9 + restart, fail-$([ "$open" = 1 ] && echo open || echo closed) facts)" \
        "outage t=9..${t_restart} s: $outage; recovered ${recovered:-never} s after the restart (pool connects $connects," \
        "no preflightd restart); 503 outside the policy: $bad_503, 503 for reads: $read_503; whole run:" \
        "$(field "$summary" requests) requests, s500=$s500, transport_errors=$errs, leases granted=$(field "$summary" granted)" \
        "released=$(field "$summary" released) (release retries $(field "$summary" release_retries), pending $pending);" \
        "kept=$kept: lost=$lost, /metrics leases_held=$held, live rows=$rows (orphans $orphans, returned at the ttl);" \
        "gate fail-open counts: ${fail_open% }"
    stop_pid "$pid"
    scripts/pg.sh stop >/dev/null
    PG_URL=""
}

# Fault b: ACCESS EXCLUSIVE locks on the hot tables from 4 s to 8 s, load for 14 s.
fault_b() {
    pg_start
    local port
    port=$(free_port)
    start_preflightd b "$port" --postgres "$PG_URL" --data examples/data.json --threads 2 "${BUDGETS[@]}" "${LIMITS[@]}"
    PIDS+=("$PID_b")
    run_load b "$port" 14
    sleep 4
    psql "$PG_URL" -Xq -c "BEGIN; LOCK TABLE preflight_leases, preflight_rate_limits, preflight_windows,
        preflight_usage, preflight_bans IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(4); COMMIT;" >/dev/null
    wait "$LOAD_PID"
    local summary max during
    summary=$(grep '^SUMMARY' "$LOAD_LOG")
    max=$(field "$summary" max_ms)
    during=$(awk '/^INTERVAL/ {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            if (v["t"] + 0 >= 5 && v["t"] + 0 <= 8) { r += v["requests"]; s200 += v["s200"]; s503 += v["s503"]; if (v["max_ms"] > m) m = v["max_ms"] }
        } END { printf "requests=%d s200=%d s503=%d max_ms=%.0f", r, s200, s503, m }' "$LOAD_LOG")
    local ok=1
    [ "$(field "$summary" s500)" = 0 ] && [ "$(field "$summary" transport_errors)" = 0 ] || ok=0
    awk -v m="$max" -v l=$((BUDGET_MS + SLACK_MS)) 'BEGIN { exit !(m <= l) }' || ok=0
    { grep '^REASON' "$LOAD_LOG" || true; } | sed 's/^/    b /'
    record "$([ $ok = 1 ] && echo PASS || echo FAIL)" "b (tables locked 4 s, budgets ${BUDGET_MS} ms)" \
        "while locked: $during; whole run: $(field "$summary" requests) requests, p50=$(field "$summary" p50_ms) ms" \
        "p99=$(field "$summary" p99_ms) ms max=$max ms (limit $((BUDGET_MS + SLACK_MS)) ms), s500=$(field "$summary" s500)"
    stop_pid "$PID_b"
    scripts/pg.sh stop >/dev/null
    PG_URL=""
}

# Fault c: preflightd A takes all 5 slots of one org and is killed with SIGKILL; B must see them taken until the
# lease ttl (8 s) has passed, then get a slot.
fault_c() {
    pg_start
    local pa pb
    pa=$(free_port)
    pb=$(free_port)
    local common=(--postgres "$PG_URL" --data examples/data.json --threads 2 --admission-max-concurrent 5
        --admission-lease-ttl-ms $LEASE_TTL_MS --server-lease-ttl-ms $LEASE_TTL_MS "${BUDGETS[@]}")
    start_preflightd ca "$pa" "${common[@]}"
    PIDS+=("$PID_ca")
    start_preflightd cb "$pb" "${common[@]}"
    PIDS+=("$PID_cb")
    local body='{"operation":"execute","subject":{"user":"user_alice","org":"org_acme"}}'
    local granted=0
    for _ in 1 2 3 4 5; do
        code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$pa/v1/preflight" -d "$body")
        [ "$code" = 200 ] && granted=$((granted + 1))
    done
    local t0
    t0=$(date +%s.%N)
    kill -9 "$PID_ca"
    wait "$PID_ca" 2>/dev/null || true
    local rows_after_kill first code returned="" denied=0
    rows_after_kill=$(psql_q "SELECT count(*) FROM preflight_leases WHERE expires_at > clock_timestamp()")
    first=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$pb/v1/preflight" -d "$body")
    for _ in $(seq 80); do
        code=$(curl -s -o "$OUT/c_last.json" -w '%{http_code}' -X POST "http://127.0.0.1:$pb/v1/preflight" -d "$body")
        if [ "$code" = 200 ]; then
            returned=$(echo "$(date +%s.%N) - $t0" | bc -l)
            break
        fi
        denied=$((denied + 1))
        sleep 0.25
    done
    local ok=1
    [ "$granted" = 5 ] && [ "$rows_after_kill" = 5 ] && [ "$first" = 429 ] && [ -n "$returned" ] || ok=0
    # The slots must come back after the ttl (not before: that would lose the holder's leases) and promptly.
    [ -n "$returned" ] && awk -v r="$returned" -v t=$LEASE_TTL_MS 'BEGIN { exit !(r * 1000 >= t - 1000 && r * 1000 <= t + 3000) }' || ok=0
    record "$([ $ok = 1 ] && echo PASS || echo FAIL)" "c (holder of 5 leases killed with SIGKILL, lease ttl ${LEASE_TTL_MS} ms)" \
        "granted by A=$granted, rows after the kill=$rows_after_kill, B's first answer=$first," \
        "B denied $denied times, then a slot after $(printf '%.2f' "${returned:-0}") s"
    stop_pid "$PID_cb"
    scripts/pg.sh stop >/dev/null
    PG_URL=""
}

fault_d() {
    local out
    if out=$("$RELIAB_BILLING_HANG" --data examples/data.json --budget-ms 200 --slack-ms "$SLACK_MS" 2>&1); then
        record PASS "d (billing source hangs, balance budget 200 ms)" "$(echo "$out" | head -n1)"
    else
        echo "$out" >&2
        record FAIL "d (billing source hangs, balance budget 200 ms)" "$(echo "$out" | head -n1)"
    fi
}

for f in "${faults[@]}"; do
    echo "==> fault $f"
    case "$f" in
    a1) fault_a a1 0 ;;
    a2) fault_a a2 1 ;;
    b) fault_b ;;
    c) fault_c ;;
    d) fault_d ;;
    *) echo "faults.sh: unknown fault $f (a1 a2 b c d)" >&2; exit 2 ;;
    esac
done
echo
echo "==> summary (machine shared with other builds; logs in $OUT)"
fail=0
for r in "${RESULTS[@]}"; do
    echo "$r"
    case "$r" in FAIL*) fail=1 ;; esac
done
exit $fail
