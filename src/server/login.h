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
 *
 * Every bound routing connection is a device of its user (docs/PROTOCOL.md,
 * "Devices and conversations"): the one its HELLO names with CONV, else the
 * default device. The store looks it up (its number, cursor and recent
 * client ids); a CONV connection waits for that in LOGIN (after the
 * password check, if any) and binds when it is back, another binds at once
 * and fetches once its device is known.
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

/* The store looked c's device up (store_callbacks.device_done; drops the
 * reference the request took): a CONV connection in LOGIN binds now
 * (WELCOME, then what followed its HELLO); a bound one starts fetching. */
void login_device_done(conn *c, const store_device_info *d, int status);

/* c's user has `all` devices, `conv` of them CONV (what deliver() needs to
 * know whether every device is here). */
void login_devices(conn *c, unsigned all, unsigned conv);

#endif
