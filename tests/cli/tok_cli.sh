#!/usr/bin/env bash
# harp tokenize: ids / --count / --json / --bos / --pieces against golden ids, and bad input
# (missing file, wrong-kind file, usage errors) exiting non-zero with a one-line error.
set -u
S=${HARP_SHARED:-../shared}
H=${HARP_BIN:?HARP_BIN not set}
[ -f "$S/models/ref-llama/tokenizer.model" ] || { echo "SKIP: $S/models/ref-llama missing"; exit 77; }
fail=0
check() { # name expected actual
    if [ "$2" == "$3" ]; then echo "ok   $1"; else echo "FAIL $1: expected [$2] got [$3]"; fail=1; fi
}
P="The old man looked out over the sea and said"
check ids "353 744 468 1077 505 637 263 1792 286 471" "$("$H" tokenize -m "$S/models/ref-llama" -p "$P")"
check bos "1 353 744 468 1077 505 637 263 1792 286 471" "$("$H" tokenize -m "$S/models/ref-llama" -p "$P" --bos)"
check json-file '{"n_tokens":11,"ids":[1,353,744,468,1077,505,637,263,1792,286,471]}' \
    "$("$H" tokenize --tokenizer "$S/models/ref-llama/tokenizer.json" -p "$P" --bos --json)"
check count "571347" "$("$H" tokenize -m "$S/models/ref-llama" -f "$S/data/ref-corpus/test.txt" --bos --count)"
check count-json '{"n_tokens":5}' "$("$H" tokenize -m "$S/models/stories260K/stories260K.bin" -p "Once upon a time" --bos --count --json)"
check llama2c "1 403 407 261 378" "$("$H" tokenize --tokenizer "$S/models/stories260K/tok512.bin" -p "Once upon a time" --bos)"
check pieces "▁The ▁old" "$("$H" tokenize --tokenizer "$S/models/ref-llama/tokenizer.model" -p "The old" --pieces)"
check empty "" "$("$H" tokenize -m "$S/models/ref-llama" -p "")"
tmp=${HARP_TMP:-/tmp}/tok_cli.$$
printf 'Hello world' > "$tmp.txt"
check file "$("$H" tokenize -m "$S/models/ref-llama" -p "Hello world")" "$("$H" tokenize -m "$S/models/ref-llama" -f "$tmp.txt")"
rm -f "$tmp.txt"

bad() { # name expected-exit needle args...
    local name=$1 want=$2 needle=$3; shift 3
    local err; err=$("$H" tokenize "$@" 2>&1 >/dev/null); local rc=$?
    if [ $rc -eq "$want" ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && [[ "$err" == *"$needle"* ]]; then
        echo "ok   $name"
    else
        echo "FAIL $name: rc=$rc err=[$err]"; fail=1
    fi
}
bad missing-model 1 "/nonexistent/model" -m /nonexistent/model -p x
bad missing-text 1 "/nonexistent/text.txt" -m "$S/models/ref-llama" -f /nonexistent/text.txt
bad wrong-kind 1 "config.json" --tokenizer "$S/models/ref-llama/config.json" -p x
bad safetensors 1 "model.safetensors: not a tokenizer" --tokenizer "$S/models/ref-llama/model.safetensors" -p x
bad no-source 2 "exactly one of -m" -p x
bad both-text 2 "exactly one of -p" -m "$S/models/ref-llama" -p x -f y
bad bad-vocab 2 "--vocab" --tokenizer "$S/models/stories260K/tok512.bin" --vocab 0 -p x
"$H" tokenize --help | grep -q -- "--bos" || { echo "FAIL help"; fail=1; }
exit $fail
