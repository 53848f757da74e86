# Included by the Makefile: the benchmark programs and `make bench`.
.PHONY: bench

$(B)/chat-bench: $(call obj,bench/chat-bench.c) $(COMMON_OBJ) $(PROTO_OBJ)
	$(CC) $(LDFLAGS) $(filter %.o,$^) -o $@ $(UV_LIBS)

# Measurements (figures, not pass/fail): writes docs/BENCHMARKS.md.
bench: all
	bench/run.sh
