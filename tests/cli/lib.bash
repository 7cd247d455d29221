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
