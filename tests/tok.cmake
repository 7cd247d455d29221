# Tokenizer tests. The golden test runs on ref-llama's test split in the unit suite; the "full"
# variant (label slow) adds WikiText-2 and the calibration split for the tokenizer.json parity.
harp_test(test_tok_golden SOURCES test_tok_golden.c LABELS unit)
harp_test(test_tok_golden_full SOURCES test_tok_golden.c LABELS slow ARGS full)
