# What the compiler cache did during one build (sourced, not run). The cache itself is set up by
# cmake/PreflightCcache.cmake; docs/development.md says how it works and how to clear it.
#   ccache_mark         remembers the cache's counters
#   ccache_report NAME  prints "ccache (NAME): H hits, M misses, size S" since the last ccache_mark
_ccache_on() { command -v ccache >/dev/null && [ "${PREFLIGHT_CCACHE:-ON}" != OFF ]; }
_ccache_stats() {
    if [ -n "${PREFLIGHT_CCACHE_DIR:-}" ]; then CCACHE_DIR=$PREFLIGHT_CCACHE_DIR ccache --print-stats; else ccache --print-stats; fi |
        awk -F'\t' '$1 ~ /^(direct|preprocessed)_cache_hit$/ { h += $2 } $1 == "cache_miss" { m = $2 }
                    $1 == "cache_size_kibibyte" { s = $2 } END { print h + 0, m + 0, s + 0 }'
}
ccache_mark() { _ccache_on && _ccache_before=$(_ccache_stats) || true; }
ccache_report() {
    _ccache_on || return 0
    local now h0 m0 h1 m1 s
    now=$(_ccache_stats)
    read -r h0 m0 _ <<<"${_ccache_before:-0 0 0}"
    read -r h1 m1 s <<<"$now"
    printf 'ccache (%s): %d hits, %d misses; cache size %d MiB\n' "$1" $((h1 - h0)) $((m1 - m0)) $((s / 1024))
}
