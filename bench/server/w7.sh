#!/usr/bin/env bash
# W7: wrk -t2 -c64 -d30s against POST /v1/preflight on loopback; prints requests/s, p50/p99, errors and the
# server's RSS before and after the run.
#
#   bench/server/w7.sh               in-memory stores (the embedded default, examples/data.json)
#   bench/server/w7.sh --postgres    against the throwaway Postgres (scripts/pg.sh), data loaded into it
#
# Env: PREFLIGHTD (binary; default build/rel/server/preflightd, else the stand-in
#      build/rel/bench/server/preflightd_standin), PREFLIGHTD_ARGS (extra flags, e.g. limits raised so the fixed
#      request stays allowed), DURATION (30s), CONNECTIONS (64), THREADS (server io threads, 2: an io_context
#      each, connections round robin over them; 1 caps the server at one core), PORT (18080),
#      W7_RELEASE=0 (do not release leases), W7_USER / W7_ORG / W7_OPERATION (see w7.lua).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
command -v wrk >/dev/null || { echo "w7: wrk is missing: scripts/setup.sh --with-bench-tools" >&2; exit 1; }
BIN=${PREFLIGHTD:-}
if [ -z "$BIN" ]; then
    if [ -x build/rel/server/preflightd ]; then BIN=build/rel/server/preflightd
    else BIN=build/rel/bench/server/preflightd_standin; fi
fi
[ -x "$BIN" ] || { echo "w7: $BIN not built (cmake -S . -B build/rel -G Ninja -DCMAKE_BUILD_TYPE=Release)" >&2; exit 1; }
PORT=${PORT:-18080}
ARGS=(--port "$PORT" --threads "${THREADS:-2}" --data examples/data.json)
PID="" PG=0
cleanup() {
    if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null && wait "$PID" || true; fi
    if [ "$PG" = 1 ]; then scripts/pg.sh stop >/dev/null || true; fi
}
trap cleanup EXIT
if [ "${1:-}" = "--postgres" ]; then
    PG_URL=$(scripts/pg.sh start)
    PG=1
    ARGS+=(--postgres "$PG_URL")
fi
# shellcheck disable=SC2206
ARGS+=(${PREFLIGHTD_ARGS:-})

"$BIN" "${ARGS[@]}" >/tmp/w7-server.out 2>/tmp/w7-server.err &
PID=$!
for _ in $(seq 100); do grep -q listening /tmp/w7-server.out 2>/dev/null && break; sleep 0.1; done
grep -q listening /tmp/w7-server.out || { cat /tmp/w7-server.err >&2; exit 1; }
rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$PID/status"; }
echo "w7: $BIN ${ARGS[*]}"
echo "w7: machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
# Warm-up (connections, allocator, caches), then the measured run.
wrk -t2 -c"${CONNECTIONS:-64}" -d3s -s bench/server/w7.lua "http://127.0.0.1:$PORT" >/dev/null
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
echo "w7: RSS before: $(rss)"
c0=$(cpu_ticks)
out=$(wrk -t2 -c"${CONNECTIONS:-64}" -d"${DURATION:-30s}" --latency -s bench/server/w7.lua "http://127.0.0.1:$PORT")
c1=$(cpu_ticks)
echo "$out"
echo "w7: RSS after:  $(rss)"
# Server CPU (user + system) per HTTP request during the measured run: less sensitive to a shared machine than req/s.
requests=$(awk '/requests in/ {print $1}' <<<"$out")
echo "w7: server CPU $(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v r="${requests:-0}" \
    'BEGIN { if (r > 0) printf "%.1f", t * 1e6 / hz / r; else printf "0" }') us per request ($((c1 - c0)) ticks, ${requests:-0} requests)"
curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^preflight_(decisions_total|leases_held|lease_registry_entries|http_timeouts_total|http_handler_errors_total)' || true
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
PID=""
echo "w7: server exit status after SIGTERM: $rc"
