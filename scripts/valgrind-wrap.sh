#!/bin/sh
# Run a program under valgrind memcheck so that any memory error or definite
# leak makes it exit 99 (the tests require exit 0). Used by `make valgrind`:
#   CHAT_SERVER="scripts/valgrind-wrap.sh build/chat-server"
exec valgrind -q --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite,indirect \
    --show-leak-kinds=definite,indirect "$@"
