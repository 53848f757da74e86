/* looputil.c -- see looputil.h. */
#include "looputil.h"

static void on_deadline(uv_timer_t *t) {
    loop_deadline *d = t->data;
    d->expired = 1;
}

void loop_deadline_end(loop_deadline *d, uv_loop_t *loop) {
    uv_close((uv_handle_t *)&d->timer, NULL);
    /* (void): the iteration's count of active handles is not needed; it
     * only runs the close of the timer (d may then go away) */
    (void)uv_run(loop, UV_RUN_NOWAIT);
}

int loop_deadline_start(loop_deadline *d, uv_loop_t *loop, unsigned ms) {
    d->expired = 0;
    int r = uv_timer_init(loop, &d->timer);
    if (r) return r;
    d->timer.data = d;
    r = uv_timer_start(&d->timer, on_deadline, ms, 0);
    if (r) loop_deadline_end(d, loop); /* the caller fails the test next */
    return r;
}
