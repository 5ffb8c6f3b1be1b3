# Wall time per phase of a script run (sourced, not run). The phases go to the file PREFLIGHT_PHASES names. The first
# script that sources this makes the file and exports its name, so the scripts it calls (test.sh -> sanitize.sh) add
# their phases to the same table; only the script that made the file prints the table.
#   phase "build"      ends the running phase (if any) and starts "build"
#   phase_end          ends the running phase
#   phase_report       ends the running phase; in the script that made the file, prints every phase with the total
#                      and removes the file (call it on EXIT)
_phases_owner=0
if [ -z "${PREFLIGHT_PHASES:-}" ]; then
    PREFLIGHT_PHASES=$(mktemp -t preflight-phases.XXXXXX)
    _phases_owner=1
fi
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

phase_report() {
    phase_end
    [ "$_phases_owner" = 1 ] || return 0
    _phases_print
    rm -f "$PREFLIGHT_PHASES"
}

_phases_print() {
    [ -s "$PREFLIGHT_PHASES" ] || return 0
    printf '\n%-84s %8s\n' "phase" "wall (s)"
    awk -F'\t' '{ printf "%-84s %8d\n", $2, $1; total += $1 } END { printf "%-84s %8d\n", "total", total }' \
        "$PREFLIGHT_PHASES"
}
