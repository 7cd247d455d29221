#!/usr/bin/env bash
# One command on a fresh machine: install dependencies, build, and measure the perplexity of the
# reference model on its test split (ctx 512). Pass other harp ppl flags to override.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"
shared="${HARP_SHARED:-../shared}"
model="$shared/models/ref-llama"
text="$shared/data/ref-corpus/test.txt"
if [ ! -d "$model" ] || [ ! -f "$text" ]; then
  echo "The reference model or text is missing: expected $model and $text." >&2
  echo "Run: ./build/harp ppl -m <model folder or .bin> -f <text file> [--ctx 512]" >&2
  exit 1
fi
exec ./build/harp ppl -m "$model" -f "$text" --ctx 512 "$@"
