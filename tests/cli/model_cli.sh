#!/usr/bin/env bash
# Smoke test of harp info / ppl / generate output formats on the shared models: generate streams
# readable text (the same bytes as its --json "text") and reports its speed; ppl's progress follows
# the one rule of every long command (stderr, elapsed + refreshed ETA, -q silences, --json does not).
set -u
. "$(dirname "$0")/lib.bash"
REF="$HARP_SHARED/models/ref-llama"; ST="$HARP_SHARED/models/stories260K/stories260K.bin"
[ -f "$REF/model.safetensors" ] && [ -f "$ST" ] || { echo "SKIP: shared models missing"; exit 77; }
fail=0

info=$("$HARP_BIN" info -m "$REF" --json)
check info_json '[[ "$info" == *"\"n_params\": 16781824"* && "$info" == *"\"rope_layout\": \"rotate-half\""* && "$info" == *"\"tokenizer\": \"sentencepiece\""* ]]'
info2=$("$HARP_BIN" info -m "$ST" --json)
check info_l2c '[[ "$info2" == *"\"rope_layout\": \"interleaved\""* && "$info2" == *"\"arch\": \"llama2.c\""* ]]'

ppl=$("$HARP_BIN" ppl -m "$REF" -f "$HARP_SHARED/data/ref-corpus/test.txt" --ctx 128 --max-chunks 2 --json 2>/dev/null)
for k in ppl nll_mean n_tokens_scored n_chunks ctx seconds tokens_per_second; do
  check "ppl_json_$k" '[[ "$ppl" == *"\"$k\": "* ]]'
done
check ppl_first_window '[[ "$ppl" == *"\"chunk_nll\": [4.3888"* ]]'
# --kv f16: the windows through an fp16 cache move ref-llama's ppl by ~2e-5 relative (56.567927 → 56.568897)
p16=$("$HARP_BIN" ppl -m "$REF" -f "$HARP_SHARED/data/ref-corpus/test.txt" --ctx 128 --max-chunks 2 --kv f16 --json 2>/dev/null)
check ppl_kv_f16 'python3 -c "import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); sys.exit(not (a[\"kv\"] == \"f32\" and b[\"kv\"] == \"f16\" and 0 < abs(b[\"ppl\"] / a[\"ppl\"] - 1) < 1e-4))" "$ppl" "$p16"'
txt=$("$HARP_BIN" ppl -m "$REF" -f "$HARP_SHARED/data/ref-corpus/test.txt" --ctx 128 --max-chunks 2 2>"$HARP_TMP/ppl_err")
check ppl_text '[[ "$txt" == *"PPL = "*"+/-"* ]] && grep -q "\[2\]" "$HARP_TMP/ppl_err"'
# progress: with --json still on stderr (stdout holds only the JSON); one line per window when
# HARP_PROGRESS_SECONDS=0, each with elapsed time and its own ETA; -q silences it
pj=$(HARP_PROGRESS_SECONDS=0 "$HARP_BIN" ppl -m "$REF" -f "$HARP_SHARED/data/ref-corpus/test.txt" --ctx 128 --max-chunks 3 --json 2>"$HARP_TMP/ppl_err")
check ppl_json_stdout_only_json '[[ $(printf "%s\n" "$pj" | wc -l) -eq 1 && "$pj" == "{\"kind\": \"ppl\""*"}" ]]'
check ppl_progress_every_window '[ $(grep -Ec "^ppl [123]/3 .* elapsed [0-9]{2}:[0-9]{2} ETA [0-9]{2}:[0-9]{2}  \[[123]\][0-9.]+$" "$HARP_TMP/ppl_err") -eq 3 ]'
check ppl_progress_ends_at_eta_0 'tail -1 "$HARP_TMP/ppl_err" | grep -q "^ppl 3/3 100.0% elapsed .* ETA 00:00"'
"$HARP_BIN" ppl -m "$REF" -f "$HARP_SHARED/data/ref-corpus/test.txt" --ctx 128 --max-chunks 2 --json -q >/dev/null 2>"$HARP_TMP/ppl_err"
check ppl_quiet '[ ! -s "$HARP_TMP/ppl_err" ]'

gen=$("$HARP_BIN" generate -m "$ST" -p "Once upon a time" -n 12 --json -q)
check gen_greedy '[[ "$gen" == *"\"prompt_ids\": [1, 403, 407, 261, 378]"* && "$gen" == *"\"generated_ids\": [432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338]"* ]]'
# --kv f16: the fp16 cache changes the logits by ~3e-4 (test_model_windows), not this greedy text
g16=$("$HARP_BIN" generate -m "$ST" -p "Once upon a time" -n 12 --kv f16 --json -q)
check gen_kv_f16 '[[ "${g16%%, \"temperature\"*}" == "${gen%%, \"temperature\"*}" ]]'
g1=$("$HARP_BIN" generate -m "$ST" -p "Once upon a time" -n 20 --temp 0.8 --top-p 0.9 --seed 7 --json -q)
g2=$("$HARP_BIN" generate -m "$ST" -p "Once upon a time" -n 20 --temp 0.8 --top-p 0.9 --seed 7 --json -q)
check gen_seeded_deterministic '[[ "${g1%%, \"prompt_tok_s\"*}" == "${g2%%, \"prompt_tok_s\"*}" && "$g1" == *"\"generated_ids\": ["*"\"seed\": 7"* ]]'
check gen_json_speed '[[ "$gen" =~ \"prompt_tok_s\":\ [0-9.]+,\ \"decode_tok_s\":\ [0-9.]+, ]]'
# memory: the CPU holds no weights of its own (the model's arrays), a KV cache and a workspace
check gen_json_memory '[[ "$gen" =~ \"mem_weights_bytes\":\ 0,\ \"mem_kv_bytes\":\ [1-9][0-9]*,\ \"mem_workspace_bytes\":\ [1-9][0-9]*\}$ ]]'
# the streamed text is the prompt followed by the JSON's text, with the tokenizer's spaces
# (llama2.c pieces carry their own; SentencePiece's come from U+2581)
json_text() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["text"], end="")'; }
out=$("$HARP_BIN" generate -m "$ST" -p "Once upon a time" -n 12 2>"$HARP_TMP/gen_err")
check gen_stream_spaces '[[ "$out" == "Once upon a time, there was a little girl named Lily. She" ]]'
check gen_stream_is_json_text '[[ "$out" == "Once upon a time$(printf %s "$gen" | json_text)" ]]'
check gen_speed_stderr 'grep -Eq "^prompt: 5 tokens, [0-9.]+ tokens/s \| generated: 12 tokens, [0-9.]+ tokens/s$" "$HARP_TMP/gen_err"'
"$HARP_BIN" generate -m "$ST" -p "Once upon a time" -n 4 -q >/dev/null 2>"$HARP_TMP/gen_err"
check gen_quiet '[ ! -s "$HARP_TMP/gen_err" ]'
rj=$("$HARP_BIN" generate -m "$REF" -p "The history of" -n 16 --json -q)
ro=$("$HARP_BIN" generate -m "$REF" -p "The history of" -n 16 -q)
check gen_spm_stream_is_json_text '[[ "$ro" == "The history of$(printf %s "$rj" | json_text)" && "$ro" == *" "*" "*" "* ]]'
exit $fail
