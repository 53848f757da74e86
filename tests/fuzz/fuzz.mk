# Included by the Makefile: fuzzing, the crash test in full, the soak test.
