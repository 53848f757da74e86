/*
 * looputil.h -- waiting on a libuv loop in a unit test: run the loop until
 * a condition holds or a deadline passes, never a fixed sleep. Linked into
 * test binaries only.
 *
 *   WAIT_FOR(&loop, o.ready == 1, 5000);
 *
 * runs one loop iteration at a time (UV_RUN_ONCE) until the condition is
 * true or a timer of `ms` milliseconds on that loop fires (so each wait ends
 * even when nothing else would wake the loop), then closes the timer (the
 * loop is left with no handle of ours) and fails the test with the
 * condition's text when it is still false. The condition is evaluated again
 * after every iteration and once more at the end.
 *
 * The macro needs cmocka (fail_msg, assert_int_equal) included first; the
 * timer lives in looputil.c, which does not, since the support objects are
 * also linked into chat-server-faults.
 */
#ifndef CHAT_TESTS_LOOPUTIL_H
#define CHAT_TESTS_LOOPUTIL_H

#include <uv.h>

/* A deadline on a loop: `expired` becomes 1 when it passes. */
typedef struct loop_deadline {
    uv_timer_t timer;
    int expired;
} loop_deadline;

/* Arm d on loop for ms milliseconds. 0 or a libuv error. */
int loop_deadline_start(loop_deadline *d, uv_loop_t *loop, unsigned ms);

/* Close d's timer and let the loop finish closing it (one UV_RUN_NOWAIT
 * iteration), so d may go out of scope. */
void loop_deadline_end(loop_deadline *d, uv_loop_t *loop);

#define WAIT_FOR(loop, cond, ms)                                              \
    do {                                                                      \
        loop_deadline d_;                                                     \
        assert_int_equal(loop_deadline_start(&d_, (loop), (ms)), 0);          \
        while (!(cond) && !d_.expired) (void)uv_run((loop), UV_RUN_ONCE);     \
        loop_deadline_end(&d_, (loop));                                       \
        if (!(cond)) fail_msg("timed out after %d ms: %s", (int)(ms), #cond); \
    } while (0)

#endif
