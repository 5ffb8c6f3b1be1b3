#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for tests, demos and benchmarks.
#
#   scripts/pg.sh start    start a cluster (idempotent: an already running one is reused); prints its URL
#   scripts/pg.sh stop     stop it and delete its directory (nothing is left running)
#   scripts/pg.sh status   exit 0 and say so when it runs, exit 3 otherwise
#   scripts/pg.sh url      print the URL of the running cluster (for PREFLIGHT_TEST_PG_URL)
#
# The cluster lives in its own temporary directory owned by an unprivileged user (Postgres refuses
# root), listens on 127.0.0.1 and on a unix socket in that directory, on a free port, with fsync off.
# PREFLIGHT_PG_PORT pins the port (a taken port is then an error); otherwise a free random port is used.
# PREFLIGHT_PG_STATE names the file that records the running cluster (default: one per checkout in /tmp).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${PREFLIGHT_PG_STATE:-/tmp/preflight-pg-$(echo -n "$ROOT" | md5sum | cut -c1-12).state}
PGBIN=$(pg_config --bindir 2>/dev/null || true)
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/pg_ctl" ]; then
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
fi
[ -x "$PGBIN/pg_ctl" ] || { echo "pg.sh: pg_ctl not found; run scripts/setup.sh" >&2; exit 1; }

RUN_AS=${PREFLIGHT_PG_USER:-postgres}
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd "$PGTMP" && runuser -u "$RUN_AS" -- "$@")
    else
        (cd "$PGTMP" && "$@")
    fi
}

load_state() {
    PGTMP="" PORT=""
    [ -f "$STATE" ] || return 1
    # shellcheck disable=SC1090
    . "$STATE"
    [ -n "$PGTMP" ] && [ -d "$PGTMP/data" ]
}

running() {
    load_state || return 1
    as_pg "$PGBIN/pg_ctl" -D "$PGTMP/data" status >/dev/null 2>&1
}

url() { echo "postgresql://postgres@127.0.0.1:$PORT/postgres"; }

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
    if running; then
        url
        return 0
    fi
    [ -f "$STATE" ] && { load_state && rm -rf "$PGTMP"; rm -f "$STATE"; }
    if [ "$(id -u)" -eq 0 ] && ! id -u "$RUN_AS" >/dev/null 2>&1; then
        useradd --system --no-create-home "$RUN_AS"
    fi
    PGTMP=$(mktemp -d -t pgtest.XXXXXX) # short path: the unix socket path must stay < 108 bytes
    [ "$(id -u)" -eq 0 ] && chown "$RUN_AS:" "$PGTMP"
    chmod 755 "$PGTMP"
    if ! as_pg "$PGBIN/initdb" -D "$PGTMP/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
        --no-sync --no-instructions >"$PGTMP/initdb.log" 2>&1; then
        cat "$PGTMP/initdb.log" >&2
        rm -rf "$PGTMP"
        exit 1
    fi
    cat >>"$PGTMP/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGTMP'
unix_socket_permissions = 0777
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 64MB
CONF
    local tries=5 port
    for ((i = 0; i < tries; i++)); do
        if [ -n "${PREFLIGHT_PG_PORT:-}" ]; then
            port=$PREFLIGHT_PG_PORT
            if ! port_free "$port"; then
                echo "pg.sh: port $port (PREFLIGHT_PG_PORT) is already in use on 127.0.0.1" >&2
                rm -rf "$PGTMP"
                exit 1
            fi
        else
            port=$((20000 + RANDOM % 30000))
            port_free "$port" || continue
        fi
        if as_pg "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -o "-p $port" -w -t 30 start >/dev/null 2>&1; then
            PORT=$port
            printf 'PGTMP=%q\nPORT=%q\n' "$PGTMP" "$PORT" >"$STATE"
            url
            return 0
        fi
        [ -n "${PREFLIGHT_PG_PORT:-}" ] && break
    done
    echo "pg.sh: could not start PostgreSQL; server log:" >&2
    cat "$PGTMP/server.log" >&2 || true
    rm -rf "$PGTMP"
    exit 1
}

stop() {
    if load_state; then
        if [ -f "$PGTMP/data/postmaster.pid" ]; then
            as_pg "$PGBIN/pg_ctl" -D "$PGTMP/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
        fi
        rm -rf "$PGTMP"
    fi
    rm -f "$STATE"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status)
    if running; then echo "running: $(url) (dir $PGTMP)"; else echo "not running"; exit 3; fi ;;
url)
    if running; then url; else echo "pg.sh: not running (scripts/pg.sh start)" >&2; exit 3; fi ;;
-h | --help) . "$(dirname "${BASH_SOURCE[0]}")/lib/help.sh"; script_help ;;
*) echo "usage: $0 start|stop|status|url|--help" >&2; exit 2 ;;
esac
