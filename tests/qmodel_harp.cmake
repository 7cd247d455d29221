# HARP end to end (issue 5, acceptance 1). Unit: stories260K, seed 0, power-of-two groups identical
# to RHT (a few seconds; ~35 s under ASan). Slow: stories260K seeds 0..4 with the other widths against
# the RHT seed spread (~20 s Release, ~3 min ASan), and the power-of-two part on ref-llama (minutes).
harp_test(test_qmodel_harp SOURCES test_qmodel_harp.c LABELS unit ARGS quick)
harp_test(test_qmodel_harp_seeds SOURCES test_qmodel_harp.c LABELS slow ARGS stories)
harp_test(test_qmodel_harp_ref SOURCES test_qmodel_harp.c LABELS slow ARGS ref)
