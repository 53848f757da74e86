# Included by the Makefile: fuzzing, the crash test in full, the soak test.
#
#   make fuzz        the three libFuzzer targets at once, FUZZ_SECONDS (default 300)
#   make fuzz-ci     the same for FUZZ_CI_SECONDS (default 30): for `make test`
#   make fuzz-build  just build the targets (build/fuzz/fuzz_frame, fuzz_conn,
#                    fuzz_http)
#   make fuzz-mutant show that the targets catch planted off-by-ones
#   make chaos       the crash test with CHAT_CHAOS_KILLS (default 20) SIGKILLs,
#                    then the cluster crash test: CHAT_CHAOS_KILLS node kills
#                    and CHAT_CHAOS_REDIS_KILLS (default 3) redis-server kills
#   make soak        SOAK_SECONDS (default 600) of mixed load; RSS must not grow
# The fuzz targets, and the servers of the crash test and the soak
# (build/debug/, DEBUG=1), run with the invariant checks on.
#
# The targets and the project's objects are built by clang with
# -fsanitize=fuzzer,address,undefined into build/fuzz/ (never build/ or
# build/asan/). Each run writes new inputs to build/fuzz/corpus/<target>/ and
# reads the committed seeds in tests/fuzz/corpus/<target>/ without writing
# there; crashes go to build/fuzz/artifacts/.

FUZZ_CC       ?= clang
FUZZ_DIR      := build/fuzz
FUZZ_SECONDS  ?= 300
FUZZ_CI_SECONDS ?= 30
# Every report is fatal.
FUZZ_SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
                 -fno-omit-frame-pointer
# The Makefile's -I and -D flags, so the objects see the same headers (but
# not NDEBUG: the fuzz build keeps the invariant checks on).
FUZZ_CPPFLAGS  = $(filter-out -DNDEBUG,$(filter -I% -D%,$(CFLAGS)))
# Project code: the Makefile's warnings, but not -Werror (clang warns about
# things gcc does not; the gcc build is the one that enforces them).
FUZZ_CFLAGS    = -std=c11 -g -O1 -Wall -Wextra $(FUZZ_CPPFLAGS) \
                 $(FUZZ_SANFLAGS) -fsanitize=fuzzer-no-link -MMD -MP
FUZZ_LDFLAGS  := $(FUZZ_SANFLAGS) -fsanitize=fuzzer

fuzz_obj = $(patsubst src/%.c,$(FUZZ_DIR)/obj/%.o,$(1))
FUZZ_FRAME_OBJ := $(call fuzz_obj,$(PROTO_SRC))
FUZZ_CONN_OBJ  := $(call fuzz_obj,$(SERVER_SRC) $(COMMON_SRC) $(PROTO_SRC)) \
                  $(FUZZ_DIR)/obj/gen/web_assets.o $(FUZZ_DIR)/obj/gen/redis_scripts.o
FUZZ_HTTP_OBJ  := $(call fuzz_obj,src/proto/http.c)
FUZZ_WS_OBJ    := $(call fuzz_obj,src/server/framing_ws.c \
                  src/server/framing_raw.c src/server/outq.c src/common/blk.c \
                  src/common/buf.c src/proto/frame.c)
FUZZ_TARGETS   := $(FUZZ_DIR)/fuzz_frame $(FUZZ_DIR)/fuzz_conn \
                  $(FUZZ_DIR)/fuzz_http $(FUZZ_DIR)/fuzz_ws

.PHONY: fuzz fuzz-ci fuzz-build fuzz-mutant fuzz-corpus chaos soak

$(FUZZ_DIR)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_DIR)/obj/gen/web_assets.o: $(WEB_GEN)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_DIR)/obj/gen/redis_scripts.o: $(REDIS_GEN)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_DIR)/fuzz_frame: tests/fuzz/fuzz_frame.c $(FUZZ_FRAME_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror $(FUZZ_LDFLAGS) $(filter %.c %.o,$^) -o $@

$(FUZZ_DIR)/fuzz_http: tests/fuzz/fuzz_http.c $(FUZZ_HTTP_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror $(FUZZ_LDFLAGS) $(filter %.c %.o,$^) -o $@

$(FUZZ_DIR)/fuzz_ws: tests/fuzz/fuzz_ws.c $(FUZZ_WS_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror $(FUZZ_LDFLAGS) $(filter %.c %.o,$^) -o $@ -luv

$(FUZZ_DIR)/fuzz_conn: tests/fuzz/fuzz_conn.c $(FUZZ_CONN_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror $(FUZZ_LDFLAGS) $(filter %.c %.o,$^) -o $@ $(SERVER_LIBS)

fuzz-build:
	$(MAKE) --no-print-directory $(FUZZ_TARGETS)

# tests/fuzz/run.sh TARGET SECONDS [TARGET SECONDS ...]: runs them at once,
# prints executions, exec/s, coverage and corpus size of each; non-zero on
# any crash, leak, timeout or sanitizer report. The four share the 2 cores
# (each about half of one): the wall time is the seconds given, not more.
fuzz: deps fuzz-build
	tests/fuzz/run.sh frame $(FUZZ_SECONDS) conn $(FUZZ_SECONDS) http $(FUZZ_SECONDS) \
	    ws $(FUZZ_SECONDS)

fuzz-ci: fuzz-build
	tests/fuzz/run.sh frame $(FUZZ_CI_SECONDS) conn $(FUZZ_CI_SECONDS) \
	    http $(FUZZ_CI_SECONDS) ws $(FUZZ_CI_SECONDS)

# Rewrite the committed seed corpus (tests/fuzz/corpus/frame and conn) from
# its script; tests/fuzz/corpus/http/ and ws/ hold written files, left alone.
fuzz-corpus:
	$(PY) tests/fuzz/make_corpus.py tests/fuzz/corpus

# Copies of frame.c and conn.c with planted bugs (build/fuzz-mutant/),
# linked into the targets: each must be caught within FUZZ_CI_SECONDS.
# Nothing under src/ changes.
fuzz-mutant: fuzz-build
	SERVER_LIBS="$(SERVER_LIBS)" tests/fuzz/mutant.sh $(FUZZ_CI_SECONDS)

# The crash test with many kills, then the cluster crash test (three nodes
# on one redis-server, clients with the three addresses: a random node
# SIGKILLed CHAT_CHAOS_KILLS times, redis-server CHAT_CHAOS_REDIS_KILLS
# times), both on the build with the invariant checks on; each prints its
# summary lines.
CHAT_CHAOS_KILLS ?= 20
CHAT_CHAOS_REDIS_KILLS ?= 3
chaos: deps
	$(MAKE) --no-print-directory DEBUG=1 build/debug/chat-server build/debug/chat-client
	CHAT_SERVER=$(CURDIR)/build/debug/chat-server CHAT_CHAOS_KILLS=$(CHAT_CHAOS_KILLS) \
	  $(PY) -m pytest -q -p no:cacheprovider tests/integration/test_crash.py
	CHAT_SERVER=$(CURDIR)/build/debug/chat-server \
	CHAT_CLIENT=$(CURDIR)/build/debug/chat-client \
	CHAT_CHAOS_KILLS=$(CHAT_CHAOS_KILLS) CHAT_CHAOS_REDIS_KILLS=$(CHAT_CHAOS_REDIS_KILLS) \
	  $(PY) -m pytest -q -p no:cacheprovider tests/integration/test_cluster_crash.py

# Mixed load against build/chat-server; fails when RSS grows over 10 %.
SOAK_SECONDS ?= 600
soak: deps
	$(MAKE) --no-print-directory DEBUG=1 build/debug/chat-server
	$(PY) tests/soak/soak.py --server $(CURDIR)/build/debug/chat-server \
	  --seconds $(SOAK_SECONDS)

# The Makefile's -include of build/**/*.d covers build/fuzz/ too.
