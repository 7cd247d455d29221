# QTIP through the quantize pipeline and the folder loader (issue 13): stories260K round trip with
# each trellis code, 1 vs 2 threads, bad trellis planes and configurations (~15 s Release).
harp_test(test_qmodel_qtip SOURCES test_qmodel_qtip.c LABELS unit)
