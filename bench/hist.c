/* hist.c -- see hist.h. */
#include "hist.h"

void hist_add(hist *h, uint64_t us) {
    int p = 0;
    uint64_t sub = us;
    if (us >= HIST_SUB) {
        p = 63 - __builtin_clzll(us) - 5;
        sub = us >> p;
    }
    if (p >= HIST_POW) {
        p = HIST_POW - 1;
        sub = HIST_SUB - 1;
    }
    h->b[p][sub]++;
    h->n++;
}

double hist_pct(const hist *h, double q) {
    uint64_t want = (uint64_t)(q * (double)h->n), seen = 0;
    for (int p = 0; p < HIST_POW; p++)
        for (int s = 0; s < HIST_SUB; s++) {
            seen += h->b[p][s];
            if (seen > want) return (double)((uint64_t)s << p);
        }
    return 0;
}
