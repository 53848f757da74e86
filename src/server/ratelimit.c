/* ratelimit.c -- see ratelimit.h. */
#include "server/ratelimit.h"

void ratelimit_init(ratelimit *r, const ratelimit_cfg *cfg, uint64_t now) {
    r->frames = (int64_t)cfg->msgs * 1000;
    r->bytes = (int64_t)cfg->bytes * 1000;
    r->t = now;
    r->over_since = 0;
}

/* Add the tokens earned since r->t (at most one second's worth). */
static void refill(ratelimit *r, const ratelimit_cfg *cfg, uint64_t now) {
    if (now <= r->t) return;
    uint64_t el = now - r->t;
    r->t = now;
    if (el > 1000) el = 1000; /* a bucket holds one second */
    int full = 1;
    if (cfg->msgs) {
        int64_t cap = (int64_t)cfg->msgs * 1000;
        r->frames += (int64_t)(el * cfg->msgs);
        if (r->frames >= cap) r->frames = cap;
        else full = 0;
    }
    if (cfg->bytes) {
        int64_t cap = (int64_t)cfg->bytes * 1000;
        r->bytes += (int64_t)(el * cfg->bytes);
        if (r->bytes >= cap) r->bytes = cap;
        else full = 0;
    }
    if (full) r->over_since = 0; /* back under the rate for a second */
}

static int in_debt(const ratelimit *r) { return r->frames < 0 || r->bytes < 0; }

int ratelimit_charge(ratelimit *r, const ratelimit_cfg *cfg, uint64_t frames,
                     uint64_t bytes, uint64_t now) {
    if (!ratelimit_on(cfg)) return RATE_OK;
    refill(r, cfg, now);
    if (cfg->msgs) r->frames -= (int64_t)frames * 1000;
    if (cfg->bytes) r->bytes -= (int64_t)bytes * 1000;
    if (!in_debt(r)) return RATE_OK;
    if (!r->over_since) {
        r->over_since = now ? now : 1;
        return RATE_OVER_NEW;
    }
    return now - r->over_since >= cfg->grace_ms ? RATE_EXPIRED : RATE_OVER;
}

int ratelimit_poll(ratelimit *r, const ratelimit_cfg *cfg, uint64_t now) {
    refill(r, cfg, now);
    if (!in_debt(r)) return RATE_OK;
    return r->over_since && now - r->over_since >= cfg->grace_ms ? RATE_EXPIRED
                                                                 : RATE_OVER;
}
