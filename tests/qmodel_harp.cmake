# HARP end to end (issue 5, acceptance 1): stories260K in the unit run (a few seconds); the
# power-of-two part on ref-llama (2 full quantizations per seed, minutes on 2 cores) as "slow".
harp_test(test_qmodel_harp SOURCES test_qmodel_harp.c LABELS unit ARGS stories)
harp_test(test_qmodel_harp_ref SOURCES test_qmodel_harp.c LABELS slow ARGS ref)
