/*
 * store.c -- store.h's functions, each passed to the backend the store
 * was opened with (its operations table: store_backend.h), and what is
 * the same for every backend (store_strerror). Nothing here keeps state.
 *
 * Each dispatcher asserts that the store has a table and the table the
 * operation (store_backend.h says which may be NULL, and what is done
 * then); a release build calls through without checking.
 */
#include "server/store_backend.h"

#include <assert.h>

const char *store_strerror(int status) {
    switch (status) {
    case STORE_OK: return "ok";
    case STORE_EQUOTA: return "the receiver's offline quota is full";
    case STORE_ENOMEM: return "out of memory";
    case STORE_EIO: return "the message store could not be written";
    case STORE_EFULL: return "the disk is full";
    case STORE_ECORRUPT: return "the message database is damaged";
    case STORE_EBUSY: return "another chat-server uses the data directory";
    case STORE_EWEAK:
        return "the store's persistence is too weak for an acknowledgement";
    case STORE_EREPLICAS:
        return "fewer Redis replicas than --cluster-wait have it yet "
               "(stored on the primary; resend with the same client id)";
    default: return "unknown store error";
    }
}

int store_put(store *s, const store_msg *m, int quota, void *token,
              uint64_t seq) {
    assert(s && s->ops && s->ops->put);
    return s->ops->put(s, m, quota, token, seq);
}

void store_del(store *s, uint32_t user, uint64_t id) {
    assert(s && s->ops && s->ops->del);
    s->ops->del(s, user, id);
}

void store_fetch(store *s, uint32_t user, uint32_t dev, int conv,
                 uint64_t after_id, uint32_t max_rows, uint32_t max_bytes,
                 void *token) {
    assert(s && s->ops && s->ops->fetch);
    s->ops->fetch(s, user, dev, conv, after_id, max_rows, max_bytes, token);
}

void store_device(store *s, uint32_t user, const char *name, size_t namelen,
                  int conv, void *token) {
    assert(s && s->ops && s->ops->device);
    s->ops->device(s, user, name, namelen, conv, token);
}

void store_cursor(store *s, uint32_t user, uint32_t dev, uint64_t cursor,
                  int closed) {
    assert(s && s->ops && s->ops->cursor);
    s->ops->cursor(s, user, dev, cursor, closed);
}

void store_history(store *s, uint32_t user, uint32_t peer, uint32_t group,
                   uint64_t min_id, uint64_t before, uint32_t max_rows,
                   uint32_t max_bytes, void *token) {
    assert(s && s->ops && s->ops->history);
    s->ops->history(s, user, peer, group, min_id, before, max_rows,
                    max_bytes, token);
}

void store_group(store *s, const store_group_op *op, void *token) {
    assert(s && s->ops && s->ops->group);
    s->ops->group(s, op, token);
}

void store_read_mark(store *s, uint32_t user, uint32_t peer, uint32_t group,
                     uint64_t upto, int64_t ts) {
    assert(s && s->ops && s->ops->read_mark);
    s->ops->read_mark(s, user, peer, group, upto, ts);
}

void store_marks(store *s, uint32_t user, uint32_t peer, uint32_t group,
                 void *token) {
    assert(s && s->ops && s->ops->marks);
    s->ops->marks(s, user, peer, group, token);
}

void store_contact(store *s, uint32_t a, uint32_t b) {
    assert(s && s->ops && s->ops->contact);
    s->ops->contact(s, a, b);
}

void store_presence(store *s, uint32_t user, const uint32_t *users, size_t n,
                    int check, void *token) {
    assert(s && s->ops && s->ops->presence);
    s->ops->presence(s, user, users, n, check, token);
}

const groups *store_groups(const store *s) {
    assert(s && s->ops && s->ops->groups);
    return s->ops->groups(s);
}

void store_devices(const store *s, uint32_t user, unsigned *all,
                   unsigned *conv) {
    assert(s && s->ops && s->ops->devices);
    s->ops->devices(s, user, all, conv);
}

void store_flush(store *s) {
    assert(s && s->ops && s->ops->flush);
    s->ops->flush(s);
}

void store_set_quota(store *s, uint64_t max_messages, uint64_t max_bytes) {
    assert(s && s->ops && s->ops->set_quota);
    s->ops->set_quota(s, max_messages, max_bytes);
}

size_t store_pending_bytes(const store *s) {
    assert(s && s->ops && s->ops->pending_bytes);
    return s->ops->pending_bytes(s);
}

const store_stats *store_stats_of(const store *s) {
    assert(s && s->ops && s->ops->stats_of);
    return s->ops->stats_of(s);
}

uint64_t store_count(const store *s, uint32_t receiver) {
    assert(s && s->ops && s->ops->count);
    return s->ops->count(s, receiver);
}

/* -- optional: the ids the loop gives (store_backend.h) ------------------ */

int store_ids_local(const store *s) {
    assert(s && s->ops);
    assert(!s->ops->next_id == !s->ops->ids_reserve); /* both or neither */
    return s->ops->next_id != NULL;
}

uint64_t store_next_id(const store *s) {
    return store_ids_local(s) ? s->ops->next_id(s) : 0;
}

void store_ids_reserve(store *s, uint64_t upto) {
    if (store_ids_local(s)) s->ops->ids_reserve(s, upto);
}

/* -- whether other processes share the store (store_backend.h) ---------- */

int store_shared(const store *s) {
    assert(s && s->ops);
    assert(!s->ops->shared || s->ops->online); /* (it routes by who is where) */
    return s->ops->shared;
}

/* -- closing ------------------------------------------------------------- */

void store_stop(store *s) {
    assert(s && s->ops && s->ops->stop);
    s->ops->stop(s);
}

void store_free(store *s) {
    if (!s) return; /* as free(NULL) */
    assert(s->ops && s->ops->free);
    s->ops->free(s);
}

void store_online(store *s, uint32_t user, int on) {
    assert(s && s->ops);
    if (s->ops->online) s->ops->online(s, user, on);
}

int store_acks(const store *s) {
    assert(s && s->ops);
    return s->ops->acks ? s->ops->acks(s) : 1;
}

void store_relay(store *s, uint32_t user, uint32_t sender, uint8_t type,
                 const uint8_t *body, size_t len) {
    assert(s && s->ops);
    if (s->ops->relay) s->ops->relay(s, user, sender, type, body, len);
}

int store_accounts(const store *s) {
    assert(s && s->ops);
    return s->ops->account != NULL;
}

void store_account(store *s, uint32_t user, void *token) {
    assert(s && s->ops && s->ops->account); /* (store_accounts() is 1) */
    s->ops->account(s, user, token);
}
