# chat-server -- see README.md. `make` only builds: into build/ (release,
# invariant checks compiled out), build/asan/ with SANITIZE=1 (AddressSanitizer
# + UBSan, checks on), build/debug/ with DEBUG=1 (checks on, no sanitizer).
# `make deps` installs the missing Debian packages (scripts/deps.sh); `make
# run`, `make test` and `make bench` call it.

CC      ?= cc
VERSION := 0.1.0
SANITIZE ?= 0

DEBUG ?= 0

# Invariant checks (assert, the *_check functions) are on in the sanitizer,
# debug and fuzz builds and compiled out of the release build (NDEBUG).
ifeq ($(SANITIZE),1)
B       := build/asan
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT     := -O1
else ifeq ($(DEBUG),1)
B       := build/debug
SANFLAGS :=
OPT     := -O1
else
B       := build
SANFLAGS :=
OPT     := -O2 -DNDEBUG
endif

CFLAGS  ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Werror -Wshadow \
           -Wstrict-prototypes -Wformat=2 -Isrc -Itests/unit -DCHAT_VERSION='"$(VERSION)"' \
           $(SANFLAGS) -MMD -MP
LDFLAGS += $(SANFLAGS)
UV_LIBS := -luv -lsqlite3 -lpthread
TLS_LIBS := -lssl -lcrypto
SERVER_LIBS := $(UV_LIBS) -lsodium $(TLS_LIBS) -lhiredis
CFLAGS  += -Iinclude

# libchat install locations (make install PREFIX=... DESTDIR=...).
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
# The server's install locations (make install, make deb; docs/OPERATIONS.md,
# "Installing"): /usr puts the config in /etc and the unit in /lib.
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR    ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)

PY      := /usr/bin/python3

PROTO_SRC  := src/proto/frame.c src/proto/http.c src/proto/signal.c
COMMON_SRC := src/common/log.c src/common/buf.c src/common/u32map.c src/common/blk.c
# The TLS client engine (OpenSSL), shared by libchat and the server's Redis
# connection; apart from COMMON_SRC, which chat-bench and settings-doc link
# without OpenSSL.
TLSC_SRC   := src/common/tlsc.c
# The connection core, bottom up (docs/ARCHITECTURE.md): pure helpers and
# the layers below a connection, the connection, then the modules above it.
SERVER_SRC := src/server/cluster_url.c src/server/config.c src/server/config_file.c src/server/config_doc.c \
              src/server/reload.c src/server/router.c src/server/store.c \
              src/server/store_sqlite.c src/server/store_loop.c src/server/store_thread.c \
              src/server/store_ctr.c src/server/store_check.c src/server/store_dev.c \
              src/server/store_group.c src/server/store_sig.c \
              src/server/groups.c src/server/cidset.c \
              src/server/accounts.c src/server/accounts_redis.c src/server/rblock.c \
              src/server/admin.c \
              src/server/backup.c \
              src/server/auth.c src/server/tls.c src/server/netaddr.c \
              src/server/ratelimit.c src/server/metrics.c src/server/procstat.c \
              src/server/transport.c src/server/outq.c \
              src/server/framing_raw.c src/server/framing_ws.c src/server/conn.c \
              src/server/output.c src/server/close.c src/server/sync.c \
              src/server/deliver.c src/server/groupops.c src/server/history.c \
              src/server/receipts.c src/server/presence.c src/server/login.c \
              src/server/session.c \
              src/server/httpd.c src/server/io.c src/server/sweep.c \
              src/server/server.c src/server/stats.c src/server/workers.c src/server/cluster_store.c \
              src/server/rconn.c src/server/rconn_new.c src/server/rconn_net.c \
              src/server/rconn_reply.c $(TLSC_SRC) \
              src/server/store_redis.c src/server/store_redis_q.c \
              src/server/store_redis_ops.c src/server/store_redis_sig.c src/server/store_redis_feed.c \
              src/server/store_redis_node.c src/server/store_redis_acct.c src/server/store_redis_wait.c \
              src/server/store_redis_pool.c
# The web client's files (web/), built into the server (scripts/embed_web.py).
WEB_FILES  := $(sort $(wildcard web/*))
WEB_GEN    := $(B)/gen/web_assets.c
# The cluster store's Lua scripts (src/server/redis/, docs/CLUSTER.md 2.7),
# built into the server with their SHA1s (scripts/embed_lua.py).
REDIS_LUA  := $(sort $(wildcard src/server/redis/*.lua src/server/redis/lib/*.lua))
REDIS_GEN  := $(B)/gen/redis_scripts.c
SERVER_MAIN := src/server/main.c
# Linked into test binaries only: the unit tests and chat-server-faults.
TEST_SUPPORT_SRC := tests/support/faultvfs.c tests/support/redisfix.c \
                    tests/support/looputil.c
# libchat: the client library, built from the same codec source as the server.
CLIENT_SRC := src/client/client.c src/client/client_send.c src/client/client_req.c \
              src/client/client_signal.c src/client/servers.c src/client/util.c \
              src/client/tls.c
LIBCHAT_SRC := $(CLIENT_SRC) src/proto/frame.c src/proto/signal.c \
               src/common/buf.c $(TLSC_SRC)
# chat-client: the command-line client, on libchat.
CLI_SRC    := src/cli/main.c src/cli/common.c src/cli/addr.c src/cli/send.c src/cli/listen.c \
              src/cli/request.c src/cli/group.c src/cli/history.c \
              src/cli/json.c src/cli/media.c src/cli/interactive.c src/cli/ia_signals.c \
              src/cli/ia_groups.c src/cli/signals.c

obj = $(patsubst tests/%.c,$(B)/obj/tests/%.o,$(patsubst bench/%.c,$(B)/obj/bench/%.o,$(patsubst src/%.c,$(B)/obj/%.o,$(1))))

PROTO_OBJ  := $(call obj,$(PROTO_SRC))
COMMON_OBJ := $(call obj,$(COMMON_SRC))
SERVER_OBJ := $(call obj,$(SERVER_SRC)) $(B)/obj/gen/web_assets.o \
              $(B)/obj/gen/redis_scripts.o
TEST_SUPPORT_OBJ := $(call obj,$(TEST_SUPPORT_SRC))
CLIENT_OBJ := $(call obj,$(CLIENT_SRC))
LIBCHAT_OBJ := $(call obj,$(LIBCHAT_SRC))
CLI_OBJ    := $(call obj,$(CLI_SRC))
LIBCHAT_PIC := $(patsubst src/%.c,$(B)/obj-pic/%.o,$(LIBCHAT_SRC))
LIBCHAT_SO  := libchat.so.$(VERSION)

UNIT_TESTS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/test_*.c))

.PHONY: all deps run test check unit integration browser install-check valgrind clean libchat install lint docs-settings FORCE
.PHONY: man install-server deb package-check
.DEFAULT_GOAL := all

all: $(B)/chat-server $(B)/chat-bench $(B)/chat-client libchat $(B)/settings-doc

# Every Debian package the build, the tests and the benchmarks need, when
# missing (apt-get update at most once). Nothing else installs anything.
deps:
	@scripts/deps.sh all

$(B)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(WEB_GEN): $(WEB_FILES) scripts/embed_web.py
	@mkdir -p $(dir $@)
	$(PY) scripts/embed_web.py web $@

$(B)/obj/gen/web_assets.o: $(WEB_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(REDIS_GEN): $(REDIS_LUA) scripts/embed_lua.py src/server/redis_scripts.h
	@mkdir -p $(dir $@)
	$(PY) scripts/embed_lua.py src/server/redis src/server/redis_scripts.h $@

$(B)/obj/gen/redis_scripts.o: $(REDIS_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/chat-server: $(call obj,$(SERVER_MAIN)) $(SERVER_OBJ) $(COMMON_OBJ) $(PROTO_OBJ)
	$(CC) $(LDFLAGS) $(filter %.o,$^) -o $@ $(SERVER_LIBS)

# The texts made from the settings table (config.h): manual pages, the
# table of docs/OPERATIONS.md, the example chat-server.conf.
$(B)/settings-doc: $(B)/obj/server/settings_doc.o $(B)/obj/server/config.o \
    $(B)/obj/server/config_doc.o $(B)/obj/server/cluster_url.o $(B)/obj/server/config_file.o $(COMMON_OBJ)
	$(CC) $(LDFLAGS) $(filter %.o,$^) -o $@

# Rewrite the settings table of docs/OPERATIONS.md from the source
# (test_config.py checks that it is current).
docs-settings: $(B)/settings-doc
	$(PY) scripts/settings_table.py $(B)/settings-doc docs/OPERATIONS.md --write

# chat-server with the disk-full VFS shim (tests/support/faultvfs.c), for
# the black-box tests that fill the disk (CHAT_FAULT_DISKFULL=<flag file>).
$(B)/tests/chat-server-faults: $(call obj,$(SERVER_MAIN)) $(SERVER_OBJ) $(COMMON_OBJ) $(PROTO_OBJ) $(TEST_SUPPORT_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(filter %.o,$^) -o $@ $(SERVER_LIBS)

$(B)/obj/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/chat-client: $(CLI_OBJ) $(LIBCHAT_OBJ)
	$(CC) $(LDFLAGS) $(filter %.o,$^) -o $@ -ledit $(TLS_LIBS)

$(B)/obj/bench/%.o: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# Unit tests link every library object; each test uses what it needs.
# TEST_WRAP: functions a test replaces with its own __wrap_ version (to make
# an allocation or libuv's thread pool fail on demand).
$(B)/tests/%: tests/unit/%.c $(SERVER_OBJ) $(COMMON_OBJ) $(PROTO_OBJ) $(CLIENT_OBJ) $(TEST_SUPPORT_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(filter %.c %.o,$^) -o $@ $(LDFLAGS) $(TEST_WRAP) -lcmocka $(SERVER_LIBS)

$(B)/tests/test_store $(B)/tests/test_store_sig: TEST_WRAP := -Wl,--wrap=realloc,--wrap=calloc
# chat-client's --host parsing (pure, no libchat state) is unit-tested too.
$(B)/tests/test_cli_addr: $(call obj,src/cli/addr.c)
$(B)/tests/test_auth: TEST_WRAP := -Wl,--wrap=uv_queue_work,--wrap=accounts_hash
$(B)/tests/test_auth_store: TEST_WRAP := -Wl,--wrap=uv_queue_work

# libchat: static and shared library (only chat_* exported) and chat.pc.
libchat: $(B)/libchat.a $(B)/libchat.so $(B)/chat.pc

$(B)/obj-pic/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@

# One relocatable object with only the public chat_* left global (not the
# internal chat__*), so the codec and
# buffer helpers inside cannot clash with a program's own symbols.
$(B)/libchat.a: $(LIBCHAT_OBJ)
	@rm -f $@
	$(LD) -r -o $(B)/libchat-all.o $^
	objcopy --wildcard --keep-global-symbol='chat_[!_]*' $(B)/libchat-all.o
	$(AR) rcs $@ $(B)/libchat-all.o

$(B)/$(LIBCHAT_SO): $(LIBCHAT_PIC) src/client/libchat.map
	$(CC) -shared -Wl,-soname,libchat.so.0 -Wl,--version-script=src/client/libchat.map \
	    $(LDFLAGS) $(filter %.o,$^) -o $@ $(TLS_LIBS)

$(B)/libchat.so: $(B)/$(LIBCHAT_SO)
	ln -sf $(LIBCHAT_SO) $(B)/libchat.so.0
	ln -sf $(LIBCHAT_SO) $@

# Rewritten only when PREFIX/LIBDIR/INCLUDEDIR change.
$(B)/chat.pc: FORCE
	@mkdir -p $(dir $@)
	@printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$(INCLUDEDIR)' '' \
	    'Name: libchat' 'Description: client library for chat-server' \
	    'Version: $(VERSION)' 'Requires.private: libssl libcrypto' \
	    'Libs: -L$${libdir} -lchat' 'Cflags: -I$${includedir}' > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; echo "wrote $@"; fi

install: libchat
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 include/chat.h $(DESTDIR)$(INCLUDEDIR)/chat.h
	install -m 644 $(B)/libchat.a $(DESTDIR)$(LIBDIR)/libchat.a
	install -m 755 $(B)/$(LIBCHAT_SO) $(DESTDIR)$(LIBDIR)/$(LIBCHAT_SO)
	ln -sf $(LIBCHAT_SO) $(DESTDIR)$(LIBDIR)/libchat.so.0
	ln -sf $(LIBCHAT_SO) $(DESTDIR)$(LIBDIR)/libchat.so
	install -m 644 $(B)/chat.pc $(DESTDIR)$(LIBDIR)/pkgconfig/chat.pc
	install -d $(DESTDIR)$(MANDIR)/man3
	install -m 644 $(B)/man/libchat.3 $(DESTDIR)$(MANDIR)/man3/libchat.3
install: install-server $(B)/man/libchat.3

# Manual pages, from man/*.in into $(B)/man/: @VERSION@ replaced, and the
# marker lines of chat-server(8) and chat-server.conf(5) replaced by what
# the settings table prints (settings-doc man-flags, man-conf: the same
# source as chat-server --help).
MAN_PAGES := $(patsubst man/%.in,$(B)/man/%,$(wildcard man/*.in))
man: $(MAN_PAGES)

$(B)/man/%: man/%.in
	@mkdir -p $(dir $@)
	awk -v v='$(VERSION)' -v sd='$(B)/settings-doc' \
	  '/^\.\\" @OPTIONS@$$/ { fflush(); if (system(sd " man-flags")) exit 1; next } \
	   /^\.\\" @SETTINGS@$$/ { fflush(); if (system(sd " man-conf")) exit 1; next } \
	   { gsub(/@VERSION@/, v); print }' $< > $@.tmp
	mv $@.tmp $@

$(B)/man/chat-server.8 $(B)/man/chat-server.conf.5: $(B)/settings-doc

# The example config: every setting commented out with its default, and
# the two the package sets.
$(B)/chat-server.conf: $(B)/settings-doc
	$(B)/settings-doc conf bind=127.0.0.1 data-dir=/var/lib/chat-server > $@.tmp
	mv $@.tmp $@

# The server, the client, the web client's files (the server serves its
# own copy, built in), the example config (never over an edited one: a
# reinstall puts it beside as chat-server.conf.example), manual pages
# 1, 5, 8 and the systemd unit with this install's paths.
install-server: $(B)/chat-server $(B)/chat-client $(B)/chat-server.conf man
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/chat-server/web \
	  $(DESTDIR)$(SYSCONFDIR)/chat-server $(DESTDIR)$(UNITDIR) \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 755 $(B)/chat-server $(B)/chat-client $(DESTDIR)$(BINDIR)/
	install -m 644 $(WEB_FILES) $(DESTDIR)$(DATADIR)/chat-server/web/
	conf=$(DESTDIR)$(SYSCONFDIR)/chat-server/chat-server.conf; \
	  if [ -e "$$conf" ]; then conf="$$conf.example"; echo "install: keeping $(SYSCONFDIR)/chat-server/chat-server.conf; the new one is $$conf"; fi; \
	  install -m 644 $(B)/chat-server.conf "$$conf"
	install -m 644 $(B)/man/chat-client.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(B)/man/chat-server.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 644 $(B)/man/chat-server.8 $(DESTDIR)$(MANDIR)/man8/
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	  packaging/chat-server.service.in > $(DESTDIR)$(UNITDIR)/chat-server.service
	chmod 644 $(DESTDIR)$(UNITDIR)/chat-server.service

# The Debian package (docs/OPERATIONS.md, "The Debian package"):
# install-server into a staging root, then packaging/mkdeb.sh.
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB      := $(B)/chat-server_$(VERSION)-1_$(DEB_ARCH).deb
DEB_ROOT := $(B)/deb/debian/chat-server
deb: $(DEB)

$(DEB): $(B)/chat-server $(B)/chat-client $(B)/chat-server.conf $(MAN_PAGES) $(WEB_FILES) \
        $(wildcard packaging/* packaging/debian/*)
	rm -rf $(DEB_ROOT)
	$(MAKE) --no-print-directory -s install-server DESTDIR=$(CURDIR)/$(DEB_ROOT) \
	  PREFIX=/usr SYSCONFDIR=/etc UNITDIR=/lib/systemd/system >/dev/null
	packaging/mkdeb.sh $(DEB_ROOT) $(VERSION)-1 $@

# The package checked without installing it (tests/install/package.sh):
# lintian, its files, the manual pages, the unit, the binaries it holds.
package-check: $(DEB) $(MAN_PAGES) libchat
	+B=$(B) tests/install/package.sh $(DEB)

run: deps
	$(MAKE) --no-print-directory all
	$(B)/chat-server --bind 127.0.0.1 --port 8888 --http-port 8080 --data-dir ./chat-data \
	  --history-ttl 30d

unit: $(UNIT_TESTS) $(B)/tests/test_bench
	@set -e; for t in $(UNIT_TESTS) $(B)/tests/test_bench; do echo "== $$t"; $$t; done

integration: $(B)/chat-server $(B)/chat-client $(B)/tests/chat-server-faults $(B)/settings-doc
	CHAT_SERVER=$(CURDIR)/$(B)/chat-server CHAT_CLIENT=$(CURDIR)/$(B)/chat-client \
	CHAT_SERVER_FAULTS=$(CURDIR)/$(B)/tests/chat-server-faults \
	CHAT_SANITIZED=$(SANITIZE) $(PY) -m pytest -q -p no:cacheprovider tests/integration

# The web client in Debian's Chromium (tests/browser: playwright-core from
# npm, installed by `make deps`), against this build's server and client;
# screenshots of each step in build/browser/ (build/asan/browser/ for the
# sanitizer build).
browser: $(B)/chat-server $(B)/chat-client
	CHAT_SERVER=$(CURDIR)/$(B)/chat-server CHAT_CLIENT=$(CURDIR)/$(B)/chat-client \
	CHAT_SCREENSHOTS=$(CURDIR)/$(B)/browser node tests/browser/run.mjs

check: unit integration browser

# The black-box tests with chat-server and chat-client under valgrind
# memcheck: any memory error or definite leak makes the program exit 99 and
# its test fail. Slow (minutes), so not part of `make test`. Left out: the
# crash tests (they measure what SIGKILL loses, not memory) and the abuse
# tests (load with time bounds, 1 GiB through the store, 5,000 sockets: under
# memcheck's slowdown they measure valgrind; they run under ASan in `make
# test`).
valgrind: all build/tests/chat-server-faults
	@mkdir -p build/valgrind
	@for b in chat-server chat-client tests/chat-server-faults; do \
	  printf '#!/bin/sh\nexec %s %s "$$@"\n' "$(CURDIR)/scripts/valgrind-wrap.sh" \
	    "$(CURDIR)/build/$$b" > build/valgrind/$${b#tests/}; \
	  chmod +x build/valgrind/$${b#tests/}; done
	CHAT_SERVER=$(CURDIR)/build/valgrind/chat-server \
	CHAT_CLIENT=$(CURDIR)/build/valgrind/chat-client \
	CHAT_SERVER_FAULTS=$(CURDIR)/build/valgrind/chat-server-faults \
	  $(PY) -m pytest -q -p no:cacheprovider tests/integration \
	  --ignore=tests/integration/test_crash.py \
	  --ignore=tests/integration/test_cluster_crash.py \
	  --ignore=tests/integration/test_abuse.py

# libchat installed with PREFIX and DESTDIR, used through pkg-config.
install-check: libchat
	tests/install/check.sh

# Static analysis: clang-tidy over every C file of src/ with the checks
# chosen (and the ones left out, with why) in .clang-tidy; any finding fails.
# About 30 s on 2 cores. scripts/lint.sh says how.
lint:
	@scripts/lint.sh
	@$(PY) scripts/check_layers.py src/server

# The whole suite, then again under AddressSanitizer + UBSan, then the
# fuzz targets for 30 s each (tests/fuzz/fuzz.mk).
test: deps
	$(MAKE) --no-print-directory check
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory install-check
	$(MAKE) --no-print-directory package-check
	$(MAKE) --no-print-directory SANITIZE=1 check
	$(MAKE) --no-print-directory fuzz-ci

# `make bench` and its programs: bench/bench.mk. `make fuzz`, `make chaos`,
# `make soak`: tests/fuzz/fuzz.mk.
include bench/bench.mk
include tests/fuzz/fuzz.mk

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
