#!/usr/bin/env bash
# The everyday-command defects of issue 17 item 6, as a new user meets them: every usage problem is
# ONE line "harp <cmd>: error: ..." with the exit code of docs/cli.md (2 usage, 1 runtime), naming
# what is missing or wrong; flags that do not apply are refused; a finished quantized folder is not
# overwritten without --force (an unfinished one still resumes).
set -u
ST="$HARP_SHARED/models/stories260K/stories260K.bin"; TXT="$HARP_SHARED/data/tinystories/val_head.txt"
[ -f "$ST" ] && [ -f "$TXT" ] || { echo "SKIP: stories260K or tinystories text missing"; exit 77; }
export OMP_WAIT_POLICY=passive
T="$HARP_TMP/cli_errors"; rm -rf "$T"; mkdir -p "$T"
H="$HARP_BIN"
fail=0

. "$(dirname "$0")/lib.bash"
expect() { local rc=$1 want=$2; shift 2; expect_error "$rc" -E "$want" "$@"; }

head -c 60000 "$TXT" > "$T/cal.txt"
# missing arguments name what is missing (not a page of usage)
expect 2 "^harp ppl: error: missing -f TEXT"           "$H" ppl -m "$ST"
expect 2 "^harp ppl: error: missing -m MODEL"          "$H" ppl -f "$T/cal.txt"
expect 2 "^harp generate: error: missing -p TEXT"      "$H" generate -m "$ST"
expect 2 "^harp generate: error: --kv: 'q8' is not f32 or f16" "$H" generate -m "$ST" -p x --kv q8
expect 2 "^harp ppl: error: --kv: 'bf16' is not f32 or f16" "$H" ppl -m "$ST" -f "$T/cal.txt" --kv bf16
expect 2 "^harp quantize: error: missing --hessians"   "$H" quantize -m "$ST" -o "$T/q" --method rtn
expect 2 "^harp calib: error: missing -o HESS_DIR"     "$H" calib -m "$ST" -f "$T/cal.txt"
expect 2 "^harp report: error: missing -o report.html" "$H" report "$T/cal.txt"
# unknown options and stray arguments: harp's prefix, never getopt's "ppl: unrecognized option"
expect 2 "^harp ppl: error: unknown option '--foo' \(see harp ppl --help\)$" "$H" ppl -m "$ST" --foo
expect 2 "^harp info: error: unknown option '-x'"      "$H" info -x
expect 2 "^harp ppl: error: unexpected argument 'extra'" "$H" ppl -m "$ST" -f "$T/cal.txt" extra
expect 2 "^harp ppl: error: --ctx needs a value$"      "$H" ppl -m "$ST" -f "$T/cal.txt" --ctx
expect 2 "^harp bench quant: error: unknown option '--nope'" "$H" bench quant --nope
# --max-chunks 0 is refused (the default, all windows, is what leaving it out means)
expect 2 "^harp ppl: error: --max-chunks: 0 is out of range \[1, " "$H" ppl -m "$ST" -f "$T/cal.txt" --max-chunks 0

"$H" calib -m "$ST" -f "$T/cal.txt" --ctx 128 --nseq 8 -o "$T/hess" -q > /dev/null || { echo "FAIL calib"; exit 1; }
Q=(-m "$ST" --hessians "$T/hess")
# flags that do not apply to the method / rotation are refused
expect 2 "^harp quantize: error: --harp-steps applies only to --rotation harp$" "$H" quantize "${Q[@]}" -o "$T/q" --method rtn --harp-steps 5
expect 2 "^harp quantize: error: --harp-theta applies only to --rotation harp$" "$H" quantize "${Q[@]}" -o "$T/q" --method quip --harp-theta fp16
expect 2 "^harp quantize: error: --harp-gpu applies only to --rotation harp$"   "$H" quantize "${Q[@]}" -o "$T/q" --method quip --harp-gpu
expect 2 "^harp quantize: error: --group applies only to --method rtn, gptq and ldp" "$H" quantize "${Q[@]}" -o "$T/q" --method quip --group 64
expect 2 "^harp quantize: error: --scale-override applies only to --method quip or qtip$" "$H" quantize "${Q[@]}" -o "$T/q" --method rtn --scale-override 0.9
expect 2 "^harp quantize: error: --qtip-code applies only to --method qtip$" "$H" quantize "${Q[@]}" -o "$T/q" --method quip --qtip-code hyb
expect 2 "^harp quantize: error: --qtip-code: trellis code .5mad. is not one of 1mad, 3inst, hyb$" "$H" quantize "${Q[@]}" -o "$T/q" --method qtip --qtip-code 5mad
expect 2 "^harp quantize: error: --harp-q-parts applies only to --method qtip --rotation harp$" "$H" quantize "${Q[@]}" -o "$T/q" --method quip --rotation harp --harp-q-parts 4
expect 2 "^harp quantize: error: --ctx applies only to --ppl TEXT$"            "$H" quantize "${Q[@]}" -o "$T/q" --method rtn --ctx 128
expect 2 "^harp quantize: error: --save-logits applies only to --ppl TEXT$"    "$H" quantize "${Q[@]}" -o "$T/q" --method rtn --save-logits "$T/x"
[ ! -e "$T/q" ] || { echo "FAIL: a refused command created its output folder"; fail=1; }

# -o of a finished folder: refused without --force (exit 1, folder untouched), rewritten with it
"$H" quantize "${Q[@]}" -o "$T/q" --method rtn --bits 4 -q > /dev/null || { echo "FAIL first quantize"; fail=1; }
before=$(sha256sum "$T/q/model.safetensors")
expect 1 "^harp quantize: error: .*/q: already holds a finished model; use --force" "$H" quantize "${Q[@]}" -o "$T/q" --method rtn --bits 2 -q
[ "$(sha256sum "$T/q/model.safetensors")" = "$before" ] || { echo "FAIL: refused run changed the folder"; fail=1; }
"$H" quantize "${Q[@]}" -o "$T/q" --method rtn --bits 2 -q --force > /dev/null && [ "$(sha256sum "$T/q/model.safetensors")" != "$before" ] \
  && echo "ok   --force overwrites a finished folder" || { echo "FAIL --force"; fail=1; }
# an unfinished folder (interrupted run) resumes without --force
HARP_TEST_ABORT_AFTER_LAYER=1 "$H" quantize "${Q[@]}" -o "$T/r" --method rtn -q > /dev/null 2>&1
res=$("$H" quantize "${Q[@]}" -o "$T/r" --method rtn -q --json)
[[ "$res" == *'"layers_resumed": 2'* ]] && echo "ok   unfinished folder resumes" || { echo "FAIL resume: $res"; fail=1; }

exit $fail
