#!/usr/bin/env bash
# Reliability campaign (issue 16): fuzz every parser, kill calib/quantize at random moments and
# resume, fill the disk mid-write, run two writers on one folder, feed hostile inputs; write a
# summary (markdown) of every figure. docs/results/reliability.md quotes a full run.
#
#   bash scripts/reliability.sh            full run: 10^7 executions per fuzz target, 30 kill trials
#                                          per stories260K configuration and 10 per ref-llama one
#                                          (REL_TRIALS_REF), hours on 2 cores; fuzzers at nice 19
#   bash scripts/reliability.sh --quick    what CI runs (scripts/test.sh): a short fuzz smoke per
#                                          target, a few kill trials, the reliability ctests
# Options:
#   --stages LIST        comma list of fuzz,kill,ctest (default all), and corpus: merge what a fuzz
#                        run in --out found into fuzz/corpus/<target>, minimised (libFuzzer -merge=1)
#   --targets LIST       fuzz targets to run (default: every fuzz/fuzz_*.c)
#   --runs N             executions per fuzz target (default 10000000; --quick: time-limited)
#   --fuzz-seconds S     cap per fuzz target in seconds (default none; --quick 12)
#   --fuzz-deadline S    all fuzzing ends S seconds after the stage starts (default none)
#   --fuzz-jobs J        fuzz targets run at once (default: number of cores)
#   --trials N           kill trials per configuration (default 30; --quick 3)
#   --build DIR          Release build to use/create (default build-rel)
#   --fuzz-build DIR     clang libFuzzer build (default build-relfuzz)
#   --out DIR            results folder (default <build>/reliability)
# Environment: HARP_SHARED (models and data, default ../shared).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export OMP_WAIT_POLICY=passive

quick=0 stages="fuzz,kill,ctest" targets="" runs="" fuzz_secs="" fjobs=$(nproc) trials="" deadline=0
build=build-rel fbuild=build-relfuzz out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --stages) stages=$2; shift ;;
    --targets) targets=$2; shift ;;
    --runs) runs=$2; shift ;;
    --fuzz-seconds) fuzz_secs=$2; shift ;;
    --fuzz-jobs) fjobs=$2; shift ;;
    --fuzz-deadline) deadline=$2; shift ;;
    --trials) trials=$2; shift ;;
    --build) build=$2; shift ;;
    --fuzz-build) fbuild=$2; shift ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "reliability.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ $quick = 1 ]; then
  runs=${runs:-100000000}; fuzz_secs=${fuzz_secs:-12}; trials=${trials:-3}
else
  runs=${runs:-10000000}; fuzz_secs=${fuzz_secs:-0}; trials=${trials:-30}
fi
out=${out:-$build/reliability}
shared="${HARP_SHARED:-$(cd .. && pwd)/shared}"
mkdir -p "$out"
summary="$out/summary.md"
[ "$stages" = corpus ] && summary="$out/corpus.md"
has_stage() { case ",$stages," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
# The fuzzers run at nice 19. With the kernel's autogroup scheduling, nice ranks processes within
# their session: the whole run (started in a session of its own, e.g. with setsid) takes at most one
# session's fair share of the CPU, and within it the fuzzers yield to the script's other stages.
nice19() { nice -n 19 "$@"; }
fail=0

{
  echo "# harp reliability run"
  echo
  echo "- command: \`bash scripts/reliability.sh $( [ $quick = 1 ] && echo --quick ) --stages $stages\`"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (+ local changes)')"
  echo "- machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
} > "$summary"

# ---- 1. fuzzing ----------------------------------------------------------------------------------
# Each target runs `runs` executions (or until fuzz_secs) under ASan+UBSan with leak detection, a
# per-input timeout and a 512 MB cap on any single allocation: a crash, leak, timeout or an
# allocation sized by an unchecked field ends the run with an artifact in $out/artifacts. At nice 19
# on a busy machine a fuzzer can get no CPU for minutes, which libFuzzer (wall-clock timeouts)
# reports as a timeout: a timeout input is therefore re-run alone, and if it completes in seconds the
# stall is logged as starvation (not a finding) and fuzzing resumes from the corpus for the
# executions still missing; libFuzzer's slow-unit reports (> 10 s) get the same re-run at the end.
# Counts, coverage and corpus add up over the segments.
fuzz_segment() {   # fuzz_segment TARGET RUNS SECONDS LOG
  local t=$1 seeds="fuzz/corpus/$1" dict="fuzz/dict/$1.dict"   # + fuzz/regress/<t>: past findings, kept apart from
                                                              # the corpus so that minimising never drops them
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 nice19 "$fbuild/fuzz/fuzz_$t" -runs="$2" -max_total_time="$3" -timeout=300 \
    -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" \
    $( [ -f "$dict" ] && echo "-dict=$dict" ) "$out/corpus/$t" $( [ -d "$seeds" ] && echo "$seeds" ) \
    $( [ -d "fuzz/regress/$t" ] && echo "fuzz/regress/$t" ) > "$4" 2>&1
}

# starved_alone TARGET ARTIFACT LIMIT_MS: re-runs the artifact alone; when it passes within LIMIT_MS
# it was a stall, not a finding: it moves to $out/starved/ and its time alone is printed.
starved_alone() {
  local log="$out/starved/$(basename "$2").log" ms
  OMP_NUM_THREADS=1 timeout 60 "$fbuild/fuzz/fuzz_$1" "$2" > "$log" 2>&1 || return 1
  ms=$(sed -n 's/^Executed .* in \([0-9]*\) ms$/\1/p' "$log" | tail -1)
  [ -n "$ms" ] && [ "$ms" -lt "$3" ] || return 1
  mv "$2" "$out/starved/"
  echo "$ms"
}

fuzz_one() {
  local t=$1 log="$out/fuzz-$1.log" t0 rc=0 total=0 seg=0 rss=0 starved=0 findings=0 ms
  mkdir -p "$out/corpus/$t" "$out/artifacts" "$out/starved"
  rm -f "$out/artifacts/$t"-* "$log"
  t0=$(date +%s)
  while :; do
    seg=$((seg + 1))
    local left_runs=$((runs - total)) left_secs=0 slog="$out/fuzz-$t.seg$seg.log"
    if [ "$fuzz_secs" != 0 ]; then left_secs=$((fuzz_secs - ($(date +%s) - t0))); [ $left_secs -gt 0 ] || break; fi
    if [ "$deadline" != 0 ]; then
      local to_end=$((fuzz_start + deadline - $(date +%s)))
      [ $to_end -gt 0 ] || break
      if [ $left_secs = 0 ] || [ $to_end -lt $left_secs ]; then left_secs=$to_end; fi
    fi
    set +e
    fuzz_segment "$t" "$left_runs" "$left_secs" "$slog"
    rc=$?
    set -e
    cat "$slog" >> "$log"
    local n r
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$slog" | tail -1 || true)
    r=$(sed -n 's/^stat::peak_rss_mb: *//p' "$slog" | tail -1 || true)
    total=$((total + ${n:-0})); [ "${r:-0}" -gt $rss ] && rss=${r:-0}
    [ $rc = 0 ] && break
    local a real=0
    [ -n "$( (ls "$out/artifacts/$t"-* 2>/dev/null || true) )" ] || { real=1; findings=1; }   # failed without an artifact
    for a in $( (ls "$out/artifacts/$t"-* 2>/dev/null || true) ); do
      case "$(basename "$a")" in
        "$t"-timeout-*)
          if ms=$(starved_alone "$t" "$a" 60000); then
            starved=$((starved + 1))
            echo "fuzz $t: a timeout under CPU starvation (in $ms ms when run alone): resuming" >&2
          else real=1; fi ;;
        *) real=1 ;;
      esac
    done
    [ $real = 0 ] || break
    [ $seg -lt 50 ] || break
  done
  # libFuzzer writes a slow-unit artifact for any input that took > 10 s, however long the process
  # waited for a CPU: re-run each alone, and only one that is slow alone (or fails) is a finding
  for a in $( (ls "$out/artifacts/$t"-slow-unit-* 2>/dev/null || true) ); do
    if ms=$(starved_alone "$t" "$a" 10000); then
      starved=$((starved + 1))
      echo "fuzz $t: a slow unit under CPU starvation ($ms ms when run alone)" >&2
    fi
  done
  local secs=$(( $(date +%s) - t0 )) cov ft corp
  cov=$( (grep -o 'cov: [0-9]*' "$log" || true) | tail -1 | cut -d' ' -f2)
  ft=$( (grep -o 'ft: [0-9]*' "$log" || true) | tail -1 | cut -d' ' -f2)
  corp=$( (grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" || true) | tail -1 | cut -d' ' -f2)
  findings=$(( findings + $( (ls "$out/artifacts/$t"-* 2>/dev/null || true) | wc -l) ))
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$total" "$secs" "$(( total / (secs > 0 ? secs : 1) ))" "${cov:-?}" \
    "${ft:-?}" "${corp:-?}" "$rss" "$findings" "$rc" "$starved" > "$out/fuzz-$t.tsv"
}

if has_stage fuzz; then
  echo "== fuzz: building libFuzzer targets in $fbuild" >&2
  CC=clang cmake -S . -B "$fbuild" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHARP_FUZZ=ON -DHARP_TESTS=OFF \
    -DHARP_SHARED_DIR="$shared" > "$out/fuzz-build.log" 2>&1
  nice -n 10 cmake --build "$fbuild" -j "$(nproc)" >> "$out/fuzz-build.log" 2>&1 || { tail -30 "$out/fuzz-build.log"; exit 1; }
  [ -n "$targets" ] || targets=$(ls fuzz/fuzz_*.c | sed 's|fuzz/fuzz_||; s|\.c$||' | tr '\n' ' ')
  targets=$(echo "$targets" | tr ',' ' ')
  echo "== fuzz: $targets ($runs runs each$( [ "$fuzz_secs" != 0 ] && echo ", at most ${fuzz_secs}s"), $fjobs at a time, nice 19)" >&2
  running=0 fuzz_start=$(date +%s)
  for t in $targets; do
    [ -x "$fbuild/fuzz/fuzz_$t" ] || { echo "no fuzz target $t" >&2; exit 2; }
    fuzz_one "$t" &
    running=$((running + 1))
    if [ $running -ge "$fjobs" ]; then wait -n || true; running=$((running - 1)); fi
  done
  wait
  {
    echo "## 1. Fuzzing"
    echo
    echo "| target | executions | seconds | execs/s | coverage (cov / ft) | corpus (files/bytes) | peak RSS MB | findings | starved restarts |"
    echo "|---|---:|---:|---:|---|---|---:|---:|---:|"
  } >> "$summary"
  for t in $targets; do
    IFS=$'\t' read -r n ex sec eps cov ft corp rss fnd rc starved < "$out/fuzz-$t.tsv"
    echo "| $n | $ex | $sec | $eps | $cov / $ft | $corp | $rss | $fnd | $starved |" >> "$summary"
    if [ "$fnd" != 0 ]; then
      fail=1
      echo "FUZZ FINDING in $n (exit $rc): $(ls "$out/artifacts/$n"-* 2>/dev/null | tr '\n' ' ')" >&2
      grep -m3 -E 'ERROR|SUMMARY|runtime error' "$out/fuzz-$n.log" >&2 || true
    fi
  done
  echo >> "$summary"
fi

# ---- minimised corpora ----------------------------------------------------------------------------
if has_stage corpus; then
  [ -n "$targets" ] || targets=$(ls fuzz/fuzz_*.c | sed 's|fuzz/fuzz_||; s|\.c$||' | tr '\n' ' ')
  for t in $(echo "$targets" | tr ',' ' '); do
    [ -d "$out/corpus/$t" ] || continue
    rm -rf "$out/merged-$t" && mkdir -p "$out/merged-$t"
    if nice19 "$fbuild/fuzz/fuzz_$t" -merge=1 -rss_limit_mb=2048 "$out/merged-$t" "fuzz/corpus/$t" "$out/corpus/$t" \
      > "$out/merge-$t.log" 2>&1; then
      rm -rf "fuzz/corpus/$t" && mv "$out/merged-$t" "fuzz/corpus/$t"
      echo "corpus $t: $(ls "fuzz/corpus/$t" | wc -l) files, $(du -sk "fuzz/corpus/$t" | cut -f1) kB" >&2
    else
      echo "corpus $t: merge failed, see $out/merge-$t.log" >&2; fail=1
    fi
  done
fi

# ---- Release build for the CLI stages ----------------------------------------------------------------
if has_stage kill || has_stage ctest; then
  echo "== building $build (Release)" >&2
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DHARP_FATAL_WARNINGS=ON -DHARP_SHARED_DIR="$shared" > "$out/build.log" 2>&1
  cmake --build "$build" -j "$(nproc)" >> "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
fi

# ---- 2. kill anywhere --------------------------------------------------------------------------------
if has_stage kill; then
  models="stories ref" trials_ref=${REL_TRIALS_REF:-10}
  [ $quick = 1 ] && models=stories
  echo "== kill-and-resume: $trials trials per stories260K configuration$( [ $quick = 1 ] || echo ", $trials_ref per ref-llama configuration")" >&2
  : > "$out/kill.tsv"
  set +e
  HARP_BIN="$root/$build/harp" HARP_SHARED="$shared" HARP_TMP="$root/$build/tests/tmp" REL_CHECK="$root/$build/tests/rel_check" \
    REL_TRIALS=$trials REL_TRIALS_REF=$trials_ref REL_MODELS="$models" REL_SEED=${REL_SEED:-1} REL_TSV="$out/kill.tsv" \
    bash tests/cli/rel_kill_resume.sh > "$out/kill.log" 2>&1
  rc=$?
  set -e
  [ $rc = 0 ] || fail=1
  {
    echo "## 2. Kill anywhere"
    echo
    echo "Each trial: 1-3 \`kill -9\` at seeded random moments, a check of every visible file after each kill, then the"
    echo "same command to the end and \`diff -r\` against an uninterrupted run. Where a kill landed: Ln = final layer"
    echo "files on disk at that moment, +tmp = a temporary was being written, +model = model.safetensors written."
    echo
    echo "| model | command | trials | kills | kills mid-write (+tmp) | byte-identical |"
    echo "|---|---|---:|---:|---:|---:|"
    awk -F'\t' '{ k = $1 "\t" $2; n[k]++; kills[k] += $4; t = $6; mid[k] += gsub(/\+tmp/, "", t); if ($7 == "identical") ok[k]++ }
      END { for (k in n) { split(k, a, "\t"); printf "| %s | %s | %d | %d | %d | %d of %d |\n", a[1], a[2], n[k], kills[k], mid[k], ok[k], n[k] } }' \
      "$out/kill.tsv" | sort
    echo
    grep -E '^(-- |kill-and-resume|FAIL)' "$out/kill.log" | sed 's/^/    /'
    echo
  } >> "$summary"
fi

# ---- 3-5. full disk, two writers, hostile inputs (ctests) ---------------------------------------------
if has_stage ctest; then
  echo "== ctest -L reliability" >&2
  set +e
  (cd "$build" && OMP_WAIT_POLICY=passive ctest -L reliability -E cli_rel_kill_resume -j "$(nproc)" --output-on-failure -V) > "$out/ctest.log" 2>&1
  rc=$?
  set -e
  [ $rc = 0 ] || fail=1
  {
    echo "## 3-5. Full disk, two writers, hostile inputs (ctest -L reliability)"
    echo
    grep -E '^[0-9]+: (ok|FAIL|skip|-- )' "$out/ctest.log" | sed -E 's/^[0-9]+: //; s|'"$root/$build"'/tests/tmp/[a-z_]*/||g; s/^/    /'
    echo
    grep -E 'tests passed|tests failed' "$out/ctest.log" | tail -1
    echo
  } >> "$summary"
fi

cat "$summary"
exit $fail
