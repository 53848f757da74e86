/*
 * metrics.c -- histograms and the Prometheus text exposition writer
 * (metrics.h). The format: https://prometheus.io/docs/instrumenting/
 * exposition_formats/ (version 0.0.4): one "# HELP name text" and one
 * "# TYPE name type" line per family, then "name{label="value",...} value"
 * lines; in HELP text \ and newline are escaped, in label values \, " and
 * newline.
 */
#include "metrics.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Histograms ------------------------------------------------------- */

static const uint64_t bounds_latency_us[] = {
    50,    100,    250,    500,    1000,    2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
static const uint64_t bounds_count[] = {1,    4,    16,    64,   256,
                                        1024, 4096, 16384, 65536};
static const uint64_t bounds_bytes[] = {
    64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216};

#define NBOUNDS(a) ((unsigned)(sizeof(a) / sizeof((a)[0])))

static const struct {
    const uint64_t *le;
    unsigned n;
    unsigned decimals;
} kinds[METRICS_KINDS] = {
    [METRICS_LATENCY_US] = {bounds_latency_us, NBOUNDS(bounds_latency_us), 6},
    [METRICS_COUNT] = {bounds_count, NBOUNDS(bounds_count), 0},
    [METRICS_BYTES] = {bounds_bytes, NBOUNDS(bounds_bytes), 0},
};

/* counts[] has room for the largest table, which is the latency one. */
_Static_assert(NBOUNDS(bounds_latency_us) == METRICS_HIST_BOUNDS &&
                   NBOUNDS(bounds_count) <= METRICS_HIST_BOUNDS &&
                   NBOUNDS(bounds_bytes) <= METRICS_HIST_BOUNDS,
               "METRICS_HIST_BOUNDS is not the largest table's size");
_Static_assert(sizeof(metrics_hist) == 168, "metrics.h says 168 bytes");

void metrics_hist_init(metrics_hist *h, metrics_kind kind) {
    assert((unsigned)kind < METRICS_KINDS);
    memset(h, 0, sizeof *h);
    h->kind = kind;
}

void metrics_hist_observe(metrics_hist *h, uint64_t v) {
    metrics_hist_observe_n(h, v, 1);
}

void metrics_hist_observe_n(metrics_hist *h, uint64_t v, uint64_t times) {
    assert((unsigned)h->kind < METRICS_KINDS);
    const uint64_t *le = kinds[h->kind].le;
    /* The first bound >= v (lower bound): [lo, lo + n) is the range left;
     * every bound before lo is < v. */
    unsigned lo = 0, n = kinds[h->kind].n;
    while (n > 0) {
        unsigned half = n / 2;
        if (le[lo + half] < v) {
            lo += half + 1;
            n -= half + 1;
        } else {
            n = half;
        }
    }
    h->counts[lo] += times; /* lo == the kind's n: +Inf */
    h->sum += v * times;
    h->count += times;
}

const uint64_t *metrics_bounds(metrics_kind kind, unsigned *n) {
    assert((unsigned)kind < METRICS_KINDS);
    *n = kinds[kind].n;
    return kinds[kind].le;
}

unsigned metrics_decimals(metrics_kind kind) {
    assert((unsigned)kind < METRICS_KINDS);
    return kinds[kind].decimals;
}

int metrics_hist_check(const metrics_hist *h) {
    assert((unsigned)h->kind < METRICS_KINDS);
    unsigned n = kinds[h->kind].n;
    uint64_t total = 0;
    for (unsigned i = 0; i <= n; i++) total += h->counts[i];
    for (unsigned i = n + 1; i <= METRICS_HIST_BOUNDS; i++)
        assert(h->counts[i] == 0);
    assert(total == h->count);
    (void)total;
    return 1;
}

/* ---- Names ------------------------------------------------------------ */

static int is_alpha_(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

int metrics_name_ok(const char *s) {
    if (!is_alpha_(*s) && *s != ':') return 0;
    for (s++; *s; s++)
        if (!is_alpha_(*s) && !is_digit(*s) && *s != ':') return 0;
    return 1;
}

#ifndef NDEBUG
/* A label name of the caller's: [a-zA-Z_][a-zA-Z0-9_]*, not __reserved,
 * not le (the histograms'). For assert. */
static int label_name_ok(const char *s) {
    if (!is_alpha_(*s) || (s[0] == '_' && s[1] == '_')) return 0;
    if (!strcmp(s, "le")) return 0;
    for (s++; *s; s++)
        if (!is_alpha_(*s) && !is_digit(*s)) return 0;
    return 1;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !memcmp(s + n - m, suffix, m);
}
#endif

/* ---- Writing ---------------------------------------------------------- */

void metrics_out_init(metrics_out *o, buf *b, size_t limit) {
    memset(o, 0, sizeof *o);
    o->b = b;
    o->limit = limit;
    o->type = -1;
}

int metrics_out_status(const metrics_out *o) { return o->err; }

static void put(metrics_out *o, const char *s, size_t n) {
    if (o->err) return;
    o->err = buf_append(o->b, s, n, o->limit);
}

static void puts_(metrics_out *o, const char *s) { put(o, s, strlen(s)); }

/* s with \ and newline escaped, and " too when quote (a label value). */
static void put_escaped(metrics_out *o, const char *s, int quote) {
    const char *run = s;
    for (; *s; s++) {
        const char *esc = *s == '\\'             ? "\\\\"
                          : *s == '\n'           ? "\\n"
                          : (quote && *s == '"') ? "\\\""
                                                 : NULL;
        if (!esc) continue;
        put(o, run, (size_t)(s - run));
        put(o, esc, 2);
        run = s + 1;
    }
    put(o, run, (size_t)(s - run));
}

/* v / 10^decimals, exactly, without trailing zeros: "0.00005", "12", "1.5".
 * out: at least 22 bytes (20 digits, the point, the NUL). */
static const char *fmt_fixed(char out[24], uint64_t v, unsigned decimals) {
    assert(decimals <= 9);
    uint64_t p = 1;
    for (unsigned i = 0; i < decimals; i++) p *= 10;
    uint64_t whole = v / p, frac = v % p;
    int n = snprintf(out, 24, "%" PRIu64, whole);
    assert(n > 0 && n < 24);
    if (frac) {
        out[n++] = '.';
        for (unsigned i = decimals; i-- > 0;) {
            out[n + (int)i] = (char)('0' + frac % 10);
            frac /= 10;
        }
        n += (int)decimals;
        while (out[n - 1] == '0') n--;
    }
    out[n] = '\0';
    return out;
}

/* The shortest of %.15g, %.16g, %.17g that reads back as v. */
static const char *fmt_double(char out[32], double v) {
    if (isnan(v)) return "NaN";
    if (isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    for (int prec = 15; prec <= 17; prec++) {
        (void)snprintf(out, 32, "%.*g", prec, v); /* at most 24 bytes */
        if (strtod(out, NULL) == v) break;
    }
    return out;
}

/* name[suffix]{labels[,le="le"]} value\n */
static void put_sample(metrics_out *o, const char *name, const char *suffix,
                       const char *const *labels, const char *le,
                       const char *value) {
    puts_(o, name);
    puts_(o, suffix);
    if ((labels && labels[0]) || le) {
        const char *sep = "{";
        for (const char *const *l = labels; l && l[0]; l += 2) {
            assert(label_name_ok(l[0]));
            assert(l[1] != NULL); /* a name without its value */
            puts_(o, sep);
            puts_(o, l[0]);
            puts_(o, "=\"");
            put_escaped(o, l[1], 1);
            puts_(o, "\"");
            sep = ",";
        }
        if (le) {
            puts_(o, sep);
            puts_(o, "le=\"");
            puts_(o, le);
            puts_(o, "\"");
        }
        puts_(o, "}");
    }
    puts_(o, " ");
    puts_(o, value);
    puts_(o, "\n");
}

#ifndef NDEBUG
/* For assert: a sample of name belongs to the family just announced. */
static int in_family(const metrics_out *o, const char *name, int type) {
    if (!o->family || strcmp(o->family, name) != 0) return 0;
    return type < 0 ? o->type != METRICS_HISTOGRAM : o->type == type;
}
#endif

void metrics_family(metrics_out *o, const char *name, metrics_type type,
                    const char *help) {
    static const char *const type_names[] = {[METRICS_COUNTER] = "counter",
                                             [METRICS_GAUGE] = "gauge",
                                             [METRICS_HISTOGRAM] = "histogram"};
    assert(metrics_name_ok(name));
    assert((unsigned)type <= METRICS_HISTOGRAM);
    assert(type != METRICS_COUNTER || ends_with(name, "_total"));
    for (unsigned i = 0; i < o->nseen; i++)
        assert(strcmp(o->seen[i], name) != 0); /* one family, once */
    if (o->nseen < METRICS_OUT_FAMILIES) o->seen[o->nseen++] = name;
    o->family = name;
    o->type = (int)type;
    puts_(o, "# HELP ");
    puts_(o, name);
    puts_(o, " ");
    put_escaped(o, help, 0);
    puts_(o, "\n# TYPE ");
    puts_(o, name);
    puts_(o, " ");
    puts_(o, type_names[type]);
    puts_(o, "\n");
}

void metrics_u64(metrics_out *o, const char *name, const char *const *labels,
                 uint64_t v) {
    assert(in_family(o, name, -1));
    char s[24];
    (void)snprintf(s, sizeof s, "%" PRIu64, v); /* at most 20 digits */
    put_sample(o, name, "", labels, NULL, s);
}

void metrics_f64(metrics_out *o, const char *name, const char *const *labels,
                 double v) {
    assert(in_family(o, name, -1));
    char s[32];
    put_sample(o, name, "", labels, NULL, fmt_double(s, v));
}

void metrics_fixed(metrics_out *o, const char *name, const char *const *labels,
                   uint64_t v, unsigned decimals) {
    assert(in_family(o, name, -1));
    char s[24];
    put_sample(o, name, "", labels, NULL, fmt_fixed(s, v, decimals));
}

void metrics_hist_render(metrics_out *o, const char *name,
                         const char *const *labels, const metrics_hist *h) {
    assert(in_family(o, name, METRICS_HISTOGRAM));
    assert(metrics_hist_check(h));
    unsigned n = kinds[h->kind].n, decimals = kinds[h->kind].decimals;
    const uint64_t *le = kinds[h->kind].le;
    char les[24], v[24];
    uint64_t cum = 0;
    for (unsigned i = 0; i < n; i++) {
        cum += h->counts[i];
        (void)snprintf(v, sizeof v, "%" PRIu64, cum);
        put_sample(o, name, "_bucket", labels, fmt_fixed(les, le[i], decimals),
                   v);
    }
    cum += h->counts[n];
    (void)snprintf(v, sizeof v, "%" PRIu64, cum);
    put_sample(o, name, "_bucket", labels, "+Inf", v);
    put_sample(o, name, "_sum", labels, NULL, fmt_fixed(les, h->sum, decimals));
    /* The +Inf bucket's count: equal to h->count (metrics_hist_check), and
     * consistent with the buckets even where it would not be. */
    put_sample(o, name, "_count", labels, NULL, v);
}
