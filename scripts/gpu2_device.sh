#!/usr/bin/env bash
# Device run of issue 12 phase 2 (docs/results/decode-gpu.md, "Phase 2"): copied into the pack by
#   DEST=/work/main/.gpu/gpu2 EXTRA_MODELS="..." EXTRA_BINS="..." scripts/gpu_pack.sh
# and run there as: bash .gpu/gpu2/run.sh STAGES   (carry [".gpu/gpu2"]; writes under $OUT).
# STAGES: mkq (ref-llama 2-bit folders rl_quip2 / rl_harp2 made on the device, 16 threads, added to the extra models),
# mkwakv (W/A/KV folders: ref-llama and stories260K W4A4KV4 GPTQ and W2A4KV4 LDP, added likewise), wakvppl (their full-file
# ppl on the CPU and with --gpu), ldpgpu (LDP fit (b) with the block on the device against the CPU: seconds, ppl),
# tests (GPU tests incl. test_gpu_packed on every extra model), kvctx (the product path's 4-bit vs fp16 KV cache), kv4eng (the
# opt-in engine kernel over the backend's 4-bit planes: tests, engine bench, kvctx), ctxkv (the product path's fp32 / fp16 KV cache),
# ppl (packed-path GPU ppl
# against the fp32 dense path and the CPU), prefill (issue 12 acceptance 3a: whole `ppl --gpu` runs of the dense fp32 path
# and every extra model, binaries of PREFILL_BINS alternating), pfold (prefill's weight fold at 7B shapes), pprof (Nsight per-kernel times of `ppl --gpu`), xprof (Nsight Compute's full set on a few transform launches of
# `ppl --gpu`), bench (harp bench decode --gpu), bench70 (70B 2-bit), prof (Nsight
# per-kernel times of a decode token), cublas (cuBLAS found at first use, its error path, start-up RSS),
# cpugemv (the CPU GEMV speed-ups over sgemv on the host's 16 cores), igemm (issue 14: INT8 prefill GEMM, KV4 decode), wgmma (the
# fused int8 GEMM + epilogue: test and bench igemm), s26 (the fused GEMM's clusters, PDL and 256-wide tiles: test, bench, Nsight), s26b
# (the integer prefill on an RTN folder, the decode table), pending24 (the twenty-fourth session's unrun device work, after mkrtn),
# ldp (issue 15: the ldp2 W2A4 / W2A16 GEMV against copy bandwidth), peer (harp's 2-bit GEMV beside ggml's
# iq2_xxs: a pack with PACK_MODELS=0 EXTRA_BINS=/work/peer/ggml/build/ggml_mulmat).
set -u
D=$(cd "$(dirname "$0")" && pwd)
. "$D/env.sh"
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
S="$P/shared"; M="$S/models"; T="$S/data/ref-corpus/test.txt"
run() { "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/$1" "${@:2}"; }
# ref-llama is an fp16 checkpoint: by default the engine runs it as F16 planes; the dense fp32 path of
# acceptance 3a is HARP_CUDA_DENSE_F16=0. Packed folders keep the default (their fp16 head as F16 planes).
dense16() { case "$1" in */ref-llama) echo 0 ;; *) echo 1 ;; esac; }
find_extra() {
  extra=""
  for d in "$M"/*/; do n=$(basename "$d"); case "$n" in ref-llama|stories260K) ;; *) extra="$extra $M/$n" ;; esac; done
}
find_extra
export HARP_GPU_PACKED_MODELS="$extra" OMP_WAIT_POLICY=passive
echo "commit $(cat "$P/COMMIT"); models:$extra"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
for stage in "$@"; do
  case "$stage" in
  mkq)   # the 2-bit folders acceptance 3a is measured on, made here (HARP fit on 16 threads: its ppl differs from a 2-core fit)
    [ -d "$M/rl_quip2" ] || {
      run harp calib -m "$M/ref-llama" -f "$S/data/ref-corpus/calib.txt" --nseq 32 -o /tmp/hess_rl -q -t 16 > /dev/null
      run harp quantize -m "$M/ref-llama" --hessians /tmp/hess_rl -o "$M/rl_quip2" --method quip --bits 2 --seed 0 -q -t 16 > /dev/null
      [ "${MKQ_HARP:-1}" = 0 ] ||   # MKQ_HARP=0: the RHT folder only (a short profiling run)
      run harp quantize -m "$M/ref-llama" --hessians /tmp/hess_rl -o "$M/rl_harp2" --method quip --bits 2 --seed 0 --rotation harp \
        --harp-steps 30 -q -t 16 > /dev/null; }
    find_extra; export HARP_GPU_PACKED_MODELS="$extra"; echo "models:$extra" ;;
  kv4eng)   # the twenty-second session's opt-in dec_attn_kv4_planes in one go: its tests (test_gpu_kernels runs the decode cases with
            # dec_set_attn_kv4_planes(1); test_dec_kv4_gpu: the engine-layout kernel, whose pointer setup was refactored), the engine bench at
            # 4 095 (vs_kv16 of the 4-bit cache, to compare with docs/results/wakv.md's 1.12-1.23), then stage kvctx at 4 095
    GPU_TESTS="test_gpu_kernels test_dec_kv4_gpu:gpu" TESTS_TAIL=${TESTS_TAIL:-4} bash "$0" tests
    timeout 120 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" bench decode --gpu --json --shape llama2-7b \
      --qtypes f16,int4 --rotations rht --batch 1,4 --kv-bits 16,4 --pos 4095 --fuse on 2>&1 | grep -o '"qtype": "[a-z0-9]*"\|"batch": [0-9]*\|"kv_bits": [0-9]*\|"vs_kv16": [0-9.]*' | paste -sd' '
    KVCTX_POS=4095 bash "$0" kvctx ;;
  kvctx)   # issue 14 acceptance 4b on the product path: generate --gpu's forward with an fp16 and a 4-bit quantized KV cache
           # (bench decode --path ctx --ctx-kv 16,4: the backend's planes read in place, graph-captured), 8 layers, e8p2 RHT,
           # positions KVCTX_POS (4095 511), the 4-bit cache by the generic kernel (HARP_CUDA_KV4_ENGINE=0) and the engine's (1)
    for pos in ${KVCTX_POS:-4095 511}; do for e in 0 1; do
      HARP_CUDA_KV4_ENGINE=$e timeout 100 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" bench decode --gpu --json \
        --shape llama2-7b --layers 8 --qtypes e8p2 --rotations rht --batch 1 --path ctx --ctx-kv 16,4 --pos $pos --reps 20 2>&1 |
        grep '"path"' | sed "s/^/kv4_engine=$e /" | tee -a "$OUT/kvctx.jsonl"
    done; done ;;
  s26)   # the twenty-fifth and twenty-sixth sessions' fused INT8 GEMM (issue 14 acceptance 4a): the multicast clusters (plain
         # remote arrivals, persistent for every shape), programmatic dependent launch, paired epilogue stores, 128 × 256 tiles:
         # test_dec_igemm_gpu (every cluster shape, order and width bit for bit), bench igemm at batch 512 A8 for each tile width
         # (IGEMM26_TILES) and cluster shape (IGEMM26_CLUSTERS), the kernel's fences in SASS, Nsight Compute on 1x1 at both widths
    log=$(mktemp); timeout 150 env HARP_SHARED="$S" "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/test_dec_igemm_gpu" gpu > "$log" 2>&1
    rc=$?; grep -m 20 "CHECK failed" "$log"; grep "fused" "$log" | tail -3; tail -1 "$log"; echo "== test_dec_igemm_gpu: exit $rc"
    [ $rc = 0 ] || exit 1
    timeout 300 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" bench igemm --gpu --json --batch 512 --a-bits 8 \
      --tile ${IGEMM26_TILES:-128,256} --cluster ${IGEMM26_CLUSTERS:-1x1,2x1,1x2,2x2,1x4,2x4} 2>&1 | tee "$OUT/igemm26.jsonl" |
      grep -o '"\(m\|cluster\|tile_n\|resident_clusters\|fp16_ms\|cublas_ms\|fused_ms\|fused_cols_ms\|fused_persist_ms\|fused_persist_speedup\|fused_persist_nopdl_ms\)": [^,}]*' |
      sed 's/"//g; s/: /=/; s/_ms=/=/' | paste -d' ' - - - - - - - - - - -
    od=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1)
    if [ -n "$od" ]; then "$od" -sass "$P/bin/harp" 2>/dev/null | awk '/Function : .*igemm_wgmma_kernel/ {f=$3} /Function : / && !/igemm_wgmma/ {f=""} f && /MEMBAR|FENCE|SYNCS|UCGABAR/ {c[f" "$2]++} END {for (k in c) print c[k], k}' | sort -k2 | head -40
    else echo "no cuobjdump"; fi
    for t in ${IPROF_TILES:-128 256}; do IPROF_TILE=$t bash "$0" iprof; done ;;
  s26b)   # what s25 ran after the GEMM: the integer prefill on the RTN W4A4KV4 folder (test_gpu_packed, the bound from the exact
          # sums over the compared span; whole-file ppl with it off / on), the decode table on this card (BENCH26_QTYPES), then
          # the 2-bit GEMVs' share of the copy bandwidth at batch 1
    bash "$0" mkrtn
    HARP_CUDA_INT8=1 HARP_TEST_ONLY=rl_w4a4kv4_rtn GPU_TESTS="test_gpu_packed" TESTS_TAIL=6 bash "$0" tests
    for i8 in 0 1 0 1; do
      HARP_CUDA_INT8=$i8 /usr/bin/time -f "wall %e s" timeout 120 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" ppl --gpu --json \
        -m "$M/rl_w4a4kv4_rtn" -f "$T" 2>&1 | grep -o '"ppl": [0-9.]*\|"tokens_per_s": [0-9.]*\|wall [0-9.]* s' | paste -sd' ' | sed "s|^|rtn int8=$i8: |"
    done
    timeout 240 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" bench decode --gpu --json --shape llama2-7b \
      --qtypes ${BENCH26_QTYPES:-f16,e8p2,rvq3,rvq4,int4,qtip2} --rotations rht,harp --batch 1,4 2>&1 | tee "$OUT/decode26.jsonl" |
      grep -o '"\(qtype\|rotation\|batch\|ms_per_token\|tok_s\|pct_of_roofline\|copy_gbps\)": [^,}]*' | sed 's/"//g; s/: /=/' | paste -d' ' - - - - - - -
    # issue 15 acceptance 4's GEMV on this card (the tenth session's table came from an H100): B = 1, % of copy
    timeout 150 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" bench gemv --gpu --json --modes gemv \
      --qtypes ldp2_a4,ldp2,e8p2,qtip2,f16 --batch 1 2>&1 | tee "$OUT/gemv26.jsonl" |
      grep -o '"\(qtype\|m\|n\|pct_of_copy\)": [^,}]*' | sed 's/"//g; s/: /=/' | paste -d' ' - - - - ;;
  pending24)   # what the twenty-fourth session wrote and could not run (no device was lent), after `bash run.sh mkrtn` in a call of
               # its own: test_gpu_ppl (kld_ref moved into harp_ppl_params), the wgmma stage (test_dec_igemm_gpu: both tile orders and the
               # persistent kernel bit for bit; bench igemm at batch 512: fused_ms / fused_cols_ms / fused_persist_ms; test_gpu_packed on
               # the RTN folder; whole-file ppl with the integer prefill off / on), test_gpu_packed on the RTN folder with the integer
               # prefill on, then test_gpu_packed's ref-llama W/A/KV cases (the 4-bit cache's engine kernel now the default, the new bound)
    GPU_TESTS="test_gpu_ppl" TESTS_TAIL=4 bash "$0" tests
    bash "$0" wgmma
    HARP_CUDA_INT8=1 HARP_TEST_ONLY=rl_w4a4kv4_rtn GPU_TESTS="test_gpu_packed" TESTS_TAIL=6 bash "$0" tests
    HARP_TEST_ONLY="ref-llama W" GPU_TESTS="test_gpu_packed" TESTS_TAIL=8 bash "$0" tests ;;
  mkrtn)   # a W4A4KV4 folder with per-channel INT4 weights (RTN, Hadamard; the CUDA backend's integer prefill takes its linears),
           # made here in seconds: later stages' test_gpu_packed and ppl see it as an extra model
    [ -d "$M/rl_w4a4kv4_rtn" ] || timeout 200 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" quantize -m "$M/ref-llama" \
      --method wakv --w-bits 4 --a-bits 4 --kv-bits 4 --w-quant rtn --rotation hadamard --hessians /tmp/rl_hess \
      --calib "$S/data/ref-corpus/calib.txt" -o "$M/rl_w4a4kv4_rtn" -q 2>&1 | tail -2 ;;
  mkwakv)   # W/A/KV folders made here (issue 14 / 15 on the CUDA backend): ref-llama W4A4KV4 (GPTQ) and W2A4KV4 (LDP, fit (a)),
            # stories260K the same; Hadamard R1/R2, online R3/R4/Ro, QuaRot's fixed clip ratios
    ST="$M/stories260K/stories260K.bin"; head -c 100000 "$S/data/tinystories/val_head.txt" > /tmp/st_calib.txt
    for spec in "rl_w4a4kv4 $M/ref-llama $S/data/ref-corpus/calib.txt 32 512 4 gptq" "rl_w2a4kv4_ldp $M/ref-llama $S/data/ref-corpus/calib.txt 32 512 2 ldp" \
                "st_w4a4kv4 $ST /tmp/st_calib.txt 16 256 4 gptq" "st_w2a4kv4_ldp $ST /tmp/st_calib.txt 16 256 2 ldp"; do
      set -- $spec
      case " ${MKWAKV_ONLY:-$1} " in *" $1 "*) ;; *) continue ;; esac   # MKWAKV_ONLY="st_w4a4kv4 …": those folders only
      [ -d "$M/$1" ] || { /usr/bin/time -f "$1: quantize %e s" timeout 300 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" quantize -m "$2" \
          --hessians "/tmp/hw_$(basename "$2")" --calib "$3" --calib-nseq "$4" --calib-ctx "$5" -o "$M/$1" --method wakv --w-bits "$6" --a-bits 4 \
          --kv-bits 4 --w-quant "$7" --rotation hadamard --seed 0 --a-clip 0.9 --kv-clip 0.95 -q -t 16 > /dev/null; }
    done
    set --
    find_extra; export HARP_GPU_PACKED_MODELS="$extra"; echo "models:$extra" ;;
  ldpgpu)   # LDP fit (b) (--ldp-fit block) of ref-llama W2A4KV4 with the block on the device (--ldp-gpu) and on the CPU (16
            # threads), LDPGPU_STEPS (50) Adam steps a block on 16 windows of 256: seconds and the folders' ppl (8 windows of 512);
            # LDPGPU_DEVS="--ldp-gpu" runs the device one only
    for dv in ${LDPGPU_DEVS:---ldp-gpu cpu}; do
      [ "$dv" = cpu ] && dv=""
      o="$M/rl_ldpb${dv:+_gpu}"; rm -rf "$o"
      /usr/bin/time -f "ldpgpu ${dv:-cpu}: quantize %e s" timeout 280 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" quantize \
        -m "$M/ref-llama" --hessians /tmp/hw_ref-llama --calib "$S/data/ref-corpus/calib.txt" --calib-nseq 32 -o "$o" --method wakv \
        --w-bits 2 --a-bits 4 --kv-bits 4 --w-quant ldp --rotation hadamard --seed 0 --a-clip 0.9 --kv-clip 0.95 --ldp-fit block \
        --ldp-calib "$S/data/ref-corpus/calib.txt" --ldp-nseq 16 --ldp-ctx 256 --ldp-steps "${LDPGPU_STEPS:-50}" $dv -q -t 16 > /dev/null
      r=$(timeout 60 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" ppl --json -t 16 --max-chunks 8 -m "$o" -f "$T" 2>&1)
      echo "ldpgpu ${dv:-cpu}: ppl 8 windows $(echo "$r" | grep -o '"ppl": *[0-9.]*' | head -1)"
      rm -rf "$o"
    done ;;
  wakvppl)   # the W/A/KV folders' full-file ppl: CPU (16 threads) and GPU (`ppl --gpu`), seconds of each
    for m in $extra; do
      case "$(basename "$m")" in *w4a4kv4*|*w2a4kv4*) ;; *) continue ;; esac
      case "$m" in *st_*) t="$S/data/tinystories/val_head.txt" ;; *) t="$T" ;; esac
      for dv in "" --gpu; do
        r=$(/usr/bin/time -f "wall %e" timeout 300 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" ppl $dv -t 16 --json -m "$m" -f "$t" 2>&1)
        echo "wakvppl $(basename "$m") ${dv:-cpu} $(echo "$r" | grep -o '"ppl": *[0-9.]*' | head -1) $(echo "$r" | grep -o 'wall [0-9.]*')"
      done
    done ;;
  prefill)   # whole-process `ppl --gpu --json` seconds and the forwards alone (HARP_LOG=info), PREFILL_REPS rounds of PREFILL_BINS,
             # each with HARP_CUDA_FOLD = each of PREFILL_FOLD (default 1; "0 1": prefill's weight fold off and on)
    for i in $(seq "${PREFILL_REPS:-2}"); do for b in ${PREFILL_BINS:-harp}; do for f in ${PREFILL_FOLD:-1}; do for m in "$M/ref-llama" $extra; do
      case "$m" in *st_*) continue ;; esac
      r=$(HARP_CUDA_FOLD=$f HARP_CUDA_DENSE_F16=$(dense16 "$m") HARP_LOG=info timeout 60 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/$b" ppl --gpu \
          --json -m "$m" -f "$T" 2>&1)
      echo "prefill $b fold=$f $(basename "$m") $(echo "$r" | grep -o '"ppl": *[0-9.]*' | head -1) $(echo "$r" | grep -o '"seconds": *[0-9.]*' | head -1)" \
        "forwards $(echo "$r" | sed -n 's/.*forward(s) of up to [0-9]* windows \([0-9.]*\) s.*/\1/p' | head -1) s"
    done; done; done; done ;;
  tests)
    for t in ${GPU_TESTS:-test_cublas_dl test_qgemv_cuda test_harpfit_gpu test_dec_gpu test_gpu_kernels test_gpu_ppl test_gpu_packed test_trellis_cuda test_dec_igemm_gpu:gpu test_dec_kv4_gpu:gpu test_dec_ldp_gpu:gpu test_dec_fold_gpu:gpu test_blockfit_gpu}; do
      a=""; case "$t" in *:*) a=${t#*:}; t=${t%%:*} ;; esac   # NAME:ARG runs NAME ARG (the ctest's argument)
      # the failed checks first (a long test's tail hides them), then the last lines
      echo "== $t"; log=$(mktemp); timeout 200 env HARP_SHARED="$S" "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/$t" $a > "$log" 2>&1
      rc=$?; grep -m 20 "CHECK failed" "$log"; tail -"${TESTS_TAIL:-25}" "$log"; rm -f "$log"; echo "== $t: exit $rc"
    done ;;
  ppl)
    for m in "$M/ref-llama" $extra; do
      case "$m" in *st_*) continue ;; esac
      HARP_CUDA_DENSE_F16=$(dense16 "$m") /usr/bin/time -f "wall %e s" timeout 120 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" ppl --gpu --json -m "$m" -f "$T" 2>&1 | sed "s|^|$(basename $m) gpu-full: |"
      HARP_CUDA_DENSE_F16=$(dense16 "$m") timeout 60 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" ppl --gpu --json --max-chunks 64 -m "$m" -f "$T" 2>&1 | sed "s|^|$(basename $m) gpu-64: |"
      timeout 120 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" ppl -t 16 --json --max-chunks 64 -m "$m" -f "$T" 2>&1 | sed "s|^|$(basename $m) cpu-64: |"
    done ;;
  bench)
    timeout 300 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" bench decode --gpu --json --shape llama2-7b --qtypes ${BENCH_QTYPES:-f16,e8p2,rvq3,rvq4,int4} --pdl ${BENCH_PDL:-both} --fuse ${BENCH_FUSE:-both} --breakdown 2>&1 | tee "$OUT/decode7b.jsonl" ;;
  prof)   # per-kernel GPU time of the decode token (Nsight Compute, one metric), 2 layers, B = PROF_BATCH (1); PROF_ARGS adds bench flags, PROF_TAG names the files
    for q in ${PROF_QTYPES:-f16 e8p2}; do
      timeout 240 ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base -- \
        "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" bench decode --gpu --shape llama2-7b --qtypes $q \
        --rotations ${PROF_ROT:-rht} --batch ${PROF_BATCH:-1} --layers 2 --reps 3 --pdl on ${PROF_ARGS:-} > "$OUT/ncu_$q${PROF_TAG:-}.csv" 2> "$OUT/ncu_$q${PROF_TAG:-}.err"
      echo "ncu $q${PROF_TAG:-} exit $?"
      python3 - "$OUT/ncu_$q${PROF_TAG:-}.csv" <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"'))]
hdr, rows = rows[0], rows[1:]
k, v = hdr.index("Kernel Name"), hdr.index("Metric Value")
seq = [(r[k].split("(")[0][-40:], float(r[v].replace(",", "")) / 1e3) for r in rows]
agg = collections.OrderedDict()
for n, us in seq: agg.setdefault(n, []).append(us)
print("kernels profiled:", len(seq))
for n, a in agg.items(): print("  %-40s n=%4d mean %7.2f us  min %7.2f" % (n, len(a), sum(a) / len(a), min(a)))
print("first 48 in order:", " | ".join("%s %.1f" % (n[-18:], us) for n, us in seq[:48]))
PY
    done ;;
  xprof)   # Nsight Compute's full set on XPROF_COUNT (6) transform launches (xf_kernel) of `XPROF_BIN ppl --gpu` (harp) on each packed folder:
           # what limits the prefill transforms (acceptance 3a); the details CSV comes back, the key metrics are printed
    for m in $extra; do
      case "$m" in *st_*) continue ;; esac
      n=$(basename "$m")
      timeout 300 ncu --clock-control none --set full -k regex:xf_kernel --launch-count "${XPROF_COUNT:-6}" --csv --page details -- \
        "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/${XPROF_BIN:-harp}" ppl --gpu -q --max-chunks 16 -m "$m" -f "$T" \
        > "$OUT/xprof_$n.csv" 2> "$OUT/xprof_$n.err"
      echo "ncu --set full xf_kernel $n exit $?"
      python3 - "$OUT/xprof_$n.csv" <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"'))]
hdr, rows = rows[0], rows[1:]
i, mn, mu, mv = hdr.index("ID"), hdr.index("Metric Name"), hdr.index("Metric Unit"), hdr.index("Metric Value")
want = ("Duration", "Grid Size", "Block Size", "Registers Per Thread", "Dynamic Shared Memory Per Block", "Achieved Occupancy",
        "Theoretical Occupancy", "Compute (SM) Throughput", "Memory Throughput", "DRAM Throughput", "L1/TEX Cache Throughput",
        "L2 Cache Throughput", "L1/TEX Hit Rate", "Executed Ipc Active", "Issue Slots Busy", "Warp Cycles Per Issued Instruction",
        "No Eligible", "Active Warps Per Scheduler", "Eligible Warps Per Scheduler", "Shared Memory Configuration Size")
per = collections.OrderedDict()
for r in rows:
    if r[mn] in want: per.setdefault(r[i], []).append("%s %s%s" % (r[mn], r[mv], (" " + r[mu]) if r[mu] else ""))
for k, v in per.items(): print("launch", k, "|", "; ".join(v))
PY
    done ;;
  pprof)   # per-kernel GPU time of the prefill path (`harp ppl --gpu`, PPROF_CHUNKS windows, default 2): packed folder vs
           # dense fp32 (ref-llama with HARP_CUDA_DENSE_F16=0), for each binary of PPROF_BINS (default harp; EXTRA_BINS of the pack, e.g. "harp-base harp")
           # and each HARP_CUDA_FOLD of PPROF_FOLD (default 1)
    for b in ${PPROF_BINS:-harp}; do for f in ${PPROF_FOLD:-1}; do for m in $extra "$M/ref-llama"; do
      case "$m" in *st_*) continue ;; esac
      case "$f$m" in 0*/ref-llama) continue ;; esac   # the dense path has no fold
      n=$(basename "$m")f$f
      HARP_CUDA_FOLD=$f HARP_CUDA_DENSE_F16=$(dense16 "$m") timeout 200 ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base -- \
        "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/$b" ppl --gpu -q --max-chunks "${PPROF_CHUNKS:-2}" -m "$m" \
        -f "$T" > "$OUT/pprof_${b}_$n.csv" 2> "$OUT/pprof_${b}_$n.err"
      echo "ncu ppl $b $n exit $?"
      python3 - "$OUT/pprof_${b}_$n.csv" <<'PY'
import csv, sys, collections, re
rows = [r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"'))]
hdr, rows = rows[0], rows[1:]
k, v = hdr.index("Kernel Name"), hdr.index("Metric Value")
def name(s):   # the engine's kernels live in an anonymous namespace: drop it before cutting at "(" / "<"
    for p in ("(anonymous namespace)::", "<unnamed>::", "void "): s = s.replace(p, "")
    return re.split(r"[(<]", s.strip())[0][-48:] or s[:48]
agg = collections.OrderedDict()
for r in rows: agg.setdefault(name(r[k]), []).append(float(r[v].replace(",", "")) / 1e3)
tot = sum(sum(a) for a in agg.values())
print("kernels %d, total %.1f us" % (len(rows), tot))
for n, a in sorted(agg.items(), key=lambda x: -sum(x[1]))[:16]: print("  %-48s n=%5d total %9.1f us  mean %7.2f" % (n, len(a), sum(a), sum(a) / len(a)))
PY
    done; done; done ;;
  pfold)   # prefill's weight fold at the Llama-2-7B shapes: one packed linear, transforms on the rows vs folded, and
           # the cost rule's pick (bench gemv --modes pfold) at PFOLD_ROWS rows (default 2048 and 8192)
    for r in ${PFOLD_ROWS:-2048 8192}; do
      timeout 240 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" bench gemv --gpu --json --modes pfold \
        --qtypes ${PFOLD_QTYPES:-e8p2} --prefill-rows "$r" --reps 10 2>&1 | tee -a "$OUT/pfold.jsonl"
    done ;;
  cpugemv)   # the CPU GEMV targets (issues 13 and 15: ≥ 3× OpenBLAS sgemv at 4096 × 4096) on the host's cores
    timeout 240 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" bench gemv --json --threads ${CPU_THREADS:-16} \
      --kinds fp32,fp16,e8p2,e8p2_nohad,ldp2,ldp2_a4,qtip2,qtip2_1mad --shapes 4096x4096 --min-time 0.3 2>&1 | tee "$OUT/cpugemv.jsonl" ;;
  cublas)   # cuBLAS opened at first use: the device's library found, the error path, start-up RSS
    LD_DEBUG=libs timeout 60 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" ppl --gpu -q --max-chunks 2 \
      -m "$M/stories260K/stories260K.bin" -f "$S/data/tinystories/val_head.txt" 2>&1 | grep -E "calling init: .*cublas" | head -3
    HARP_CUBLAS=/nonexistent/libcublas.so.13 timeout 60 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" ppl --gpu -q \
      --max-chunks 2 -m "$M/stories260K/stories260K.bin" -f "$S/data/tinystories/val_head.txt" > /dev/null 2> "$OUT/cublas_err.txt"
    echo "missing cuBLAS: exit $?, $(wc -l < "$OUT/cublas_err.txt") stderr line(s): $(head -c 300 "$OUT/cublas_err.txt")"
    /usr/bin/time -f "harp --version peak RSS %M KB" "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" --version ;;
  wgmma)   # the fused int8 GEMM + epilogue on wgmma (dec_igemm_epi): its test (bit-identical to the twins at awkward sizes, every
           # cluster shape), bench igemm at batch 512 for each cluster shape (IGEMM_CLUSTERS), then bench igemm with IGEMM_ARGS,
           # one compact line per row (whole rows in $OUT/igemm*.jsonl), then test_gpu_packed's ref-llama W/A/KV cases
    # (a kernel that never finishes would hold the machine: the test gets 90 s, and the rest runs only if it passed)
    log=$(mktemp); timeout 90 env HARP_SHARED="$S" "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/test_dec_igemm_gpu" gpu > "$log" 2>&1
    rc=$?; grep -m 20 "CHECK failed" "$log"; grep "fused\|int8 codes" "$log" | tail -${TESTS_TAIL:-6}; tail -2 "$log"; echo "== test_dec_igemm_gpu: exit $rc"
    [ $rc = 0 ] || exit 1
    brief() { while read -r l; do echo "$l" | grep -o '"\(m\|n\|batch\|a_bits\|path\|cluster\|fp16_ms\|int8_ms\|speedup\|quant_ms\|gemm_ms\|epilogue_ms\|fused_ms\|fused_speedup\|fused_cols_ms\|fused_cols_speedup\|fused_persist_ms\|fused_persist_speedup\|fused_persist_nopdl_ms\)": [^,}]*' | sed 's/"//g; s/: /=/; s/_ms=/=/' | paste -sd' '; done; }
    for c in ${IGEMM_CLUSTERS:-1x1}; do   # each row times both tile orders (fused_ms rows first, fused_cols_ms channels first)
      timeout 100 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" bench igemm --gpu --json --batch 512 --a-bits 8 --cluster $c 2>&1 |
        tee -a "$OUT/igemm_clusters.jsonl" | brief
    done
    [ -n "${IGEMM_ARGS:-}" ] && timeout 200 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" bench igemm --gpu --json $IGEMM_ARGS 2>&1 |
      tee "$OUT/igemm.jsonl" | brief
    HARP_TEST_ONLY=${WGMMA_PACKED_ONLY:-rl_w4a4kv4_rtn} GPU_TESTS="test_gpu_packed" TESTS_TAIL=6 bash "$0" tests
    for m in $extra; do for i8 in 0 1 0 1; do   # the integer prefill against the fake-quantized one, whole-file ppl, alternating
      HARP_CUDA_INT8=$i8 /usr/bin/time -f "wall %e s" timeout 120 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" ppl --gpu --json \
        -m "$m" -f "$T" 2>&1 | grep -o '"ppl": [0-9.]*\|"tok_per_s": [0-9.]*\|"tokens_per_s": [0-9.]*\|wall [0-9.]* s' | paste -sd' ' | sed "s|^|$(basename $m) int8=$i8: |"
    done; done ;;
  iprof)   # the fused INT8 GEMM under Nsight Compute's full set at batch 512 A8 (IPROF_SHAPES, IPROF_CLUSTER, IPROF_TILE): what
           # limits it (shared-memory vs L2 throughput, stall reasons); one persistent launch after the warm-up ones
    for sh0 in ${IPROF_SHAPES:-4096x4096 4096x11008}; do
      sh=$sh0; [ "${IPROF_TILE:-128}" = 128 ] || sh="${sh0}_n${IPROF_TILE}"
      timeout 200 ncu --set full --import-source no --launch-skip 4 --launch-count 1 --kernel-name-base function \
        --kernel-name regex:igemm_wgmma -f -o "$OUT/iprof_$sh" -- "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" \
        bench igemm --gpu --shapes "$sh0" --batch 512 --a-bits 8 --reps 3 --calls 2 --cluster "${IPROF_CLUSTER:-1x1}" \
        --tile "${IPROF_TILE:-128}" > "$OUT/iprof_$sh.log" 2>&1
      echo "iprof $sh exit $?"; tail -2 "$OUT/iprof_$sh.log"
      ncu -i "$OUT/iprof_$sh.ncu-rep" --page details > "$OUT/iprof_$sh.txt" 2>&1
      ncu -i "$OUT/iprof_$sh.ncu-rep" --page raw --csv > "$OUT/iprof_${sh}_raw.csv" 2>&1
      python3 - "$OUT/iprof_${sh}_raw.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
if len(rows) < 3: sys.exit(print("no raw rows"))
hdr, units, vals = rows[0], rows[1], rows[2]
st = sorted(((float(v.replace(',', '')), h) for h, v in zip(hdr, vals)
             if h.startswith("smsp__average_warps_issue_stalled_") and h.endswith("_per_issue_active.ratio") and v.replace(',', '').replace('.', '', 1).isdigit()), reverse=True)
print("stalls per issue:", "; ".join("%s %.2f" % (h[len("smsp__average_warps_issue_stalled_"):-len("_per_issue_active.ratio")], v) for v, h in st[:8]))
for k in ("l1tex__data_pipe_lsu_wavefronts_mem_shared.sum", "smsp__inst_executed.sum", "lts__t_bytes.sum", "dram__bytes_read.sum",
          "l1tex__data_bank_reads.avg.pct_of_peak_sustained_elapsed", "l1tex__data_bank_writes.avg.pct_of_peak_sustained_elapsed",
          "sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active", "lts__t_sectors_srcunit_tex.sum"):
    if k in hdr: print(k, vals[hdr.index(k)], units[hdr.index(k)])
PY
      grep -E "^  [a-z_]+.*\(|Duration|DRAM Throughput|Memory Throughput|L1/TEX Cache Throughput|L2 Cache Throughput|Compute \(SM\)|Issue Slots Busy|Executed Ipc A|Registers Per|Shared Memory Configuration|Warp Cycles Per Issued|No Eligible|Stall|L2 Hit|Block Limit|Grid Size|Cluster" "$OUT/iprof_$sh.txt" | head -50
    done ;;
  igemm)   # issue 14 acceptance 4: INT8 prefill GEMM vs cuBLAS fp16 (Llama-2-7B shapes, batch 1/16/512), 4-bit KV cache at ctx 4096
    timeout 200 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" bench igemm --gpu --json 2>&1 | tee "$OUT/igemm.jsonl"
    timeout 200 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" bench decode --gpu --json --shape llama2-7b --qtypes f16,int4 \
      --rotations rht --batch 1,4 --kv-bits 16,4 --pos 4095 2>&1 | tee "$OUT/kv4.jsonl" ;;
  ldp)   # issue 15 acceptance 4: the ldp2 GEMV (int4 / fp16 activations) at the Llama-2-7B shapes, pct_of_copy >= 50 %;
         # --variants and the -fma kinds: 8 vs 16 k-split warps and the decode's shifts on the FMA vs the ALU pipe
    timeout 300 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" bench gemv --gpu --json --modes gemv \
      --qtypes ${LDP_QTYPES:-ldp2_a4,ldp2,ldp2_a4-unstaged,ldp2-unstaged,e8p2,f16} --batch 1,4 --variants 2>&1 | tee "$OUT/ldpgemv.jsonl" ;;
  kprof)   # one GEMV kernel under Nsight Compute's full set (limiter, pipes, stall reasons): KPROF_QTYPES at KPROF_SHAPES, B = 1
    for q in ${KPROF_QTYPES:-ldp2_a4}; do for sh in ${KPROF_SHAPES:-22016x4096}; do
      timeout 200 ncu --set full --launch-count 1 --kernel-name-base function --kernel-name "regex:${KPROF_KERNEL:-.*}" -- \
        "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" bench gemv --gpu --profile --modes gemv --shapes "$sh" \
        --qtypes "$q" --batch 1 > "$OUT/kprof_${q}_$sh.txt" 2>&1
      echo "kprof $q $sh exit $?"
      grep -E "^  [a-z_]+.*\(|Duration|DRAM Throughput|Memory Throughput|Compute \(SM\)|Issue Slots Busy|Executed Ipc A|Registers Per|Achieved Occupancy|Theoretical Occupancy|Warp Cycles Per Issued|No Eligible|One or More Eligible|Stall|Block Limit|Dynamic Shared|L1/TEX Hit|L2 Hit|Executed Instructions  " "$OUT/kprof_${q}_$sh.txt" | head -60
    done; done ;;
  peer)   # issue 12 acceptance 2: harp's 2-bit GEMV against ggml's iq2_xxs / iq2_xs / q2_K (scripts/peer/ggml_mulmat, packed
          # with EXTRA_BINS), Llama-2-7B shapes, cold weights, same run; weights per second = m·n / time
    timeout 200 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/ggml_mulmat" --types ${PEER_TYPES:-f16,iq2_xxs,iq2_xs,q2_K,q4_0} \
      --batch ${PEER_BATCH:-1} 2>&1 | tee "$OUT/ggml.jsonl"
    timeout 200 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" bench gemv --gpu --json --modes gemv \
      --qtypes e8p2,f16 --batch ${PEER_BATCH:-1} 2>&1 | tee "$OUT/harp_gemv.jsonl" ;;
  ctxkv)   # the product path (generate --gpu) with the fp32 and the fp16 KV cache, the fp16 one with the engine's
           # attention and without (HARP_CUDA_ENGINE_ATTN), alternating, 8 layers, positions 511 and 4 095; then the
           # whole token at 511 (docs/results/decode-gpu.md "thirteenth")
    for pos in 511 4095; do for e in 0 1 0 1; do
      HARP_CUDA_ENGINE_ATTN=$e timeout 60 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" bench decode --gpu --json \
        --shape llama2-7b --layers 8 --qtypes e8p2 --rotations rht --batch 1 --path ctx --ctx-kv 16,32 --pos $pos --reps 40 2>&1 |
        grep '"path"' | sed "s/^/engine_attn=$e /" | tee -a "$OUT/ctxkv.jsonl"
    done; done
    timeout 120 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" bench decode --gpu --json --shape llama2-7b --qtypes e8p2 \
      --rotations rht --batch 1 --path engine,ctx --ctx-kv 16,32 --reps 40 2>&1 | grep '"path"' | tee -a "$OUT/ctxkv.jsonl" ;;
  bench70)
    timeout 200 "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" bench decode --gpu --json --shape llama2-70b --qtypes e8p2 --rotations rht,harp --batch 1 --reps 10 2>&1 | tee "$OUT/decode70b.jsonl" ;;
  esac
done
