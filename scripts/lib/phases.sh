# Wall time per phase of a script run (sourced, not run). test.sh exports PREFLIGHT_PHASES, the file the phases are
# appended to, so the scripts it calls (sanitize.sh) add theirs to the same table; alone, a script keeps its own.
#   phase "build"      ends the running phase (if any) and starts "build"
#   phase_end          ends the running phase
#   phase_table        ends the running phase and prints every phase recorded in the file, with the total
: "${PREFLIGHT_PHASES:=$(mktemp -t preflight-phases.XXXXXX)}"
export PREFLIGHT_PHASES
_phase_name="" _phase_start=0

phase_end() {
    [ -n "$_phase_name" ] || return 0
    printf '%s\t%s\n' "$(($(date +%s) - _phase_start))" "$_phase_name" >>"$PREFLIGHT_PHASES"
    _phase_name=""
}

phase() {
    phase_end
    _phase_name=$*
    _phase_start=$(date +%s)
    printf '\n==> %s\n' "$*"
}

phase_table() {
    phase_end
    [ -s "$PREFLIGHT_PHASES" ] || return 0
    printf '\n%-84s %8s\n' "phase" "wall (s)"
    awk -F'\t' '{ printf "%-84s %8d\n", $2, $1; total += $1 } END { printf "%-84s %8d\n", "total", total }' \
        "$PREFLIGHT_PHASES"
}
