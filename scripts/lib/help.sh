# script_help: prints the calling script's header comment (from line 2 to the first line that is not a comment),
# which every script of scripts/ keeps as its usage text. Sourced, not run.
script_help() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }
