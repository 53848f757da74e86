/*
 * test_store_mem.c -- unit tests for the memory backend of the offline store
 * (src/server/store.h, src/server/store_mem.c).
 *
 * Covers: open (name "memory", not durable), put/take FIFO order per
 * receiver with every field handed to the visitor intact, receivers
 * independent of each other, take with max (0, partial, more than held),
 * take of an unknown receiver, a visitor that returns non-zero stops and
 * leaves that message first (taken by a later take), count, quotas
 * (max_messages and max_bytes -> STORE_EQUOTA with nothing stored, a single
 * message bigger than max_bytes refused, room freed by take, exact-fit
 * edges, quotas per receiver), 0 = unlimited, bodies copied at put (mutating
 * or freeing the caller's buffer afterwards changes nothing), 0-length
 * bodies, a queue emptied and refilled, close with messages still inside
 * (LeakSanitizer checks nothing leaks under `make SANITIZE=1 unit`), and
 * store_strerror strings (non-empty, pairwise distinct).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "server/store.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static uint8_t body_byte(uint32_t seq, uint32_t j) {
    return (uint8_t)(seq * 29u + j * 13u + 0x3Cu);
}

/* A recorded message (deep copy of what the visitor saw). */
typedef struct rec_msg {
    uint32_t receiver, sender, len;
    uint8_t type;
    uint8_t *body;
} rec_msg;

typedef struct recorder {
    rec_msg *msgs;
    size_t n, cap;
    size_t calls;       /* visitor calls, including the refused one */
    size_t stop_after;  /* refuse the message after this many taken; SIZE_MAX: never */
} recorder;

static void rec_init(recorder *r, size_t stop_after) {
    memset(r, 0, sizeof *r);
    r->stop_after = stop_after;
}

static void rec_free(recorder *r) {
    for (size_t i = 0; i < r->n; i++) free(r->msgs[i].body);
    free(r->msgs);
    memset(r, 0, sizeof *r);
}

static int rec_visit(void *arg, const store_msg *m) {
    recorder *r = arg;
    r->calls++;
    if (r->n >= r->stop_after) return 1;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->msgs = realloc(r->msgs, r->cap * sizeof *r->msgs);
        assert_non_null(r->msgs);
    }
    rec_msg *x = &r->msgs[r->n++];
    x->receiver = m->receiver;
    x->sender = m->sender;
    x->type = m->type;
    x->len = m->len;
    x->body = malloc(m->len ? m->len : 1);
    assert_non_null(x->body);
    if (m->len) {
        assert_non_null(m->body);
        memcpy(x->body, m->body, m->len);
    }
    return 0;
}

/* Put message `seq` (sender/type/body derived from seq) of length len. */
static int put_seq(store *s, uint32_t receiver, uint32_t seq, uint32_t len) {
    uint8_t *body = malloc(len ? len : 1);
    assert_non_null(body);
    for (uint32_t j = 0; j < len; j++) body[j] = body_byte(seq, j);
    store_msg m = {receiver, 0x1000u + seq, (uint8_t)(1u + seq % 200u), len, body};
    int r = store_put(s, &m);
    /* Scribble over and free the caller's copy: the store must own its own. */
    memset(body, 0xDD, len ? len : 1);
    free(body);
    return r;
}

/* Check recorded message i is message `seq` for `receiver` of length len. */
static void check_seq(const rec_msg *x, uint32_t receiver, uint32_t seq, uint32_t len) {
    assert_int_equal(x->receiver, receiver);
    assert_int_equal(x->sender, 0x1000u + seq);
    assert_int_equal(x->type, (uint8_t)(1u + seq % 200u));
    assert_int_equal(x->len, len);
    for (uint32_t j = 0; j < len; j++)
        if (x->body[j] != body_byte(seq, j))
            fail_msg("seq %u byte %u: %u != %u", seq, j, x->body[j], body_byte(seq, j));
}

static store *open_store(uint64_t max_messages, uint64_t max_bytes) {
    store_limits lim = {max_messages, max_bytes};
    store *s = store_mem_open(&lim);
    assert_non_null(s);
    return s;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void test_open_close_empty(void **state) {
    (void)state;
    store *s = open_store(0, 0);
    assert_non_null(s->ops);
    assert_string_equal(s->name, "memory");
    assert_int_equal(s->durable, 0);
    assert_int_equal(store_count(s, 1), 0);
    assert_int_equal(store_count(s, 0xFFFFFFFFu), 0);
    recorder rec;
    rec_init(&rec, SIZE_MAX);
    assert_int_equal(store_take(s, 1, 100, rec_visit, &rec), 0);
    assert_int_equal(rec.calls, 0);
    rec_free(&rec);
    store_close(s);
}

static void test_fifo_one_receiver(void **state) {
    (void)state;
    store *s = open_store(0, 0);
    for (uint32_t i = 0; i < 100; i++) {
        assert_int_equal(put_seq(s, 7, i, (i * 17u) % 300u), 0);
        assert_int_equal(store_count(s, 7), i + 1);
    }
    recorder rec;
    rec_init(&rec, SIZE_MAX);
    assert_int_equal(store_take(s, 7, SIZE_MAX, rec_visit, &rec), 100);
    assert_int_equal(rec.n, 100);
    assert_int_equal(rec.calls, 100);
    for (uint32_t i = 0; i < 100; i++) check_seq(&rec.msgs[i], 7, i, (i * 17u) % 300u);
    assert_int_equal(store_count(s, 7), 0);
    /* Nothing left. */
    assert_int_equal(store_take(s, 7, SIZE_MAX, rec_visit, &rec), 0);
    assert_int_equal(rec.calls, 100);
    rec_free(&rec);
    store_close(s);
}

static void test_receivers_independent(void **state) {
    (void)state;
    store *s = open_store(0, 0);
    /* Interleave puts for three receivers. */
    for (uint32_t i = 0; i < 30; i++) {
        uint32_t rcv = i % 3 == 0 ? 1u : i % 3 == 1 ? 2u : 0xFFFFFFFFu;
        assert_int_equal(put_seq(s, rcv, i, i), 0);
    }
    assert_int_equal(store_count(s, 1), 10);
    assert_int_equal(store_count(s, 2), 10);
    assert_int_equal(store_count(s, 0xFFFFFFFFu), 10);
    assert_int_equal(store_count(s, 3), 0);

    recorder rec;
    rec_init(&rec, SIZE_MAX);
    assert_int_equal(store_take(s, 2, SIZE_MAX, rec_visit, &rec), 10);
    for (uint32_t k = 0; k < 10; k++) check_seq(&rec.msgs[k], 2, 3 * k + 1, 3 * k + 1);
    rec_free(&rec);
    assert_int_equal(store_count(s, 2), 0);
    assert_int_equal(store_count(s, 1), 10);
    assert_int_equal(store_count(s, 0xFFFFFFFFu), 10);

    rec_init(&rec, SIZE_MAX);
    assert_int_equal(store_take(s, 0xFFFFFFFFu, SIZE_MAX, rec_visit, &rec), 10);
    for (uint32_t k = 0; k < 10; k++)
        check_seq(&rec.msgs[k], 0xFFFFFFFFu, 3 * k + 2, 3 * k + 2);
    rec_free(&rec);

    rec_init(&rec, SIZE_MAX);
    assert_int_equal(store_take(s, 1, SIZE_MAX, rec_visit, &rec), 10);
    for (uint32_t k = 0; k < 10; k++) check_seq(&rec.msgs[k], 1, 3 * k, 3 * k);
    rec_free(&rec);
    store_close(s);
}

static void test_take_with_max(void **state) {
    (void)state;
    store *s = open_store(0, 0);
    for (uint32_t i = 0; i < 10; i++) assert_int_equal(put_seq(s, 5, i, 8), 0);
    recorder rec;
    rec_init(&rec, SIZE_MAX);

    /* max 0: nothing taken, visitor not called. */
    assert_int_equal(store_take(s, 5, 0, rec_visit, &rec), 0);
    assert_int_equal(rec.calls, 0);
    assert_int_equal(store_count(s, 5), 10);

    assert_int_equal(store_take(s, 5, 3, rec_visit, &rec), 3);
    assert_int_equal(rec.calls, 3);
    assert_int_equal(store_count(s, 5), 7);
    assert_int_equal(store_take(s, 5, 1, rec_visit, &rec), 1);
    assert_int_equal(store_count(s, 5), 6);
    /* More than held. */
    assert_int_equal(store_take(s, 5, 100, rec_visit, &rec), 6);
    assert_int_equal(store_count(s, 5), 0);
    assert_int_equal(rec.n, 10);
    for (uint32_t i = 0; i < 10; i++) check_seq(&rec.msgs[i], 5, i, 8);
    rec_free(&rec);
    store_close(s);
}

static void test_visitor_stop(void **state) {
    (void)state;
    store *s = open_store(0, 0);
    for (uint32_t i = 0; i < 5; i++) assert_int_equal(put_seq(s, 9, i, 4 + i), 0);

    /* Refuse the very first: nothing taken, message stays first. */
    recorder rec;
    rec_init(&rec, 0);
    assert_int_equal(store_take(s, 9, SIZE_MAX, rec_visit, &rec), 0);
    assert_int_equal(rec.calls, 1);
    assert_int_equal(store_count(s, 9), 5);
    rec_free(&rec);

    /* Take two, refuse the third. */
    rec_init(&rec, 2);
    assert_int_equal(store_take(s, 9, SIZE_MAX, rec_visit, &rec), 2);
    assert_int_equal(rec.calls, 3);
    assert_int_equal(store_count(s, 9), 3);
    check_seq(&rec.msgs[0], 9, 0, 4);
    check_seq(&rec.msgs[1], 9, 1, 5);
    rec_free(&rec);

    /* The refused message (#2) comes first next time. */
    rec_init(&rec, SIZE_MAX);
    assert_int_equal(store_take(s, 9, SIZE_MAX, rec_visit, &rec), 3);
    check_seq(&rec.msgs[0], 9, 2, 6);
    check_seq(&rec.msgs[1], 9, 3, 7);
    check_seq(&rec.msgs[2], 9, 4, 8);
    assert_int_equal(store_count(s, 9), 0);
    rec_free(&rec);
    store_close(s);
}

static void test_quota_messages(void **state) {
    (void)state;
    store *s = open_store(3, 0);
    for (uint32_t i = 0; i < 3; i++) assert_int_equal(put_seq(s, 1, i, 10), 0);
    assert_int_equal(put_seq(s, 1, 3, 10), STORE_EQUOTA);
    assert_int_equal(put_seq(s, 1, 4, 0), STORE_EQUOTA);
    assert_int_equal(store_count(s, 1), 3);

    /* Per receiver: another one has its own room. */
    for (uint32_t i = 10; i < 13; i++) assert_int_equal(put_seq(s, 2, i, 10), 0);
    assert_int_equal(put_seq(s, 2, 13, 10), STORE_EQUOTA);
    assert_int_equal(store_count(s, 2), 3);

    /* Take one: room for exactly one more. */
    recorder rec;
    rec_init(&rec, SIZE_MAX);
    assert_int_equal(store_take(s, 1, 1, rec_visit, &rec), 1);
    assert_int_equal(put_seq(s, 1, 5, 10), 0);
    assert_int_equal(put_seq(s, 1, 6, 10), STORE_EQUOTA);
    assert_int_equal(store_count(s, 1), 3);
    /* Refused messages were never stored: order is 0 | 1 2 5. */
    assert_int_equal(store_take(s, 1, SIZE_MAX, rec_visit, &rec), 3);
    assert_int_equal(rec.n, 4);
    check_seq(&rec.msgs[0], 1, 0, 10);
    check_seq(&rec.msgs[1], 1, 1, 10);
    check_seq(&rec.msgs[2], 1, 2, 10);
    check_seq(&rec.msgs[3], 1, 5, 10);
    rec_free(&rec);

    /* Emptied queue: the full quota is available again. */
    for (uint32_t i = 20; i < 23; i++) assert_int_equal(put_seq(s, 1, i, 1), 0);
    assert_int_equal(put_seq(s, 1, 23, 1), STORE_EQUOTA);
    store_close(s);

    /* max_messages = 1. */
    s = open_store(1, 0);
    assert_int_equal(put_seq(s, 1, 0, 0), 0);
    assert_int_equal(put_seq(s, 1, 1, 0), STORE_EQUOTA);
    assert_int_equal(store_count(s, 1), 1);
    store_close(s);
}

static void test_quota_bytes(void **state) {
    (void)state;
    store *s = open_store(0, 100);
    assert_int_equal(put_seq(s, 1, 0, 60), 0);
    assert_int_equal(put_seq(s, 1, 1, 41), STORE_EQUOTA); /* 101 > 100 */
    assert_int_equal(store_count(s, 1), 1);
    assert_int_equal(put_seq(s, 1, 2, 40), 0);            /* exactly 100 */
    assert_int_equal(put_seq(s, 1, 3, 1), STORE_EQUOTA);
    assert_int_equal(put_seq(s, 1, 4, 0), 0);             /* no bytes: fits */
    assert_int_equal(store_count(s, 1), 3);

    /* Per receiver. */
    assert_int_equal(put_seq(s, 2, 5, 100), 0);
    assert_int_equal(put_seq(s, 2, 6, 1), STORE_EQUOTA);

    /* A single message bigger than the quota, on an empty receiver. */
    assert_int_equal(put_seq(s, 3, 7, 101), STORE_EQUOTA);
    assert_int_equal(store_count(s, 3), 0);
    recorder rec;
    rec_init(&rec, SIZE_MAX);
    assert_int_equal(store_take(s, 3, SIZE_MAX, rec_visit, &rec), 0);
    assert_int_equal(rec.calls, 0);

    /* Taking frees room by the taken body's length. */
    assert_int_equal(store_take(s, 1, 1, rec_visit, &rec), 1); /* the 60 */
    check_seq(&rec.msgs[0], 1, 0, 60);
    assert_int_equal(put_seq(s, 1, 8, 61), STORE_EQUOTA);      /* 40 + 61 */
    assert_int_equal(put_seq(s, 1, 9, 60), 0);                 /* 40 + 60 */
    assert_int_equal(put_seq(s, 1, 10, 1), STORE_EQUOTA);
    assert_int_equal(store_take(s, 1, SIZE_MAX, rec_visit, &rec), 3);
    assert_int_equal(rec.n, 4);
    check_seq(&rec.msgs[1], 1, 2, 40);
    check_seq(&rec.msgs[2], 1, 4, 0);
    check_seq(&rec.msgs[3], 1, 9, 60);
    rec_free(&rec);

    /* Emptied: a full-quota message fits again. */
    assert_int_equal(put_seq(s, 1, 11, 100), 0);
    store_close(s);
}

static void test_quota_both(void **state) {
    (void)state;
    store *s = open_store(2, 10);
    assert_int_equal(put_seq(s, 1, 0, 5), 0);
    assert_int_equal(put_seq(s, 1, 1, 6), STORE_EQUOTA); /* bytes */
    assert_int_equal(put_seq(s, 1, 2, 5), 0);
    assert_int_equal(put_seq(s, 1, 3, 0), STORE_EQUOTA); /* messages */
    assert_int_equal(store_count(s, 1), 2);
    store_close(s);
}

static void test_unlimited(void **state) {
    (void)state;
    store *s = open_store(0, 0);
    const uint32_t N = 20000;
    for (uint32_t i = 0; i < N; i++) assert_int_equal(put_seq(s, 4, i, i % 64), 0);
    assert_int_equal(store_count(s, 4), N);
    /* A large body too (1 MiB). */
    assert_int_equal(put_seq(s, 4, N, 1u << 20), 0);
    assert_int_equal(store_count(s, 4), N + 1);

    recorder rec;
    rec_init(&rec, SIZE_MAX);
    assert_int_equal(store_take(s, 4, SIZE_MAX, rec_visit, &rec), N + 1);
    for (uint32_t i = 0; i < N; i++) check_seq(&rec.msgs[i], 4, i, i % 64);
    check_seq(&rec.msgs[N], 4, N, 1u << 20);
    rec_free(&rec);
    store_close(s);
}

static void test_body_copied(void **state) {
    (void)state;
    store *s = open_store(0, 0);
    uint8_t body[32];
    for (int i = 0; i < 32; i++) body[i] = (uint8_t)i;
    store_msg m = {11, 22, 3, 32, body};
    assert_int_equal(store_put(s, &m), 0);
    memset(body, 0xFF, sizeof body);
    m.len = 16; /* the caller's struct can change too */
    m.sender = 99;

    recorder rec;
    rec_init(&rec, SIZE_MAX);
    assert_int_equal(store_take(s, 11, 1, rec_visit, &rec), 1);
    assert_int_equal(rec.msgs[0].receiver, 11);
    assert_int_equal(rec.msgs[0].sender, 22);
    assert_int_equal(rec.msgs[0].type, 3);
    assert_int_equal(rec.msgs[0].len, 32);
    for (int i = 0; i < 32; i++) assert_int_equal(rec.msgs[0].body[i], i);
    rec_free(&rec);
    store_close(s);
}

static void test_zero_length_bodies(void **state) {
    (void)state;
    store *s = open_store(0, 0);
    /* NULL body with len 0 is acceptable. */
    store_msg m = {3, 4, 5, 0, NULL};
    assert_int_equal(store_put(s, &m), 0);
    assert_int_equal(put_seq(s, 3, 1, 0), 0);
    assert_int_equal(put_seq(s, 3, 2, 3), 0);
    assert_int_equal(put_seq(s, 3, 3, 0), 0);
    assert_int_equal(store_count(s, 3), 4);
    recorder rec;
    rec_init(&rec, SIZE_MAX);
    assert_int_equal(store_take(s, 3, SIZE_MAX, rec_visit, &rec), 4);
    assert_int_equal(rec.msgs[0].sender, 4);
    assert_int_equal(rec.msgs[0].type, 5);
    assert_int_equal(rec.msgs[0].len, 0);
    check_seq(&rec.msgs[1], 3, 1, 0);
    check_seq(&rec.msgs[2], 3, 2, 3);
    check_seq(&rec.msgs[3], 3, 3, 0);
    rec_free(&rec);

    /* Under a 1-byte quota, 0-length messages count 0 bytes. */
    store_close(s);
    s = open_store(0, 1);
    for (uint32_t i = 0; i < 50; i++) assert_int_equal(put_seq(s, 3, i, 0), 0);
    assert_int_equal(put_seq(s, 3, 50, 1), 0);
    assert_int_equal(put_seq(s, 3, 51, 1), STORE_EQUOTA);
    assert_int_equal(store_count(s, 3), 51);
    store_close(s);
}

static void test_refill_after_empty(void **state) {
    (void)state;
    store *s = open_store(0, 0);
    recorder rec;
    for (uint32_t round = 0; round < 5; round++) {
        for (uint32_t i = 0; i < 4; i++)
            assert_int_equal(put_seq(s, 8, round * 10 + i, i + round), 0);
        rec_init(&rec, SIZE_MAX);
        assert_int_equal(store_take(s, 8, SIZE_MAX, rec_visit, &rec), 4);
        for (uint32_t i = 0; i < 4; i++) check_seq(&rec.msgs[i], 8, round * 10 + i, i + round);
        rec_free(&rec);
        assert_int_equal(store_count(s, 8), 0);
    }
    /* Partial takes interleaved with puts keep FIFO order. */
    uint32_t next_put = 100, next_take = 100;
    uint32_t seed = 5;
    for (int step = 0; step < 2000; step++) {
        seed = seed * 1103515245u + 12345u;
        if ((seed >> 16) % 3) {
            assert_int_equal(put_seq(s, 8, next_put, next_put % 50), 0);
            next_put++;
        } else {
            rec_init(&rec, SIZE_MAX);
            size_t want = (seed >> 20) % 4;
            size_t got = store_take(s, 8, want, rec_visit, &rec);
            size_t held = next_put - next_take;
            assert_int_equal(got, want < held ? want : held);
            for (size_t k = 0; k < got; k++, next_take++)
                check_seq(&rec.msgs[k], 8, next_take, next_take % 50);
            rec_free(&rec);
        }
        assert_int_equal(store_count(s, 8), next_put - next_take);
    }
    store_close(s);
}

static void test_close_with_messages(void **state) {
    (void)state;
    store *s = open_store(0, 0);
    for (uint32_t rcv = 1; rcv <= 500; rcv++)
        for (uint32_t i = 0; i < rcv % 7 + 1; i++)
            assert_int_equal(put_seq(s, rcv * 7919u, i, (rcv + i) % 100), 0);
    assert_int_equal(store_count(s, 7919u), 2);
    /* Partially drain some so queues of different shapes are left. */
    recorder rec;
    rec_init(&rec, SIZE_MAX);
    for (uint32_t rcv = 1; rcv <= 500; rcv += 3)
        store_take(s, rcv * 7919u, 1, rec_visit, &rec);
    rec_free(&rec);
    store_close(s); /* LeakSanitizer: every message and queue freed */
}

static void test_strerror(void **state) {
    (void)state;
    const int codes[] = {0, STORE_EQUOTA, STORE_ENOMEM, STORE_EIO, -99};
    const size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        const char *a = store_strerror(codes[i]);
        assert_non_null(a);
        assert_true(strlen(a) > 0);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(a, store_strerror(codes[j]));
    }
    /* The error codes themselves are negative and distinct. */
    assert_true(STORE_EQUOTA < 0 && STORE_ENOMEM < 0 && STORE_EIO < 0);
    assert_true(STORE_EQUOTA != STORE_ENOMEM && STORE_ENOMEM != STORE_EIO &&
                STORE_EQUOTA != STORE_EIO);
    assert_non_null(strstr(store_strerror(STORE_EQUOTA), "quota"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_close_empty),
        cmocka_unit_test(test_fifo_one_receiver),
        cmocka_unit_test(test_receivers_independent),
        cmocka_unit_test(test_take_with_max),
        cmocka_unit_test(test_visitor_stop),
        cmocka_unit_test(test_quota_messages),
        cmocka_unit_test(test_quota_bytes),
        cmocka_unit_test(test_quota_both),
        cmocka_unit_test(test_unlimited),
        cmocka_unit_test(test_body_copied),
        cmocka_unit_test(test_zero_length_bodies),
        cmocka_unit_test(test_refill_after_empty),
        cmocka_unit_test(test_close_with_messages),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
