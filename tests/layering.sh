#!/usr/bin/env bash
# Include-order test (docs/design.md, "Module order"): every #include "..." in src/, tools/ and bench/
# must point left in the module order, never into another module's *_internal.h, and the CLI and the
# benchmarks use only the public headers (bench/bench.h is their one door into module APIs).
# Prints every violation; exits 1 if there is one.
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root" || exit 1
order="core io tok rotate quant harpfit qformat model cuda calib qmodel eval"
rank() {
  local i=0 m
  for m in $order; do
    [ "$m" = "$1" ] && { echo $i; return; }
    i=$((i + 1))
  done
  echo -1
}
fail=0
bad() { echo "FAIL $1"; fail=1; }
nfiles=0
while IFS= read -r f; do
  nfiles=$((nfiles + 1))
  mod=${f#src/}; mod=${mod%%/*}
  r=$(rank "$mod")
  [ "$r" -ge 0 ] || { bad "$f: module '$mod' is not in the order ($order)"; continue; }
  while IFS= read -r inc; do
    case "$inc" in
      harp.h|harp/*) continue ;;                  # public API
      */*) ;;
      *) continue ;;                              # same-directory include
    esac
    dep=${inc%%/*}
    [ "$dep" = ".." ] && { bad "$f: relative include \"$inc\""; continue; }
    d=$(rank "$dep")
    [ "$d" -ge 0 ] || { bad "$f: includes \"$inc\" of unknown module '$dep'"; continue; }
    [ "$d" -le "$r" ] || bad "$f: includes \"$inc\" ($dep is right of $mod in: $order)"
    if [ "$dep" != "$mod" ]; then
      case "$inc" in *_internal.h) bad "$f: includes another module's internals \"$inc\"" ;; esac
    fi
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done < <(find src -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' | sort)
allowed_cli="cli.h commands.h report.h bench.h"
while IFS= read -r f; do
  nfiles=$((nfiles + 1))
  while IFS= read -r inc; do
    case "$inc" in
      harp.h|harp/*) continue ;;
    esac
    # bench/bench.h is the benchmarks' one door into library internals (module APIs, never *_internal.h)
    if [ "$f" = bench/bench.h ]; then
      case "$inc" in
        *_internal.h) bad "$f: includes module internals \"$inc\"" ;;
        */*) [ "$(rank "${inc%%/*}")" -ge 0 ] || bad "$f: includes \"$inc\" of unknown module" ;;
      esac
      continue
    fi
    ok=0
    for a in $allowed_cli; do [ "$inc" = "$a" ] && ok=1; done
    [ $ok = 1 ] || bad "$f: the CLI and benchmarks use only include/ (and cli.h, bench.h): \"$inc\""
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
  [ "$f" != bench/bench.h ] && grep -q '^[[:space:]]*#[[:space:]]*include[[:space:]]*<cblas.h>' "$f" && bad "$f: includes <cblas.h> (BLAS belongs to the library)"
done < <(find tools bench -name '*.c' -o -name '*.h' | sort)
echo "layering: $nfiles files checked against: $order"
exit $fail
