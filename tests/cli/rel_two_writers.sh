#!/usr/bin/env bash
# Two writers on one folder (issue 16): while one `harp quantize` (or `harp calib`) writes a folder,
# a second one aimed at the same folder -- of either kind -- refuses at once (exit 1, one line naming
# the folder and the holder's pid), without waiting and without touching the folder; the first
# finishes with the bytes of a run that had the folder to itself. The lock is advisory
# (flock on OUT/.harp.lock, src/core/files.c) and is gone after the run.
# Environment: HARP_BIN, HARP_SHARED, HARP_TMP, REL_CHECK.
. "$(dirname "$0")/rel_common.inc" rel_two_writers 200000 256 64

# race NAME KIND FIRST SECOND REF: FIRST (a command line) runs into $D/out; once it holds the lock,
# SECOND runs into the same folder and must be refused at once.
race() {
  local name=$1 kind=$2 first=$3 second=$4 ref=$5 out="$D/out"
  rm -rf "$out"
  "$HARP_BIN" $first "$out" > /dev/null 2> "$D/first.err" &
  local pid=$! i=0
  while [ ! -f "$out/.harp.lock" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
  if [ ! -f "$out/.harp.lock" ] || ! kill -0 $pid 2>/dev/null; then
    echo "FAIL $name: the first writer never held the lock"; fail=1; wait $pid; return
  fi
  local t0 t1 rc lines
  t0=$(date +%s.%N)
  "$HARP_BIN" $second "$out" > /dev/null 2> "$D/second.err"; rc=$?
  t1=$(date +%s.%N)
  local still=0; kill -0 $pid 2>/dev/null && still=1
  wait $pid; local rc1=$?
  lines=$(wc -l < "$D/second.err")
  local secs; secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  if [ $rc != 1 ] || [ "$lines" != 1 ] || ! grep -qF "$out: in use by another harp process (pid $pid" "$D/second.err"; then
    echo "FAIL $name: second writer exit $rc, $lines line(s): $(cat "$D/second.err")"; fail=1
  elif [ $still != 1 ]; then
    echo "FAIL $name: the second writer returned only after the first had finished (it waited)"; fail=1
  elif [ $rc1 != 0 ]; then
    echo "FAIL $name: the first writer failed: $(cat "$D/first.err")"; fail=1
  elif ! "$REL_CHECK" "$kind" "$out" > "$D/check.log" 2>&1 || ! diff -r "$ref" "$out" > /dev/null; then
    echo "FAIL $name: the first writer's output differs from a lone run's"; fail=1
  else
    echo "ok   $name: refused in ${secs}s: $(sed 's/^harp [a-z]*: error: //' "$D/second.err")"
  fi
}

race "quantize vs quantize" qfolder "$QUANT" "$QUANT" "$D/q_ref"
race "quantize vs calib" qfolder "$QUANT" "$CALIB" "$D/q_ref"
race "calib vs calib" hess "$CALIB" "$CALIB" "$D/hess"
race "calib vs quantize" hess "$CALIB" "$QUANT" "$D/hess"
[ $fail = 0 ] && rm -rf "$D"
exit $fail
