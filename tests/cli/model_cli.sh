#!/usr/bin/env bash
# Smoke test of harp info / ppl / generate output formats on the shared models.
set -u
REF="$HARP_SHARED/models/ref-llama"; ST="$HARP_SHARED/models/stories260K/stories260K.bin"
[ -f "$REF/model.safetensors" ] && [ -f "$ST" ] || { echo "SKIP: shared models missing"; exit 77; }
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

info=$("$HARP_BIN" info -m "$REF" --json)
check info_json '[[ "$info" == *"\"n_params\": 16781824"* && "$info" == *"\"rope_layout\": \"rotate-half\""* && "$info" == *"\"tokenizer\": \"sentencepiece\""* ]]'
info2=$("$HARP_BIN" info -m "$ST" --json)
check info_l2c '[[ "$info2" == *"\"rope_layout\": \"interleaved\""* && "$info2" == *"\"arch\": \"llama2.c\""* ]]'

ppl=$("$HARP_BIN" ppl -m "$REF" -f "$HARP_SHARED/data/ref-corpus/test.txt" --ctx 128 --max-chunks 2 --json 2>/dev/null)
for k in ppl nll_mean n_tokens_scored n_chunks ctx seconds tokens_per_second; do
  check "ppl_json_$k" '[[ "$ppl" == *"\"$k\": "* ]]'
done
check ppl_first_window '[[ "$ppl" == *"\"chunk_nll\": [4.3888"* ]]'
txt=$("$HARP_BIN" ppl -m "$REF" -f "$HARP_SHARED/data/ref-corpus/test.txt" --ctx 128 --max-chunks 2 2>"$HARP_TMP/ppl_err")
check ppl_text '[[ "$txt" == *"PPL = "*"+/-"* ]] && grep -q "\[2\]" "$HARP_TMP/ppl_err"'

gen=$("$HARP_BIN" generate -m "$ST" -p "Once upon a time" -n 12 --json)
check gen_greedy '[[ "$gen" == *"\"prompt_ids\": [1, 403, 407, 261, 378]"* && "$gen" == *"\"generated_ids\": [432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338]"* ]]'
g1=$("$HARP_BIN" generate -m "$ST" -p "Once upon a time" -n 20 --temp 0.8 --top-p 0.9 --seed 7 --json)
g2=$("$HARP_BIN" generate -m "$ST" -p "Once upon a time" -n 20 --temp 0.8 --top-p 0.9 --seed 7 --json)
check gen_seeded_deterministic '[[ "$g1" == "$g2" ]]'
exit $fail
