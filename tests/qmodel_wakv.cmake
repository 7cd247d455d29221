# W/A/KV fake quantization of ref-llama through the reference path (fp64 loop forward): about five
# CPU minutes, so it runs with the "slow" tests only.
harp_test(test_qmodel_wakv_quant SOURCES test_qmodel_wakv_quant.c LABELS slow)
# W/A/KV in the forward pass on ref-llama (exactness of every rotation kind, W4A4KV4 decode vs window).
harp_test(test_model_wakv_exec_ref SOURCES test_model_wakv_exec.c ARGS ref-llama LABELS slow)
