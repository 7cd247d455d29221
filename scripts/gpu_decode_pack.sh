#!/usr/bin/env bash
# Packs the GPU decode-kernel measurements for the device machine (docs/results/decode-gpu.md), in the
# manner of scripts/gpu_pack.sh but without models (the workloads are synthetic): builds build-cuda
# here, then writes into DEST (default /work/main/.gpu/gpu-helper, git-ignored there)
#   payload.tar.xz   harp, test_dec_gpu, test_dec_pack, every shared library they load except the CUDA
#                    driver and cuBLAS (from the device image), Debian's loader and libc
#   peer.tar.xz      the ggml peer harness (scripts/peer/build_ggml_peer.sh), when PEER_BIN is given
#   env.sh, run      run PROGRAM ARGS... through the packed loader
#   measure          the whole measurement: tests, harp bench gemv --gpu, the peer, Nsight Compute
#                    profiles and the SASS of the GEMV kernels, logs under $OUT
# On the device: carry [".gpu/gpu-helper"], command `bash .gpu/gpu-helper/measure`.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-/work/main/.gpu/gpu-helper}"
export PATH="$PATH:/usr/local/cuda/bin"
cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DHARP_CUDA=ON -DHARP_FATAL_WARNINGS=ON >/dev/null
cmake --build build-cuda -j "$(nproc)" --target harp test_dec_gpu test_dec_pack >/dev/null
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
bins="build-cuda/harp build-cuda/tests/test_dec_gpu build-cuda/tests/test_dec_pack"
[ -n "${PEER_BIN:-}" ] && bins="$bins $PEER_BIN"
cp $bins "$stage/bin/"
# harp opens cuBLAS at first use (dlopen): add what cuBLAS itself needs, as scripts/gpu_pack.sh does.
cublas=$(/sbin/ldconfig -p | awk '$1 == "libcublas.so.13" {print $NF; exit}')
[ -n "$cublas" ] || cublas=/usr/local/cuda/lib64/libcublas.so.13
for b in $bins "$cublas"; do ldd "$b"; done | awk '/=>/ && $3 ~ /^\// {print $3}' | sort -u | while read -r so; do
  case "$(basename "$so")" in libcuda.so*|libcublas.so*|libcublasLt.so*) continue ;; esac
  cp -L "$so" "$stage/lib/$(basename "$so")"
done
cp -L /lib64/ld-linux-x86-64.so.2 "$stage/lib/"
strip --strip-unneeded "$stage"/lib/*.so* 2>/dev/null || true
# libx: the same without glibc, for tools that must start the program with the device's own loader
# (Nsight Compute); the binaries need no glibc newer than the device's.
mkdir -p "$stage/libx"
for f in "$stage"/lib/*.so*; do
  case "$(basename "$f")" in libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|libresolv.so*|ld-linux*) ;; *) ln "$f" "$stage/libx/" ;; esac
done
git rev-parse HEAD >"$stage/COMMIT"
mkdir -p "$dest"
rm -f "$dest"/*.tar.xz "$dest"/*.tar.gz
# COMPRESS=gz (gzip -1) when the machine is too loaded for xz; the device's tar reads either.
if [ "${COMPRESS:-xz}" = gz ]; then
  tar -C "$stage" -cf - COMMIT lib libx $(cd "$stage" && ls bin/* | grep -v ggml_mulmat) | gzip -1 >"$dest/payload.tar.gz"
else
  tar -C "$stage" -cf - COMMIT lib libx $(cd "$stage" && ls bin/* | grep -v ggml_mulmat) | xz -T0 -6 >"$dest/payload.tar.xz"
fi
[ -n "${PEER_BIN:-}" ] && tar -C "$stage" -cf - bin/ggml_mulmat | xz -T0 -6 >"$dest/peer.tar.xz"
cat >"$dest/env.sh" <<'EOS'
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
P=/tmp/harp-dec-$(cat "$here"/*.tar.* | cksum | cut -d' ' -f1)
if [ ! -f "$P/.done" ]; then
  mkdir -p "$P" && for f in "$here"/*.tar.*; do tar -C "$P" -xf "$f"; done && touch "$P/.done"
fi
LP="$P/lib"
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu; do
  [ -d "$d" ] && LP="$LP:$d"
done
EOS
cat >"$dest/run" <<'EOS'
#!/usr/bin/env bash
# run PROGRAM ARGS...: a packed program through the packed loader.
. "$(dirname "$0")/env.sh"
prog="$1"; shift
exec "$P/lib/ld-linux-x86-64.so.2" --library-path "$LP" "$P/bin/$prog" "$@"
EOS
cat >"$dest/runx" <<'EOS'
#!/usr/bin/env bash
# runx [TOOL ARGS... --] PROGRAM ARGS...: a packed program with the device's loader and libc (for ncu).
. "$(dirname "$0")/env.sh"
export LD_LIBRARY_PATH="$P/libx:${LP#*:}"
pre=()
if printf '%s\n' "$@" | grep -qx -- '--'; then
  while [ "$1" != "--" ]; do pre+=("$1"); shift; done; shift
fi
prog="$1"; shift
exec "${pre[@]}" "$P/bin/$prog" "$@"
EOS
cp scripts/gpu_decode_measure.sh "$dest/measure"
chmod +x "$dest/run" "$dest/runx" "$dest/measure"
du -sh "$dest"/*
echo "packed into $dest (commit $(cat "$stage/COMMIT"))"
