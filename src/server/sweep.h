/*
 * sweep.h -- the server's timers over its connections, without a timer per
 * connection.
 *
 *   login   while hub->pending is not empty: armed for the oldest NEW
 *           connection's --login-timeout; closes those past it (at most
 *           SWEEP_BATCH per run, one log line for the lot), O(expired).
 *   idle    while hub->idle is not empty (quietest first), every quarter
 *           of --idle-timeout: a PING to those silent for half of it, the
 *           close for those silent for all of it.
 *   rate    while hub->throttled is not empty, every 50 ms: refill their
 *           token buckets; read again, or close after --rate-grace.
 *   cron    every second: free the empty buffers of every connection
 *           (O(connections)) and the block pool's long-idle blocks, and
 *           give free pages back to the system after a burst.
 * After a sweep, what it queued (PINGs, ERRORs) is written at once
 * (io_flush_all), not when the poll next wakes.
 */
#ifndef CHAT_SERVER_SWEEP_H
#define CHAT_SERVER_SWEEP_H

#include <uv.h>

#include "server/hub.h"

#define SWEEP_BATCH 256   /* timed-out connections closed per run */
#define SWEEP_RATE_MS 50  /* the rate timer's period */

typedef struct sweep {
    hub *h;
    uv_timer_t login, idle, rate, cron;
    int open;             /* the timers are initialised (sweep_close) */
} sweep;

/* Initialise the timers on h's loop and start the cron. 0 or a libuv
 * error (then nothing to close). */
int sweep_init(sweep *w, hub *h);

/* A list got a member (hub_ops.arm): make sure its timer runs. */
void sweep_arm(sweep *w, int which);

/* Close the timers (the loop may then end). */
void sweep_close(sweep *w);

#endif
