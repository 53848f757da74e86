/*
 * login.h -- who a connection is.
 *
 * Without logins (--auth off) a connection binds to the sender of its
 * first frame (a data frame, or HELLO, answered with WELCOME). With logins
 * (--auth on) the first frame must be HELLO with the account's password:
 * the password is checked off the loop (auth.h), the connection waits in
 * LOGIN (not reading; what followed the HELLO stays unparsed in the framing
 * layer), and then binds (WELCOME, then the kept input is parsed) or is
 * DENIED: answered ERROR AUTH CONN_AUTH_FAIL_MS after its HELLO arrived
 * (the same delay for an unknown id and a wrong password), then closed.
 */
#ifndef CHAT_SERVER_LOGIN_H
#define CHAT_SERVER_LOGIN_H

#include <stdint.h>

#include "server/conn.h"

/* NEW -> SYNC (routing) or ECHO (--echo) as `user`, in the router. 0, or
 * -1 when refused (user 0) or out of memory (c is closing or closed). */
int login_bind(conn *c, uint32_t user);

/* A HELLO frame from a NEW connection (its header was checked). */
void login_hello(conn *c, const frame_c2s *f);

#endif
