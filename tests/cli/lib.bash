# Helpers sourced by the CLI tests (tests/cli/*.sh); not a test itself.

# expect_error RC GREP_MODE WANT CMD...: CMD must exit with RC ("nz": any non-zero code) and print
# exactly one line on stderr matching WANT (GREP_MODE -F: a fixed string, -E: a regular
# expression). Prints "ok   <the line>" or a FAIL block and sets fail=1. Output goes to $T/out, $T/err.
expect_error() {
  local want_rc=$1 mode=$2 want=$3
  shift 3
  "$@" > "$T/out" 2> "$T/err"
  local rc=$? lines
  lines=$(wc -l < "$T/err")
  if { [ "$want_rc" = nz ] && [ $rc -eq 0 ]; } || { [ "$want_rc" != nz ] && [ $rc -ne "$want_rc" ]; } ||
     [ "$lines" -ne 1 ] || ! grep -q "$mode" -- "$want" "$T/err"; then
    echo "FAIL ($*): rc=$rc (want $want_rc), $lines stderr lines, want '$want':"; cat "$T/err"; fail=1
  else
    echo "ok   $(cat "$T/err")"
  fi
}

# check NAME EXPR: evaluates EXPR; prints "ok   NAME", or "FAIL NAME" and sets fail=1.
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
# need_files FILE...: exits 77 (skipped) naming the first file that is missing.
need_files() { local f; for f; do [ -f "$f" ] || { echo "SKIP: $f missing"; exit 77; }; done; }
# stories_setup NAME: ST / TXT (stories260K and its text; skipped when missing), the work folder
# T = D = $HARP_TMP/NAME made afresh with D/cal.txt (the text's first 30 000 bytes), fail=0.
stories_setup() {
  ST="$HARP_SHARED/models/stories260K/stories260K.bin"; TXT="$HARP_SHARED/data/tinystories/val_head.txt"
  need_files "$ST" "$TXT"
  T="$HARP_TMP/$1"; D=$T; fail=0
  rm -rf "$D" && mkdir -p "$D" && head -c 30000 "$TXT" > "$D/cal.txt"
}
