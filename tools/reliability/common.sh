# Shared by scripts/faults.sh and scripts/soak.sh (sourced, not run): finds or builds preflightd and the
# drivers of tools/reliability, and starts/stops preflightd.
# Env: PREFLIGHTD, RELIAB_LOAD, RELIAB_BILLING_HANG (prebuilt binaries: skip the build); BUILD_DIR (build/rel: used
# when it is a configured build that has the drivers' targets); otherwise preflightd and the drivers are built in
# build/reliab (Release, no tests or benchmarks). JOBS (2).

# reliab_build [configure]: with "configure", only configures the build directory it would use (--configure-only).
reliab_build() {
    local jobs=${JOBS:-2} mode=${1:-build}
    local bd=${BUILD_DIR:-$ROOT/build/rel}
    if [ "$mode" != configure ] && [ -n "${PREFLIGHTD:-}" ] && [ -n "${RELIAB_LOAD:-}" ] &&
        [ -n "${RELIAB_BILLING_HANG:-}" ]; then return 0; fi
    if [ -f "$bd/build.ninja" ] && grep -q "build reliab_load:" "$bd/build.ninja"; then
        [ "$mode" = configure ] && { cmake "$bd" >/dev/null; echo "configured $bd" >&2; return 0; }
        cmake --build "$bd" -j "$jobs" --target preflightd reliab_load reliab_billing_hang >&2
        PREFLIGHTD=${PREFLIGHTD:-$bd/server/preflightd}
        RELIAB_LOAD=${RELIAB_LOAD:-$(find "$bd" -name reliab_load -type f -perm -u+x | head -n1)}
        RELIAB_BILLING_HANG=${RELIAB_BILLING_HANG:-$(find "$bd" -name reliab_billing_hang -type f -perm -u+x | head -n1)}
    else
        bd=$ROOT/build/reliab
        echo "==> $mode: preflightd and the reliability drivers (Release, $bd)" >&2
        cmake -S "$ROOT" -B "$bd" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPREFLIGHT_BUILD_TESTS=OFF \
            -DPREFLIGHT_BUILD_BENCH=OFF -DPREFLIGHT_BUILD_SERVER=ON >/dev/null
        [ "$mode" = configure ] && { echo "configured $bd" >&2; return 0; }
        cmake --build "$bd" -j "$jobs" --target preflightd reliab_load reliab_billing_hang >&2
        PREFLIGHTD=${PREFLIGHTD:-$bd/server/preflightd}
        RELIAB_LOAD=${RELIAB_LOAD:-$bd/tools/reliability/reliab_load}
        RELIAB_BILLING_HANG=${RELIAB_BILLING_HANG:-$bd/tools/reliability/reliab_billing_hang}
    fi
    export PREFLIGHTD RELIAB_LOAD RELIAB_BILLING_HANG
}

free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    return 1
}

# start_preflightd NAME PORT ARGS...: starts preflightd in the background; sets PID_<NAME>; waits until it listens.
start_preflightd() {
    local name=$1 port=$2
    shift 2
    "$PREFLIGHTD" --port "$port" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" &
    local pid=$!
    eval "PID_$name=$pid"
    for _ in $(seq 200); do
        grep -q listening "$OUT/$name.out" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "preflightd $name did not start:" >&2
    cat "$OUT/$name.err" >&2
    return 1
}

stop_pid() {
    local pid=$1
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}

# metric PORT NAME: the value of an unlabelled metric from /metrics (empty when missing).
metric() {
    curl -s --max-time 5 "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n { print $2; exit }'
}

# summary_field LINE KEY: the value of KEY=... in a driver's SUMMARY/INTERVAL line.
field() {
    echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2; exit }'
}
