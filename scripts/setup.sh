#!/usr/bin/env bash
# Installs everything harp needs to build and test on Debian 12 (bookworm).
# Idempotent: packages already present are skipped by apt.
#   --browser (or HARP_SETUP_BROWSER=1): also chromium, used only by the report rendering test
#   (tests/cli/report_render.sh, skipped without it). Not needed to build, run or test anything else.
#   --list: print the packages it would install, one a line, and install nothing.
set -euo pipefail
browser=${HARP_SETUP_BROWSER:-0}
list=0
for a in "$@"; do
  case "$a" in
    --browser) browser=1 ;;
    --list) list=1 ;;
    *) echo "setup.sh: unknown argument '$a' (--browser, --list)" >&2; exit 2 ;;
  esac
done
pkgs=(
  build-essential cmake pkg-config
  libopenblas-dev liblapacke-dev   # sgemm / Cholesky / QR
  libcjson-dev                     # config.json, safetensors headers, tokenizer.json
  libpcre2-dev                     # byte-level BPE pre-tokenizer regex
  libbz2-dev                       # HellaSwag data is bz2-compressed
  libssl-dev                       # sha256 (libcrypto) for golden id hashes and file identities
  libomp-dev clang libclang-rt-14-dev   # OpenMP for clang builds, libFuzzer smoke runs
)
if [ "$browser" = 1 ]; then pkgs+=(chromium); fi   # report rendering test only
if [ "$list" = 1 ]; then printf '%s\n' "${pkgs[@]}"; exit 0; fi
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "setup: dependencies present"
