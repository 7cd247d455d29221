# W/A/KV fake quantization of ref-llama through the reference path (fp64 loop forward): about five
# CPU minutes, so it runs with the "slow" tests only.
harp_test(test_qmodel_wakv_quant SOURCES test_qmodel_wakv_quant.c LABELS slow)
