# Included by the Makefile: the benchmark programs and `make bench`.
.PHONY: bench bench-progs

BENCH_OBJ := $(call obj,bench/chat-bench.c bench/bconn.c bench/btls.c bench/outq.c \
                        bench/wire.c bench/hist.c)

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
# (scripts/deps.sh bench), writes docs/BENCHMARKS.md and docs/bench/*.png.
bench: all
	@scripts/deps.sh bench
	bench/run.sh
