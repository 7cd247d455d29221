#!/usr/bin/env bash
# Bad input to harp info / ppl / generate: every case must exit non-zero with ONE line on stderr
# that names the offending file. Broken models are made at test time from ref-llama under HARP_TMP.
set -u
REF="$HARP_SHARED/models/ref-llama"
[ -f "$REF/model.safetensors" ] || { echo "SKIP: $REF missing"; exit 77; }
T="$HARP_TMP/model_bad"
rm -rf "$T" && mkdir -p "$T"
fail=0

. "$(dirname "$0")/lib.bash"
# expect_fail NAME EXPECTED_SUBSTRING CMD...: non-zero exit, one stderr line containing the substring.
expect_fail() { shift; local want=$1; shift; expect_error nz -F "$want" "$@"; }

# mkmodel DIR: config + tokenizer linked from ref-llama, safetensors supplied by the caller.
mkmodel() {
  mkdir -p "$1"
  ln -sf "$REF/config.json" "$REF/tokenizer.model" "$1/"
}

# Replace a same-length byte string inside the safetensors header (LC_ALL=C: binary-safe).
patch_header() {
  LC_ALL=C sed "0,/$2/s//$3/" "$REF/model.safetensors" > "$1/model.safetensors"
}

mkmodel "$T/trunc";   head -c 1000 "$REF/model.safetensors" > "$T/trunc/model.safetensors"
mkmodel "$T/garbage"; { printf '\x20\x00\x00\x00\x00\x00\x00\x00'; printf '{"a": [1, 2, oops this is not json}'; } > "$T/garbage/model.safetensors"
mkmodel "$T/pasteof"; head -c 20000000 "$REF/model.safetensors" > "$T/pasteof/model.safetensors"
mkmodel "$T/hugelen"; { printf '\xff\xff\xff\x00\x00\x00\x00\x00'; head -c 100 /dev/zero; } > "$T/hugelen/model.safetensors"
mkmodel "$T/missing"; patch_header "$T/missing" '"model.norm.weight"' '"model.norX.weight"'
mkmodel "$T/shape";   patch_header "$T/shape" '"model.layers.0.mlp.gate_proj.weight":{"dtype":"F16","shape":\[1536,512\]' '"model.layers.0.mlp.gate_proj.weight":{"dtype":"F16","shape":[512,1536]'
mkmodel "$T/dtype";   patch_header "$T/dtype" '"model.layers.0.input_layernorm.weight":{"dtype":"F16"' '"model.layers.0.input_layernorm.weight":{"dtype":"I16"'
mkmodel "$T/nan";     cp "$REF/model.safetensors" "$T/nan/model.safetensors"; chmod u+w "$T/nan/model.safetensors"
printf '\x00\x7e' | dd of="$T/nan/model.safetensors" bs=1 seek=$((8 + 4128 + 8388608 + 10)) conv=notrunc status=none
mkdir -p "$T/arch"; sed 's/LlamaForCausalLM/GPT2LMHeadModel/' "$REF/config.json" > "$T/arch/config.json"
ln -sf "$REF/model.safetensors" "$REF/tokenizer.model" "$T/arch/"
mkdir -p "$T/huge"; sed 's/"hidden_size": *[0-9]*/"hidden_size": 1e12/' "$REF/config.json" > "$T/huge/config.json"
ln -sf "$REF/model.safetensors" "$REF/tokenizer.model" "$T/huge/"
mkdir -p "$T/nocfg"
head -c 30000 "$HARP_SHARED/models/stories260K/stories260K.bin" > "$T/short.bin"

: > "$T/empty.txt"
printf 'valid start \xff\xfe broken' > "$T/bad_utf8.txt"
printf 'Some text for the ctx check.\n' > "$T/ok.txt"

H="$HARP_BIN"
expect_fail truncated      "$T/trunc/model.safetensors"   "$H" info -m "$T/trunc"
expect_fail garbage_json   "$T/garbage/model.safetensors" "$H" info -m "$T/garbage"
expect_fail past_eof       "past end of file"             "$H" info -m "$T/pasteof"
expect_fail header_len     "$T/hugelen/model.safetensors" "$H" info -m "$T/hugelen"
expect_fail missing_tensor "missing tensor 'model.norm.weight'" "$H" info -m "$T/missing"
expect_fail wrong_shape    "expected [1536, 512]"         "$H" info -m "$T/shape"
expect_fail bad_dtype      "unsupported dtype I16"        "$H" info -m "$T/dtype"
expect_fail nan_weight     "non-finite"                   "$H" info -m "$T/nan"
expect_fail unknown_arch   "unknown architecture 'GPT2LMHeadModel'" "$H" info -m "$T/arch"
expect_fail huge_dim       "field 'hidden_size' = 1000000000000 is too large" "$H" info -m "$T/huge"
expect_fail no_config      "$T/nocfg/config.json"         "$H" info -m "$T/nocfg"
expect_fail short_l2c      "$T/short.bin"                 "$H" info -m "$T/short.bin"
expect_fail no_model       "$T/does-not-exist"            "$H" info -m "$T/does-not-exist"
expect_fail empty_text     "$T/empty.txt: empty"          "$H" ppl -m "$REF" -f "$T/empty.txt"
expect_fail non_utf8       "$T/bad_utf8.txt: not valid UTF-8" "$H" ppl -m "$REF" -f "$T/bad_utf8.txt"
expect_fail no_text        "$T/nope.txt"                  "$H" ppl -m "$REF" -f "$T/nope.txt"
expect_fail ctx_above_max  "max_position_embeddings 1024" "$H" ppl -m "$REF" -f "$T/ok.txt" --ctx 2048
expect_fail too_short_text "$T/ok.txt"                    "$H" ppl -m "$REF" -f "$T/ok.txt" --ctx 512
expect_fail bad_flag       "--ctx"                        "$H" ppl -m "$REF" -f "$T/ok.txt" --ctx abc
expect_fail bad_kld_base   "$T/ok.txt"                    "$H" ppl -m "$REF" -f "$HARP_SHARED/data/ref-corpus/test.txt" --ctx 128 --max-chunks 1 --kld-base "$T/ok.txt"
expect_fail gen_no_model   "$T/nomodel"                   "$H" generate -m "$T/nomodel" -p hi

rm -rf "$T"
exit $fail
