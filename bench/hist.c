/* hist.c -- see hist.h. */
#include "hist.h"

double hist_pct(const hist *h, double q) {
    uint64_t want = (uint64_t)(q * (double)h->n), seen = 0;
    for (int p = 0; p < HIST_POW; p++)
        for (int s = 0; s < HIST_SUB; s++) {
            seen += h->b[p][s];
            if (seen > want) return (double)((uint64_t)s << p);
        }
    return 0;
}
