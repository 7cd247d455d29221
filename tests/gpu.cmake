# GPU tests: label "gpu" (scripts/test.sh runs them in the CUDA build; they exit 77 = skipped
# when built without CUDA or run where no device is present).
harp_test(test_qgemv_cuda LABELS "unit;gpu")
harp_test(test_gpu_kernels LABELS "unit;gpu")
harp_test(test_gpu_ppl LABELS "unit;gpu")
harp_test(test_harpfit_gpu LABELS "unit;gpu")
harp_test(test_dec_gpu LABELS "unit;gpu")
harp_test(test_gpu_packed LABELS "unit;gpu")
harp_test(test_trellis_cuda LABELS "unit;gpu")
harp_cli_test(${CMAKE_CURRENT_SOURCE_DIR}/cli/quantize_qtip_gpu.sh LABELS "cli;gpu")
# cuBLAS loaded at first use: needs a CUDA build, no device; one load per process, one ctest per case.
harp_test(test_cublas_dl)
foreach(c missing lacks)
  add_test(NAME test_cublas_dl_${c} COMMAND test_cublas_dl --${c})
  set_tests_properties(test_cublas_dl_${c} PROPERTIES ENVIRONMENT "${HARP_TEST_ENV}" SKIP_RETURN_CODE 77 LABELS unit)
endforeach()
# W/A/KV on the GPU (issue 14): the C twins run as plain unit tests (no arguments), the device
# kernels against them with "gpu".
harp_test(test_dec_igemm_gpu SOURCES test_dec_igemm.c LABELS "unit;gpu" ARGS gpu)
harp_test(test_dec_kv4_gpu SOURCES test_dec_kv4.c LABELS "unit;gpu" ARGS gpu)
# ldp2 GEMV on the GPU (issue 15): layout + twin on the CPU, the kernel against the twin with "gpu".
harp_test(test_dec_ldp_gpu SOURCES test_dec_ldp.c LABELS "unit;gpu" ARGS gpu)
# prefill's weight fold (dec_fold_weights): transpose and twin on the CPU, the device path with "gpu".
harp_test(test_dec_fold_gpu SOURCES test_dec_fold.c LABELS "unit;gpu" ARGS gpu)
# LDP fit (b)'s fp64 decoder block on the device against the CPU block (issue 15).
harp_test(test_blockfit_gpu LABELS "unit;gpu")
