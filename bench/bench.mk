# Included by the Makefile: the benchmark programs and `make bench`.
.PHONY: bench bench-progs bench-media bench-tls bench-cluster bench-test

BENCH_OBJ := $(call obj,bench/chat-bench.c bench/bconn.c bench/bgroup.c bench/bproc.c bench/btls.c bench/bws.c \
                        bench/outq.c bench/wire.c bench/hist.c)

$(B)/chat-bench: $(BENCH_OBJ) $(COMMON_OBJ) $(PROTO_OBJ)
	$(CC) $(LDFLAGS) $(filter %.o,$^) -o $@ $(UV_LIBS) $(TLS_LIBS)

# The floor: a minimal relay for the chat protocol (bench/floor.c), the
# ceiling chat-server is compared with. Plain epoll, no libuv; OpenSSL for
# its TLS mode.
$(B)/floor: $(call obj,bench/floor.c)
	$(CC) $(LDFLAGS) $(filter %.o,$^) -o $@ $(TLS_LIBS)

all: $(B)/floor

bench-progs: $(B)/chat-server $(B)/chat-bench $(B)/floor

# Measurements (figures, not pass/fail): installs the servers it compares
# (make deps), writes docs/BENCHMARKS.md and docs/bench/*.png.
# A part (BENCH_ONLY=..., see bench/run.sh) writes build/bench/BENCHMARKS.md:
# bench-media (64 KiB, 1 MiB, 16 MiB pairs) and bench-tls are two of them;
# bench-cluster rewrites only docs/BENCHMARKS.md's cluster section.
bench: deps
	$(MAKE) --no-print-directory all
	bench/run.sh

bench-media: deps
	$(MAKE) --no-print-directory all
	BENCH_ONLY=media bench/run.sh

bench-tls: deps
	$(MAKE) --no-print-directory all
	BENCH_ONLY=tls bench/run.sh

# The cluster's cells (bench/run_cluster.sh: two nodes on one Redis, Redis
# pub/sub, one node alone): only the cluster section of docs/BENCHMARKS.md
# is replaced.
bench-cluster: deps
	$(MAKE) --no-print-directory all
	BENCH_ONLY=cluster BENCH_SPLICE=docs/BENCHMARKS.md bench/run.sh

# chat-bench's decoders and output queue (cmocka, from scripts/deps.sh test).
$(B)/tests/test_bench: bench/test_bench.c bench/test_bgroup.c $(call obj,bench/wire.c bench/outq.c bench/bws.c bench/bgroup.c) \
                      $(PROTO_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ibench $(filter %.c %.o,$^) -o $@ $(LDFLAGS) -lcmocka $(TLS_LIBS)

bench-test: deps-test $(B)/tests/test_bench
	$(B)/tests/test_bench
