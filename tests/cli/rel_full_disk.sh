#!/usr/bin/env bash
# Full disk (issue 16): `harp calib` and `harp quantize` writing to a disk that fills mid-write must
# stop with one error line naming the file and "No space left on device", publish nothing corrupt
# (tests/rel_check.c), leave no temporary behind, and finish the job -- byte-identical to a run
# that never ran out of space -- when run again after space is freed.
#  1. Always: the file layer's test hook HARP_TEST_ENOSPC_AFTER=N (src/core/files.c) makes every
#     write fail once N bytes in all have been written, for N across the whole run.
#  2. Where `mount -t tmpfs` is permitted (root, not in every CI container): a real size-limited
#     tmpfs that fills up, then is enlarged (mount -o remount,size=...) and the command resumed.
# Environment: HARP_BIN, HARP_SHARED, HARP_TMP, REL_CHECK.
. "$(dirname "$0")/rel_common.inc" rel_full_disk 60000 128 16

# check_full NAME KIND OUT RC ERRFILE REF CMD...: the failed run's contract, then a resume.
check_full() {
  local name=$1 kind=$2 out=$3 rc=$4 err=$5 ref=$6
  shift 6
  local lines msg
  lines=$(wc -l < "$err"); msg=$(head -1 "$err")
  if [ "$rc" = 0 ]; then echo "FAIL $name: the run did not fail"; fail=1; return; fi
  if [ "$rc" != 1 ] || [ "$lines" != 1 ] || ! grep -q "No space left on device" "$err" || ! grep -qF "$out/" "$err"; then
    echo "FAIL $name: exit $rc, $lines stderr line(s): $(cat "$err")"; fail=1; return
  fi
  if ! "$REL_CHECK" "$kind" "$out" > "$D/check.log" 2>&1; then echo "FAIL $name: corrupt output: $(head -1 "$D/check.log")"; fail=1; return; fi
  if [ -n "$(find "$out" -name '*.tmp.*' 2>/dev/null)" ]; then echo "FAIL $name: temporaries left: $(find "$out" -name '*.tmp.*')"; fail=1; return; fi
  if ! "$HARP_BIN" "$@" "$out" > /dev/null 2> "$D/resume.err"; then echo "FAIL $name: resume failed: $(cat "$D/resume.err")"; fail=1; return; fi
  if ! diff -r "$ref" "$out" > /dev/null; then echo "FAIL $name: resumed output differs from the reference"; fail=1; return; fi
  echo "ok   $name: ${msg#harp * error: } -> resumed, identical"
}

# ---- 1. the ENOSPC hook, at budgets landing in each file the runs write -----------------------------
# calib writes the layer files in order; quantize writes .partial/layer_NNN (P bytes in all), then
# tokenizer.bin, model.safetensors and config.json last (the file that makes the folder a model)
size() { stat -c %s "$@" | awk '{ s += $1 } END { print s + 0 }'; }
H=$(size "$D"/hess/layer_*.hess)
HARP_TEST_ABORT_AFTER_LAYER=4 "$HARP_BIN" $QUANT "$D/q_part" > /dev/null 2>&1
P=$(size "$D"/q_part/.partial/layer_*.safetensors); T=$(size "$D/q_ref/tokenizer.bin")
Mz=$(size "$D/q_ref/model.safetensors"); C=$(size "$D/q_ref/config.json")
echo "-- bytes written: calib $H; quantize $P (.partial) + $T (tokenizer.bin) + $Mz (model.safetensors) + $C (config.json)"
for n in 0 $((H / 3)) $((H * 2 / 3)) $((H - 8)); do
  out="$D/hook_calib_$n"
  HARP_TEST_ENOSPC_AFTER=$n "$HARP_BIN" $CALIB "$out" > /dev/null 2> "$D/err"
  check_full "calib, disk full after $n bytes" hess "$out" $? "$D/err" "$D/hess" $CALIB
done
for n in 0 $((P / 2)) $((P + T / 2)) $((P + T + Mz / 2)) $((P + T + Mz + C / 2)); do
  out="$D/hook_quant_$n"
  HARP_TEST_ENOSPC_AFTER=$n "$HARP_BIN" $QUANT "$out" > /dev/null 2> "$D/err"
  check_full "quantize, disk full after $n bytes" qfolder "$out" $? "$D/err" "$D/q_ref" $QUANT
done

# ---- 2. a real filesystem that fills up -------------------------------------------------------------
M="$D/mnt"; mkdir -p "$M"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=600k tmpfs "$M" 2>/dev/null; then
  "$HARP_BIN" $CALIB "$M/hess" > /dev/null 2> "$D/err"; rc=$?
  mount -o remount,size=8m "$M"
  check_full "calib on a 600 kB tmpfs, then enlarged" hess "$M/hess" $rc "$D/err" "$D/hess" $CALIB
  rm -rf "$M/hess"
  mount -o remount,size=300k "$M"
  "$HARP_BIN" $QUANT "$M/q" > /dev/null 2> "$D/err"; rc=$?
  mount -o remount,size=8m "$M"
  check_full "quantize on a 300 kB tmpfs, then enlarged" qfolder "$M/q" $rc "$D/err" "$D/q_ref" $QUANT
  umount "$M"
else
  echo "skip tmpfs: mounting is not permitted here (the ENOSPC hook above covers the same paths)"
fi
[ $fail = 0 ] && rm -rf "$D"
exit $fail
