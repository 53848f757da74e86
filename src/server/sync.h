/*
 * sync.h -- SYNC, LIVE and HELD: a bound connection's frames from the
 * store.
 *
 * Every routing connection binds SYNC (its stored frames come first) and
 * fetches them in id order, a page at a time (FETCHING while one is asked
 * for), as its output drains; frames stored for its user meanwhile are
 * kept in `tail` (up to --max-outbuf). When a page comes back with nothing
 * further, the tail's frames that the page did not hold are queued and
 * the connection is LIVE: frames are appended directly. A LIVE connection
 * whose output would pass --max-outbuf spills back to SYNC (the sender is
 * never slowed down by a slow receiver).
 *
 * A message that carries a client id and is stored (msgref.held) is
 * queued to no one before its put completed: a LIVE connection it is for
 * turns HELD, and it and every message after it wait in the tail, in id
 * order, until the store says it is committed (sync_committed: then
 * queued) or refused (then dropped: it goes to no one). A kill before the
 * commit therefore loses it everywhere, and the sender's resend delivers
 * it once (docs/PROTOCOL.md, "Effectively once"). Puts that name a
 * connection complete in id order (ids are taken and puts queued in one
 * step, and the store answers in request order), so one id, hub.committed,
 * says what is committed. The held messages of one connection are bounded
 * by --max-outbuf, past which it spills to SYNC (they are stored).
 *
 * A peer that acknowledges holds each stored frame it was sent until its
 * ACK; at most --max-unacked of them: pages are sized to the room left,
 * and a full window waits for ACKs (deliver.c closes a LIVE receiver that
 * would pass it, with ERROR SLOW; its frames stay stored).
 *
 * Also the store's completions for connections (puts and fetches).
 */
#ifndef CHAT_SERVER_SYNC_H
#define CHAT_SERVER_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "server/conn.h"
#include "server/output.h"

/* The top bit of a put's seq: the sender does not count it (it did not
 * ask for acknowledgements); the put only names it for a refusal. */
#define SYNC_PUT_UNNAMED ((uint64_t)1 << 63)

/* Frames sent to c and not yet acknowledged (0 without acknowledgements). */
static inline size_t sync_unacked(const conn *c) {
    return c->ackq.n - c->ackq.head;
}

/* Just bound (SYNC): ask for the first page. */
void sync_start(conn *c);

/* SYNC: ask for the next page, if the output has drained enough and the
 * acknowledgement window has room. */
void sync_fetch(conn *c);

/* LIVE or HELD -> SYNC: frames for this user now wait in the store (a
 * held message too: the next fetch comes after its commit). */
void sync_spill(conn *c);

/* LIVE or HELD -> SYNC, and fetch: the store's feed was interrupted
 * (deliver_resync), so what it brought meanwhile is fetched instead. */
void sync_resync(conn *c);

/* Message m was stored for this SYNC connection's device. */
void sync_stored(conn *c, const msgref *m);

/* Does LIVE or HELD connection c have to hold message m (rather than queue
 * it now)? */
static inline int sync_holds(const conn *c, const msgref *m) {
    return c->state == CONN_HELD || (m->held && m->id > c->hub->committed);
}

/* Hold stored message m for LIVE or HELD connection c (sync_holds): LIVE
 * -> HELD; past --max-outbuf of held messages, -> SYNC. */
void sync_hold(conn *c, const msgref *m);

/* The put of message `id` that named a connection completed; status 0:
 * committed, else refused (it was queued to no one and never will be).
 * Every HELD connection queues what waited for it. */
void sync_committed(hub *h, uint64_t id, int status);

/* The peer acknowledged its first `count` frames (handled: count <=
 * seq_out): their stored copies go, and a waiting fetch may go on. */
void sync_acked(conn *c, uint64_t count);

/* Store completions naming c (each drops the reference its request took).
 * put: `named` when the sender wants acknowledgements (counted in
 * puts_pending); cid: the message's client id (0: none), forgotten when
 * it was refused. */
void sync_put_done(conn *c, uint64_t seq, int named, uint64_t id, uint64_t cid,
                   int status);
void sync_fetch_done(conn *c, const store_row *rows, size_t n, int more,
                     int status);

/* Free the tail's memory when empty (cron). Returns the bytes freed. */
size_t sync_shrink(conn *c);

#endif
