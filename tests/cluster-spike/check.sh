#!/bin/sh
# SPIKE (not built by make): which hiredis features the installed headers
# have. Each line: a feature, then "yes" when a one-line program using it
# compiles and links against pkg-config's hiredis.
cd "$(dirname "$0")"
t=$(mktemp -d)
try() { # name, includes, statement
    printf '%s\nint main(void){ %s; return 0; }\n' "$2" "$3" > "$t/x.c"
    if cc -o "$t/x" "$t/x.c" $(pkg-config --cflags --libs hiredis libuv) 2>/dev/null
    then echo "$1: yes"; else echo "$1: no"; fi
}
echo "hiredis $(pkg-config --modversion hiredis)"
try "async API (redisAsyncConnect)" '#include <hiredis/async.h>' 'redisAsyncConnect("127.0.0.1", 6379)'
try "libuv adapter (adapters/libuv.h)" '#include <hiredis/adapters/libuv.h>' 'redisLibuvAttach(0, uv_default_loop())'
try "RESP parser alone (redisReaderCreate)" '#include <hiredis/hiredis.h>' 'redisReaderFree(redisReaderCreate())'
try "command encoder alone (redisFormatCommandArgv)" '#include <hiredis/hiredis.h>' 'char *o; const char *a[1] = {"PING"}; redisFormatCommandArgv(&o, 1, a, 0)'
try "TLS (hiredis/hiredis_ssl.h, redisInitiateSSLWithContext)" '#include <hiredis/hiredis_ssl.h>' 'redisInitiateSSLWithContext(0, 0)'
try "async connect options (redisAsyncConnectWithOptions)" '#include <hiredis/async.h>' 'redisOptions o = {0}; redisAsyncConnectWithOptions(&o)'
try "async command timeout (redisAsyncSetTimeout)" '#include <hiredis/async.h>' 'struct timeval tv = {1, 0}; redisAsyncSetTimeout(0, tv)'
try "custom I/O hooks (redisContextFuncs)" '#include <hiredis/hiredis.h>' 'redisContextFuncs f; (void)f'
try "RESP3 push replies (REDIS_REPLY_PUSH)" '#include <hiredis/hiredis.h>' 'int x = REDIS_REPLY_PUSH; (void)x'
rm -rf "$t"
