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
# info_fails NAME EXPECTED MODEL / ppl_fails NAME EXPECTED ARGS...: harp info on MODEL / harp ppl on ref-llama.
info_fails() { expect_fail "$1" "$2" "$H" info -m "$3"; }
ppl_fails() { local name=$1 want=$2; shift 2; expect_fail "$name" "$want" "$H" ppl -m "$REF" "$@"; }
info_fails truncated      "$T/trunc/model.safetensors"   "$T/trunc"
info_fails garbage_json   "$T/garbage/model.safetensors" "$T/garbage"
info_fails past_eof       "past end of file"             "$T/pasteof"
info_fails header_len     "$T/hugelen/model.safetensors" "$T/hugelen"
info_fails missing_tensor "missing tensor 'model.norm.weight'" "$T/missing"
info_fails wrong_shape    "expected [1536, 512]"         "$T/shape"
info_fails bad_dtype      "unsupported dtype I16"        "$T/dtype"
info_fails nan_weight     "non-finite"                   "$T/nan"
info_fails unknown_arch   "unknown architecture 'GPT2LMHeadModel'" "$T/arch"
info_fails huge_dim       "field 'hidden_size' = 1000000000000 is too large" "$T/huge"
info_fails no_config      "$T/nocfg/config.json"         "$T/nocfg"
info_fails short_l2c      "$T/short.bin"                 "$T/short.bin"
info_fails no_model       "$T/does-not-exist"            "$T/does-not-exist"
ppl_fails empty_text     "$T/empty.txt: empty"          -f "$T/empty.txt"
ppl_fails non_utf8       "$T/bad_utf8.txt: not valid UTF-8" -f "$T/bad_utf8.txt"
ppl_fails no_text        "$T/nope.txt"                  -f "$T/nope.txt"
ppl_fails ctx_above_max  "max_position_embeddings 1024" -f "$T/ok.txt" --ctx 2048
ppl_fails too_short_text "$T/ok.txt"                    -f "$T/ok.txt" --ctx 512
ppl_fails bad_flag       "--ctx"                        -f "$T/ok.txt" --ctx abc
ppl_fails bad_kld_base   "$T/ok.txt"                    -f "$HARP_SHARED/data/ref-corpus/test.txt" --ctx 128 --max-chunks 1 --kld-base "$T/ok.txt"
expect_fail gen_no_model   "$T/nomodel"                   "$H" generate -m "$T/nomodel" -p hi

rm -rf "$T"
exit $fail
