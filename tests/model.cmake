# Model module tests: the ppl protocol test runs quick (8 windows per ctx) as a unit test and over
# the full files as a "slow" test.
harp_test(test_model_ppl SOURCES test_model_ppl.c ARGS quick LABELS unit)
harp_test(test_model_ppl_full SOURCES test_model_ppl.c ARGS full LABELS slow)
