#!/usr/bin/env bash
# Packs harp for the GPU device machine (docs/gpu.md): builds build-cuda here, then writes into
# DEST (default /work/main/.gpu/pack, git-ignored there) one xz payload holding the harp binary, the
# GPU test executables, every shared library they load except the CUDA driver and cuBLAS (those
# come from the device image), Debian's dynamic loader and libc (the device's glibc may differ), the
# models ref-llama + stories260K and the evaluation texts, laid out like ../shared; plus small
# scripts: DEST/harp (runs harp through the packed loader), DEST/gpu-tests (the ctest label "gpu"
# executables and test_cublas_dl) and DEST/eval-models (test + WikiText-2 ppl and KLD of every extra model).
# On the device (carry=[".gpu/pack"]): .gpu/pack/gpu-tests; .gpu/pack/harp ppl --gpu ...; the
# unpacked shared/ folder is $HARP_PACK_SHARED (printed by `.gpu/pack/harp --where`).
# Options: DEST as $1; EXTRA_MODELS="dir1 dir2" adds quantized model folders under shared/models/;
# EXTRA_BINS="path/harp-old ..." adds executables to bin/ (run one with HARP_PACK_BIN=harp-old DEST/harp);
# PACK_TEXTS="ref-corpus/test.txt ..." replaces the list of evaluation texts; XZ_LEVEL (default -9e) the compression;
# PACK_MODELS=0 leaves out models and texts (a pack for a peer binary, e.g. EXTRA_BINS=/work/peer/ggml/build/ggml_mulmat).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dest="${1:-/work/main/.gpu/pack}"
shared="${HARP_SHARED:-$(cd .. && pwd)/shared}"
[ -d "$shared/models/ref-llama" ] || shared=/work/shared
export PATH="$PATH:/usr/local/cuda/bin"

echo "== build-cuda"
cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DHARP_CUDA=ON -DHARP_FATAL_WARNINGS=ON \
  -DHARP_SHARED_DIR="$shared" >/dev/null
cmake --build build-cuda -j "$(nproc)" --target harp test_gpu_kernels test_gpu_ppl test_qgemv_cuda test_harpfit_gpu test_dec_gpu test_gpu_packed test_trellis_cuda test_cublas_dl test_dec_igemm_gpu test_dec_kv4_gpu test_dec_ldp_gpu test_dec_fold_gpu test_blockfit_gpu >/dev/null

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$stage/shared/models" "$stage/shared/data"
bins="build-cuda/harp build-cuda/tests/test_gpu_kernels build-cuda/tests/test_gpu_ppl build-cuda/tests/test_qgemv_cuda
      build-cuda/tests/test_harpfit_gpu build-cuda/tests/test_dec_gpu build-cuda/tests/test_gpu_packed
      build-cuda/tests/test_trellis_cuda build-cuda/tests/test_cublas_dl build-cuda/tests/test_dec_igemm_gpu
      build-cuda/tests/test_dec_kv4_gpu build-cuda/tests/test_dec_ldp_gpu build-cuda/tests/test_dec_fold_gpu
      build-cuda/tests/test_blockfit_gpu"
bins="$bins ${EXTRA_BINS:-}"
cp $bins "$stage/bin/"
strip "$stage"/bin/* 2>/dev/null || true

echo "== libraries"
# Everything ldd resolves, minus the driver and cuBLAS (hundreds of MB, present on the device). harp
# opens cuBLAS at first use (src/cuda/cublas_dl.c), so ldd of the binaries does not show it: what
# cuBLAS itself needs (librt, libdl, ... of the packed glibc) is added from this machine's copy.
# (awk reads to the end: an early exit would let ldconfig die of SIGPIPE, which pipefail turns into a
# failed pack now and then)
cublas=$(/sbin/ldconfig -p | awk '$1 == "libcublas.so.13" && !f {print $NF; f = 1}')
[ -n "$cublas" ] || cublas=/usr/local/cuda/lib64/libcublas.so.13
for b in $bins "$cublas"; do ldd "$b"; done | awk '/=>/ && $3 ~ /^\// {print $3}' | sort -u | while read -r so; do
  case "$(basename "$so")" in
    libcuda.so*|libcublas.so*|libcublasLt.so*) continue ;;
  esac
  cp -L "$so" "$stage/lib/$(basename "$so")"
done
cp -L /lib64/ld-linux-x86-64.so.2 "$stage/lib/ld-linux-x86-64.so.2"
strip --strip-unneeded "$stage"/lib/*.so* 2>/dev/null || true

order="COMMIT bin lib"
if [ "${PACK_MODELS:-1}" = 1 ]; then
echo "== models and texts"
mkdir -p "$stage/shared/models/ref-llama" "$stage/shared/models/stories260K"
for f in config.json model.safetensors tokenizer.model tokenizer.json tokenizer_config.json \
         special_tokens_map.json generation_config.json golden.json; do
  [ -f "$shared/models/ref-llama/$f" ] && cp "$shared/models/ref-llama/$f" "$stage/shared/models/ref-llama/"
done
cp "$shared"/models/stories260K/* "$stage/shared/models/stories260K/"
# PACK_TEXTS narrows the texts where the 64 MiB carry limit is tight (a pack of several folders).
for f in ${PACK_TEXTS:-ref-corpus/test.txt ref-corpus/calib.txt wikitext-2-raw/wiki.test.raw tinystories/val_head.txt}; do
  mkdir -p "$stage/shared/data/$(dirname "$f")"
  cp "$shared/data/$f" "$stage/shared/data/$f"
done
for m in ${EXTRA_MODELS:-}; do
  [ -f "$m/config.json" ] || { echo "EXTRA_MODELS: $m is not a model folder" >&2; exit 2; }
  cp -r "$m" "$stage/shared/models/"
done
# Order matters: quantized folders carry the same fp16 embedding table as ref-llama (8 MB), and
# xz -9 (64 MB dictionary) stores each repeat as a back-reference only when the copies are close.
order="$order shared/data shared/models/stories260K shared/models/ref-llama"
for m in ${EXTRA_MODELS:-}; do order="$order shared/models/$(basename "$m")"; done
fi
git -C "$root" rev-parse HEAD >"$stage/COMMIT"

mkdir -p "$dest"
rm -f "$dest/payload.tar.xz"
tar -C "$stage" -cf - $order | xz -T0 ${XZ_LEVEL:--9e} >"$dest/payload.tar.xz"

# Unpacks the payload once per machine (into /tmp, keyed by its checksum) and sets P, LP.
cat >"$dest/env.sh" <<'EOF'
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
key=$(cksum <"$here/payload.tar.xz" | cut -d' ' -f1)
P=/tmp/harp-pack-$key
if [ ! -f "$P/.done" ]; then
  mkdir -p "$P" && xz -dc "$here/payload.tar.xz" | tar -C "$P" -xf - && touch "$P/.done"
fi
# cuBLAS and the driver from the device image; the packed libraries first.
LP="$P/lib"
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -e "$d/libcublas.so.13" ] && LP="$LP:$d"
done
for so in libcublas.so.13 libcublasLt.so.13 libcuda.so.1; do
  f=$(/sbin/ldconfig -p 2>/dev/null | awk -v n="$so" '$1 == n && !f {print $NF; f = 1}')
  [ -n "$f" ] && LP="$LP:$(dirname "$f")"
done
for d in /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu; do
  [ -e "$d/libcuda.so.1" ] && LP="$LP:$d"
done
export HARP_PACK_SHARED="$P/shared"
export HARP_SHARED="$P/shared"
EOF
cat >"$dest/harp" <<'EOF'
#!/usr/bin/env bash
# harp through the packed loader and libraries (scripts/gpu_pack.sh).
set -e
. "$(dirname "$0")/env.sh"
if [ "${1:-}" = --where ]; then echo "$P/shared"; exit 0; fi
exec "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/${HARP_PACK_BIN:-harp}" "$@"
EOF
cat >"$dest/gpu-tests" <<'EOF'
#!/usr/bin/env bash
# The ctest label "gpu" executables and test_cublas_dl (cuBLAS found by dlopen through the packed
# loader), through the packed loader; exit status 0 only if all pass.
. "$(dirname "$0")/env.sh"
export HARP_TMP=${TMPDIR:-/tmp}
rc=0
for t in test_cublas_dl test_qgemv_cuda test_gpu_kernels test_gpu_ppl test_harpfit_gpu test_dec_gpu test_gpu_packed test_trellis_cuda \
         test_dec_igemm_gpu:gpu test_dec_kv4_gpu:gpu test_dec_ldp_gpu:gpu test_dec_fold_gpu:gpu; do   # NAME:ARG runs NAME ARG (the ctest's argument)
  a=""; case "$t" in *:*) a=${t#*:}; t=${t%%:*} ;; esac
  echo "== $t"
  "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/$t" $a
  s=$?
  echo "== $t: exit $s"
  [ $s -eq 0 ] || rc=1
done
exit $rc
EOF
cat >"$dest/eval-models" <<'EOF'
#!/usr/bin/env bash
# For every model folder in the pack other than ref-llama / stories260K (or the names given as
# arguments): full-file GPU perplexity on ref-corpus test and WikiText-2 at ctx 512 with KLD against
# ref-llama, one JSON line per (model, text) on stdout, with the model and text names added.
. "$(dirname "$0")/env.sh"
S="$P/shared"; rc=0
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for d in "$S"/models/*/; do
    n=$(basename "$d"); case "$n" in ref-llama|stories260K) continue ;; esac; names+=("$n")
  done
fi
for n in "${names[@]}"; do
  for t in ref-corpus/test.txt wikitext-2-raw/wiki.test.raw; do
    if j=$("$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/harp" ppl --gpu --json --ctx 512 \
        -m "$S/models/$n" -f "$S/data/$t" --kld-ref "$S/models/ref-llama" 2>"/tmp/eval-$n.err"); then
      echo "{\"model\": \"$n\", \"text\": \"$t\", ${j#\{}"
    else
      echo "{\"model\": \"$n\", \"text\": \"$t\", \"error\": \"$(tail -1 "/tmp/eval-$n.err" | tr -d '"\\')\"}"
      rc=1
    fi
  done
done
exit $rc
EOF
chmod +x "$dest/harp" "$dest/gpu-tests" "$dest/eval-models"
du -sh "$dest"/*
echo "packed into $dest (commit $(cat "$stage/COMMIT"))"
