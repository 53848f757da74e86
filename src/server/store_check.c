/*
 * store_check.c -- the offline store's invariants (numbered in
 * store_int.h), asserted. Everything here is compiled only without NDEBUG:
 * the release build neither has nor calls these functions (they are only
 * called inside assert()).
 *
 * Costs: store__check_loop and store__check_thread are O(1) apart from the
 * spare list (at most SPARE_MAX) and the failed-fetch queue (empty but
 * under memory pressure); the batch checks are O(batch), once per batch.
 */
#include "server/store_int.h"

#ifndef NDEBUG

#include <assert.h>

static int on_thread(uv_thread_t t) {
    uv_thread_t self = uv_thread_self();
    return uv_thread_equal(&self, &t);
}

int store__check_loop(const store_sqlite *s) {
    assert(on_thread(s->loop_thread));
    const batch *c = s->cur;
    if (c) { /* (4), its O(1) part: the whole at store_flush */
        assert(c->next == NULL && c->gen == 0);
        assert(c->nkind == c->nput + c->nfetch + c->ndev + c->ngrp +
                           c->nmreq + c->npres);
        assert(c->nrow == 0 && c->nout == 0 && c->nupd == 0 &&
               c->ncid == 0 && c->ndupd == 0 && c->nmark == 0);
        assert(c->nput == 0 || c->puts[0].off == 0);
        assert(c->nput == 0 ||
               c->puts[c->nput - 1].off + c->puts[c->nput - 1].len == c->nin);
        assert(c->nput > 0 || c->nin == 0);
    }
    int n = 0; /* (5) */
    for (const batch *b = s->spare; b; b = b->next, n++) {
        assert(n < SPARE_MAX);
        assert(b->nput == 0 && b->nfetch == 0 && b->ndel == 0 &&
               b->nkind == 0 && b->nin == 0 && b->nrow == 0 &&
               b->nout == 0 && b->nupd == 0 && b->gen == 0 &&
               b->ndev == 0 && b->ncur == 0 && b->ncid == 0 &&
               b->ndupd == 0 && b->ngrp == 0 && b->ngsnap == 0 &&
               b->nread == 0 && b->ncontact == 0 && b->nmreq == 0 &&
               b->nmark == 0 && b->npres == 0 && b->npuser == 0);
    }
    assert(n == s->nspare);
    size_t nin = c ? c->nin : 0; /* (6) */
    assert(s->pending >= nin);
    assert(s->gen_done <= s->gen_flushed); /* (8) */
    assert(s->gen_done < s->gen_flushed || s->pending == nin);
    assert(s->failq0 <= s->nfailq && s->nfailq <= s->cfailq); /* (9) */
    for (size_t i = s->failq0; i < s->nfailq; i++) {
        assert(s->failq[i].gen <= s->gen_flushed);
        assert(i == s->failq0 || s->failq[i - 1].gen <= s->failq[i].gen);
    }
    assert(!s->stopped || c == NULL); /* (14) */
    return 1;
}

int store__check_thread(const store_sqlite *s) {
    assert(on_thread(s->thread));
    /* (3) */
    sqlite3_stmt *const *st[] = STATEMENTS(s), *const *sig[] =
        SIG_STATEMENTS(s);
    for (size_t i = 0; i < sizeof st / sizeof *st; i++)
        assert(!sqlite3_stmt_busy(*st[i]));
    for (size_t i = 0; i < sizeof sig / sizeof *sig; i++)
        assert(!sqlite3_stmt_busy(*sig[i]));
    assert(sqlite3_get_autocommit(s->db) || s->rollback_failed);
    assert(s->ntouched == 0); /* (10) */
    assert(s->nretry <= s->cretry); /* (12) */
    assert(s->nretry == 0 || s->next_retry > 0);
    assert(s->ndirty == 0 || s->next_retry > 0); /* (15) */
    for (size_t i = 0; i < s->ndirty; i++) {
        const devuser *u = store__dev_user(s, s->dirty[i].user);
        assert(u);
        int found = 0;
        for (uint32_t k = 0; k < u->n; k++)
            if (u->v[k].dev == s->dirty[i].dev) found += u->v[k].dirty;
        assert(found == 1);
    }
    return 1;
}

/* (17), the part that needs no query: every pair in the set its hash
 * names, once, a < b, both non-zero. */
int store__check_pairs(const store_sqlite *s) {
    assert(on_thread(s->thread));
    for (size_t i = 0; i < PAIR_SLOTS; i++) {
        uint64_t p = s->pairs[i];
        if (!p) continue;
        uint32_t a = (uint32_t)(p >> 32), b = (uint32_t)p;
        assert(a != 0 && a < b);
        size_t set = store__pair_set(p);
        assert(i >= set && i < set + PAIR_WAYS);
        for (size_t k = set; k < i; k++) assert(s->pairs[k] != p);
    }
    return 1;
}

/* (15) for one user's devices, O(devices^2) (few). */
int store__check_devuser(const devuser *u) {
    assert(u->n <= u->cap);
    for (uint32_t i = 0; i < u->n; i++) {
        const devrec *d = &u->v[i];
        assert(d->saved == UINT64_MAX || d->saved <= d->cursor);
        assert((d->dev == 0) == (d->namelen == 0));
        for (uint32_t k = i + 1; k < u->n; k++) assert(u->v[k].dev != d->dev);
    }
    return 1;
}

static int queue_ok(const batch *head, const batch *tail) {
    return (head == NULL) == (tail == NULL) && (!tail || !tail->next);
}

int store__check_queues(const store_sqlite *s) {
    assert(queue_ok(s->inq, s->inq_tail)); /* (2) */
    assert(queue_ok(s->outq, s->outq_tail));
    return 1;
}

int store__check_filled(const batch *b) {
    assert(b->nkind == b->nput + b->nfetch + b->ndev + b->ngrp + b->nmreq +
                       b->npres); /* (4) */
    size_t off = 0, np = 0, nf = 0, nd = 0, ng = 0, nm = 0, nr = 0;
    size_t users = 0;
    for (size_t k = 0; k < b->nkind; k++) {
        if (b->kinds[k] == KIND_MARKS) {
            assert(b->mreqs[nm++].status == STATUS_PENDING);
        } else if (b->kinds[k] == KIND_PRES) { /* (16) */
            const pres_req *r = &b->preqs[nr++];
            assert(r->status == STATUS_PENDING && r->user0 == users &&
                   r->n <= STORE_PRESENCE_MAX);
            users += r->n;
        } else if (b->kinds[k] == KIND_PUT) {
            const put_req *p = &b->puts[np++];
            assert(p->off == off && p->status == STATUS_PENDING);
            assert(p->id < UINT64_C(1) << 63); /* (13) */
            off += p->len;
        } else if (b->kinds[k] == KIND_GROUP) {
            assert(b->grps[ng].status == STATUS_PENDING &&
                   b->grps[ng].user0 + b->grps[ng].nusers <= b->nguser);
            ng++;
        } else if (b->kinds[k] == KIND_DEV) {
            assert(b->devs[nd].status == STATUS_PENDING &&
                   b->devs[nd].namelen <= STORE_DEVICE_MAX);
            nd++;
        } else {
            assert(b->kinds[k] == KIND_FETCH);
            nf++;
        }
    }
    assert(np == b->nput && nf == b->nfetch && nd == b->ndev &&
           ng == b->ngrp && nm == b->nmreq && nr == b->npres &&
           off == b->nin);
    assert(users == b->npuser && users <= b->cpallow && /* (16) */
           users <= b->cpseen);
    assert(b->nrow == 0 && b->nout == 0 && b->nupd == 0 && b->gen == 0 &&
           b->ncid == 0 && b->ndupd == 0 && b->nmark == 0);
    return 1;
}

int store__check_done(const store_sqlite *s, const batch *b) {
    if (b->gen == 0) { /* (8): made by the thread, counters only */
        assert(b->nkind == 0 && b->nput == 0 && b->nfetch == 0 &&
               b->ndel == 0 && b->nrow == 0 && b->ndev == 0 && b->ncur == 0 &&
               b->ngrp == 0 && b->nmreq == 0 && b->npres == 0);
        return 1;
    }
    assert(b->gen == s->gen_done + 1);
    assert(b->nkind == b->nput + b->nfetch + b->ndev + b->ngrp + b->nmreq +
                       b->npres);
    size_t marks = 0; /* (16) */
    for (size_t i = 0; i < b->nmreq; i++) {
        const mark_req *r = &b->mreqs[i];
        assert(r->status <= 0);
        assert(r->status == STORE_OK || r->nmarks == 0);
        assert(r->nmarks <= STORE_MARKS_MAX);
        assert(r->nmarks == 0 || (r->mark0 == marks &&
                                  r->mark0 + r->nmarks <= b->nmark));
        marks += r->nmarks;
    }
    assert(marks == b->nmark);
    for (size_t i = 0; i < b->npres; i++) {
        const pres_req *r = &b->preqs[i];
        assert(r->status <= 0 && r->user0 + r->n <= b->npuser);
        for (size_t j = r->user0; r->status == STORE_OK && j < r->user0 + r->n;
             j++)
            assert(b->pallow[j] <= 1);
    }
    for (size_t i = 0; i < b->ngrp; i++) /* (7) */
        assert(b->grps[i].status <= 0);
    for (size_t i = 0; i < b->ndev; i++) { /* (7) */
        const dev_req *r = &b->devs[i];
        assert(r->status <= 0);
        assert(r->status != STORE_OK || r->cid0 + r->ncid <= b->ncid);
        assert(r->ncid <= STORE_DEDUP_MAX);
    }
    for (size_t i = 0; i < b->nput; i++) /* (7) */
        assert(b->puts[i].status <= 0);
    size_t rows = 0;
    for (size_t i = 0; i < b->nfetch; i++) {
        const fetch_req *f = &b->fetch[i];
        if (f->status != STORE_OK) assert(f->nrows == 0 && f->more == 0);
        assert(f->nrows <= (f->max_rows ? f->max_rows : 1));
        assert(f->row0 + f->nrows <= b->nrow);
        for (size_t j = f->row0; j < f->row0 + f->nrows; j++) {
            const store_row *r = &b->rows[j];
            if (f->hist) { /* newest first, below `before` */
                assert(!f->after_id || r->id < f->after_id);
                assert(j == f->row0 || b->rows[j - 1].id > r->id);
            } else {
                assert(r->id > f->after_id);
                assert(j == f->row0 || b->rows[j - 1].id < r->id);
            }
            assert(r->len == 0 || (b->out && r->body == b->out + b->roff[j] &&
                                   b->roff[j] + r->len <= b->nout));
        }
        rows += f->nrows;
    }
    assert(rows == b->nrow);
    return 1;
}

#else
typedef int store_check_empty; /* ISO C wants a declaration in every file */
#endif
