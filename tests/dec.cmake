# GPU decode engine, CPU side: the packed forward emulated on the CPU (stories260K quantized in the
# test); the QTIP folders (trellis search ~20 s of CPU per code) run with the slow tests.
harp_test(test_dec_forward SOURCES test_dec_forward.c LABELS unit)
harp_test(test_dec_forward_qtip SOURCES test_dec_forward.c LABELS slow ARGS qtip)
