# Quantizer tests with custom registration: the E8P encoder is compared with brute force on 10^4
# Gaussian vectors in the unit run and on 10^5 in the "slow" run (about 15–45 s on 2 loaded cores).
harp_test(test_quant_e8p_enc SOURCES test_quant_e8p_enc.c LABELS unit ARGS 10000)
harp_test(test_quant_e8p_enc_full SOURCES test_quant_e8p_enc.c LABELS slow ARGS 100000)
# QTIP trellis: code distortion on Gaussian data at the operating point (unit) and with a scale sweep
# over more tiles (slow).
harp_test(test_trellis_mse SOURCES test_trellis_mse.c LABELS unit)
harp_test(test_trellis_mse_sweep SOURCES test_trellis_mse.c LABELS slow ARGS sweep)
# QTIP trellis benchmark driver (not a test): build/tests/trellis_bench gemv|encode ...
add_executable(trellis_bench trellis_bench_main.c)
target_include_directories(trellis_bench PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(trellis_bench PRIVATE harp_lib)
harp_set_warnings(trellis_bench)
