/*
 * rtt.c -- SPIKE, not built by `make`: hiredis 0.14.1's async API on a
 * libuv loop (hiredis/adapters/libuv.h), against a redis-server started by
 * redis-up.sh. Prints the persistence settings (what a node checks at start),
 * then the round trip of PING, XADD and the put script (put.lua) one at a
 * time, and their rate with W requests in flight on one connection, with
 * redis-server's CPU (from /proc/PID/stat) over each run.
 *
 *   cc -O2 -o rtt rtt.c $(pkg-config --cflags --libs hiredis libuv)
 *   ./rtt PORT REDIS_PID [N] [W] [BODY_BYTES]
 *   (NOCID=1: puts without a client id; NOCONTACTS=1: without the contacts;
 *   WAIT=N: each put followed by WAIT N 1000, timed to the WAIT's answer)
 */
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libuv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

static uv_loop_t *loop;
static redisAsyncContext *ac;
static int rpid, N = 2000, W = 64, BODY = 100;
static char body[65536], sha[41];
static double *lat; static int sent, done, phase;
static double t0, self0; static long cpu0;
static const char *nocid, *nocontacts, *waitn;
static double self_cpu(void) {
    struct rusage ru; getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double now(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}
static long cpu_ticks(void) { /* utime + stime of redis-server */
    char p[64], b[1024]; snprintf(p, sizeof p, "/proc/%d/stat", rpid);
    FILE *f = fopen(p, "r"); if (!f) return 0;
    size_t n = fread(b, 1, sizeof b - 1, f); fclose(f); b[n] = 0;
    char *s = strrchr(b, ')'); long ut = 0, st = 0;
    sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st);
    return ut + st;
}
static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y;
}
static const char *names[] = { "PING", "XADD", "EVALSHA put.lua" };
static void issue(int i);
static void on_reply(redisAsyncContext *c, void *r, void *priv) {
    (void)c;
    redisReply *rep = r;
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "error: %s\n", rep ? rep->str : c->errstr); exit(1);
    }
    double t = now();
    if (lat) lat[done] = (t - *(double *)priv) * 1e6;
    free(priv); done++;
    int target = lat ? N : 1 << 30;
    if (!lat && t - t0 >= 2.0) target = sent; /* stop issuing after 2 s */
    if (sent < target) issue(sent);
    if (done == sent && (lat ? done == N : 1)) {
        double el = t - t0; long cpu = cpu_ticks() - cpu0;
        double cpu_pct = 100.0 * cpu / sysconf(_SC_CLK_TCK) / el;
        double me = 100.0 * (self_cpu() - self0) / el;
        if (lat) {
            qsort(lat, N, sizeof *lat, cmpd);
            double sum = 0; for (int i = 0; i < N; i++) sum += lat[i];
            printf("%-16s one at a time: n=%d mean %.0f us, p50 %.0f us, p99 %.0f us, max %.0f us; redis-server CPU %.0f%%, client %.0f%%\n",
                   names[phase % 3], N, sum / N, lat[N / 2], lat[N * 99 / 100], lat[N - 1], cpu_pct, me);
        } else {
            printf("%-16s %d in flight: %d in %.2f s = %.0f/s; redis-server CPU %.0f%%, client %.0f%%\n",
                   names[phase % 3], W, done, el, done / el, cpu_pct, me);
        }
        free(lat); lat = NULL;
        if (++phase == 6) { redisAsyncDisconnect(ac); return; }
        sent = done = 0; t0 = now(); cpu0 = cpu_ticks(); self0 = self_cpu();
        if (phase < 3) lat = calloc(N, sizeof *lat);
        for (int k = 0; k < (phase < 3 ? 1 : W); k++) issue(k);
    }
}
static void issue(int i) {
    double *st = malloc(sizeof *st); *st = now(); sent++;
    char user[16], logk[32], cidk[32], cid[40];
    snprintf(user, sizeof user, "%d", 2 + i % 1000);
    snprintf(logk, sizeof logk, "u:{%s}:log", user);
    snprintf(cidk, sizeof cidk, "u:{1}:cid:%d", phase);
    snprintf(cid, sizeof cid, "%ld%d%07d", (long)time(NULL) % 100000, phase + 1, i);
    switch (phase % 3) {
    case 0: redisAsyncCommand(ac, on_reply, st, "PING"); break;
    case 1: redisAsyncCommand(ac, on_reply, st, "XADD bench:%s * h 0123456789012345678901234 b %b",
                              user, body, (size_t)BODY); break;
    default: {
        char on[32], rk[32], ct[32];
        snprintf(on, sizeof on, "u:{%s}:on", user); snprintf(rk, sizeof rk, "u:{%s}", user);
        snprintf(ct, sizeof ct, "u:{%s}:ct", user);
        if (waitn) { /* the put, then WAIT: the time is the WAIT's answer */
            redisAsyncCommand(ac, NULL, NULL,
            "EVALSHA %s 10 %s %s u:{1}:log %s %s u:{1}:on chat:ids chat:alive u:{1}:ct %s "
            "1 %s 7 1 %s %b 1 0 0 0 86400000 %s",
            sha, logk, rk, cidk, on, ct, user, nocid ? "0" : cid, body, (size_t)BODY,
            nocontacts ? "0" : "1");
            redisAsyncCommand(ac, on_reply, st, "WAIT %s 1000", waitn);
            break;
        }
        redisAsyncCommand(ac, on_reply, st,
            "EVALSHA %s 10 %s %s u:{1}:log %s %s u:{1}:on chat:ids chat:alive u:{1}:ct %s "
            "1 %s 7 1 %s %b 1 0 0 0 86400000 %s",
            sha, logk, rk, cidk, on, ct, user, nocid ? "0" : cid, body, (size_t)BODY,
            nocontacts ? "0" : "1");
    }
    }
}
static void on_config(redisAsyncContext *c, void *r, void *priv) {
    (void)c; (void)priv;
    redisReply *rep = r;
    for (size_t i = 0; rep && i + 1 < rep->elements; i += 2)
        printf("CONFIG GET: %s = %s\n", rep->element[i]->str, rep->element[i + 1]->str);
}
static void on_load(redisAsyncContext *c, void *r, void *priv) {
    (void)c; (void)priv;
    redisReply *rep = r;
    if (!rep || rep->type != REDIS_REPLY_STRING) { fprintf(stderr, "SCRIPT LOAD failed\n"); exit(1); }
    memcpy(sha, rep->str, 40);
    t0 = now(); cpu0 = cpu_ticks(); self0 = self_cpu(); lat = calloc(N, sizeof *lat); issue(0);
}
static void on_connect(const redisAsyncContext *c, int status) {
    if (status != REDIS_OK) { fprintf(stderr, "connect: %s\n", c->errstr); exit(1); }
}
static void on_disconnect(const redisAsyncContext *c, int status) { (void)c; (void)status; }

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: rtt PORT REDIS_PID [N] [W] [BODY]\n"); return 2; }
    rpid = atoi(argv[2]);
    if (argc > 3) N = atoi(argv[3]);
    if (argc > 4) W = atoi(argv[4]);
    if (argc > 5) BODY = atoi(argv[5]);
    memset(body, 'x', sizeof body);
    nocid = getenv("NOCID"); nocontacts = getenv("NOCONTACTS"); waitn = getenv("WAIT");
    FILE *f = fopen("put.lua", "r"); if (!f) { perror("put.lua"); return 1; }
    static char script[16384]; size_t n = fread(script, 1, sizeof script - 1, f); fclose(f); script[n] = 0;
    printf("hiredis %d.%d.%d, libuv %s\n", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH, uv_version_string());
    loop = uv_default_loop();
    ac = redisAsyncConnect("127.0.0.1", atoi(argv[1]));
    if (ac->err) { fprintf(stderr, "%s\n", ac->errstr); return 1; }
    redisLibuvAttach(ac, loop);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    redisAsyncCommand(ac, on_config, NULL, "CONFIG GET append*");
    redisAsyncCommand(ac, on_load, NULL, "SCRIPT LOAD %s", script);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
