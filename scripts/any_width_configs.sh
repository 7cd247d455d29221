# The four configurations of docs/results/harp-any-width.md (sourced by results_harp_any_width.sh and
# gpu_any_width_ref.sh): aw_flags CONFIG STEPS [FIT_FLAGS] prints the quantize flags of one of
# $AW_CONFIGS; FIT_FLAGS (e.g. --harp-gpu) go to the fitted configurations only.
AW_CONFIGS="rht greedy0 greedy hadamard"
aw_flags() {
  case $1 in
    rht) echo "--rotation rht";;
    greedy0) echo "--rotation harp --harp-schedule greedy --harp-steps 0";;
    greedy) echo "--rotation harp --harp-schedule greedy --harp-steps $2 ${3:-}";;
    hadamard) echo "--rotation harp --harp-schedule hadamard --harp-steps $2 ${3:-}";;
  esac
}
