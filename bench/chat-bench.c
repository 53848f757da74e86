/*
 * chat-bench -- load generator for chat-server and the relays it is compared
 * with (Redis pub/sub, NATS, MQTT brokers, the floor), one event loop
 * (libuv). The scenario loop, the clock and the histogram are the same for
 * every protocol; only the framing differs (wire.h).
 *
 * Scenarios (U users, each keeping D messages in flight; S-byte payloads
 * whose first 8 bytes carry the send time in ns, the next 4 the sender's
 * index and the next 4 its sequence number; user i's inbox is "u<i>", chat
 * user id i):
 *   echo     each user publishes to its own inbox; done when it comes back.
 *   pair     user i sends to user i^1 (both ways); done when the peer got it.
 *   fanin    users 2..U send to user 1; done when user 1 got it.
 *   offline  chat only: U senders that opted in to acknowledgements send to
 *            absent receivers; done when the server acknowledged it.
 *   group    chat only: U users in groups of M (--members); in each, the
 *            first member creates the group (HELLO with CONV, GROUP
 *            CREATE) and keeps D group messages in flight (POST with the
 *            GROUP flag); the others are plain receivers (no HELLO: bare
 *            data frames from the author). A delivery is a message at one
 *            member; a message is done when every online member has it
 *            (bgroup.h). --offline K: the last K members of each group
 *            never connect (the server stores every message for them);
 *            the author then asks for acknowledgements and a message is
 *            also in flight until acknowledged.
 *   idle     U connections subscribe (chat: bind with HELLO, as libchat
 *            does) and stay idle; reports the server's resident memory
 *            before and after, per connection.
 * No message is sent before every user's subscription is confirmed; the
 * measured phase starts after a warm-up.
 *
 * Reports, on one line of key=value pairs: delivered messages per second,
 * MB/s (payload bytes, 10^6), latency p50/p99/p99.9 in µs, the server's RSS
 * (--server-pid), the CPU the server and chat-bench used during the
 * measurement (100 = one core busy; a load generator near 100 is the limit,
 * not the server), the messages delivered per CPU-second of the server, and
 * counters that show the run was sound: sent, received,
 * misrouted (a message at the wrong user), unheard (Redis: published to a
 * channel nobody listened to).
 *
 * Sending and receiving are in bconn.c: one writev per connection per loop
 * iteration (at most one write in flight), the per-message head and stamp
 * copied and the payload written from one preallocated buffer; received
 * messages are decoded from their head and their body skipped after the
 * stamp (recv(MSG_TRUNC) without TLS), so chat-bench never copies a large
 * payload in user space. The clock is read once per read, not per message:
 * arrivals are stamped with the time of their read, and messages sent in
 * answer with that same time.
 *
 * --tls: TLS 1.3 over the same connections (btls.c: everything a connection
 * has to send in an iteration is encrypted, then sent with one system call);
 * the negotiated version/suite/group is printed once, as tls=...
 *
 * --ws: the protocol over a WebSocket (RFC 6455, bws.c): chat over
 * chat-server's /ws (subprotocol chat.v1, one chat frame per binary
 * message), NATS over nats-server's websocket listener, MQTT over
 * Mosquitto's (subprotocol mqtt). Each unit the scenario sends is one
 * binary message, masked with a fresh key (so the payload is copied and
 * masked, never referenced); the server's frames are stripped in place
 * before the protocol's decoder. With --tls as well: wss. Printed as ws=PATH.
 *
 * Two servers (--port2, for a cluster of two nodes): user i connects to
 * --port2 instead of --port when i is odd (--place split: in pair, every
 * user's peer is on the other server) or when i / 2 is odd (--place
 * together: each pair on one server, the pairs alternating).
 *
 * --acks (chat; echo, pair, fanin): every connection binds with a HELLO
 * asking for acknowledgements (refused if the server does not grant them)
 * and acknowledges the data frames it received once per loop iteration, as
 * libchat does. A sender keeps at most D messages in flight counting both
 * ways: not yet at the receiver, or not yet acknowledged by the server (a
 * client's window of unacknowledged messages, as libchat's queue). msgs/s
 * and p50/p99 are still deliveries (send to the receiver); the server's
 * ACKs are printed as acked= (all), acked_per_s and ack_p50_us/ack_p99_us
 * (send to acknowledgement, during the measurement).
 *
 * --also-pid NAME=PID (up to 4): more processes whose CPU is measured like
 * the server's (a cluster's other node, its Redis): printed as
 * NAME_cpu_pct and NAME_rss_kib, with all_cpu_pct (the server's and
 * theirs) and msgs_per_all_cpu_s.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "bconn.h"
#include "bgroup.h"
#include "bproc.h"
#include "btls.h"
#include "hist.h"
#include "wire.h"

enum scenario { SC_ECHO, SC_PAIR, SC_FANIN, SC_OFFLINE, SC_IDLE, SC_GROUP };
static const char *sc_names[] = {"echo", "pair", "fanin", "offline", "idle", "group"};
#define SC_COUNT (int)(sizeof sc_names / sizeof *sc_names)

#define PER_SOURCE 20000 /* connections per source address (ports 32768-60999) */
/* Payloads up to this size are copied with their head into the connection's
 * stage buffer (one iovec entry costs the kernel more than copying them);
 * larger ones are written from the one preallocated payload buffer. */
#define INLINE_MAX 512u
/* Payloads larger than this are spliced rather than written (bconn.c);
 * --splice-min changes it, 0 turns it off. At 64 KiB splicing did not pay
 * (two more system calls per message); from 1 MiB on it saves a fifth. */
#define SPLICE_MIN (64L << 10)
/* Members of one group at most: the GROUPS event that tells the author
 * about its group's creation lists them all (wire.c: 60 KiB of control
 * frame, 5 bytes a member). The server's own limit, --max-group-members,
 * is 1,024 by default. */
#define GROUP_MEMBERS_MAX 12000
/* --also-pid: processes measured besides --server-pid. */
#define ALSO_MAX 4

typedef struct opts {
    const char *host;
    int port;
    wire_proto proto;
    enum scenario sc;
    int users;
    int depth;
    uint32_t size;
    double seconds;
    double warmup;
    int server_pid;
    int sources; /* 0: automatic */
    int window;  /* users connecting at once */
    int tls;
    const char *ca, *suite, *group;
    long splice_min; /* 0: never splice */
    const char *congestion;
    int ws;
    const char *ws_path; /* NULL: the protocol's usual one */
    int members, offline; /* group: members per group, of them never connected */
    int cids;    /* group: each POST carries a client id (held until committed) */
    int port2;   /* 0, or a second server (see --place) */
    int place_pairs; /* --place together: by pair, not by user */
    int acks;    /* echo, pair, fanin: HELLO with ACKS, acknowledge what arrives */
    int nalso;   /* --also-pid */
    const char *also_name[ALSO_MAX];
    int also_pid[ALSO_MAX];
} opts;

typedef struct user user;
typedef struct bench bench;

struct user { /* what each message touches first, the connections last */
    bench *b;
    uint32_t idx, id, to; /* to: index of the receiver */
    int inflight;
    bconn *tx;            /* where this user publishes */
    uint8_t *msg;    /* inline payloads: head, payload, tail, ready to copy */
    size_t hl, ml;
    uint64_t sent, acked;
    uint64_t *stamp; /* offline: send time per sequence number, ring of depth */
    bgroup *grp;     /* group: the group this user is the author of */
    uint64_t got;    /* group: messages from its author so far */
    int sub_ready, pub_ready, ready, sends, absent; /* absent: never connects */
    int srv2;        /* connects to --port2 */
    uint64_t rcvd, rcvd_acked; /* --acks: data frames received, acknowledged */
    user *next_ack;  /* --acks: in b->ack_head's list (rcvd > rcvd_acked) */
    uint8_t head[WIRE_HEAD_MAX]; /* every message of this user has the same head */
    bconn sub, pubc;      /* pubc only when the protocol splits pub/sub */
};

struct bench {
    opts o;
    uv_loop_t *loop;
    bconn_env env;
    user *u;
    uv_timer_t timer;
    int next_user, nready, nsources;
    unsigned long nconn;
    int measuring, done;
    uint64_t t0, t_start, delivered, bytes, sys0;
    uint64_t sent, received, misrouted, unheard;
    uint64_t misordered, gdone; /* group: out of sequence; complete while measuring */
    bgroup *grp;                /* group: one per M users */
    long rss_before;
    double cpu_srv0, cpu_self0, cpu_sys0; /* CPU seconds at the start of the measurement */
    unsigned long long steal0, total0; /* the machine's, then (bproc_steal) */
    int steal_ok;
    double cpu_also0[ALSO_MAX];
    struct sockaddr_in addr, addr2;
    uv_check_t ackcheck; /* --acks: the ACKs of this iteration, before bconn's flush */
    user *ack_head;
    uint64_t acked;      /* --acks: messages the server acknowledged */
    uint64_t acked_m;    /* --acks: of them during the measurement */
    hist hack;           /* --acks: send to acknowledgement */
    hist h;
    uint8_t *payload; /* the constant payload every large message is written from */
    uint8_t tail[WIRE_TAIL_MAX];
    size_t tl;
};

static void die(const char *what, int r) {
    fprintf(stderr, "chat-bench: %s%s%s\n", what, r ? ": " : "", r ? uv_strerror(r) : "");
    exit(1);
}

static user *user_of(bconn *c) { return c->data; }

/* Queue one unit of the protocol (hello, pong). */
static void out_put(bconn *c, const void *p, size_t n) {
    if (bconn_unit(c, n) || bconn_put(c, p, n)) die("out of memory (or no random bytes)", 0);
    bconn_want_flush(c);
}

/* Queue one message of user u: its head and the 12-byte stamp (send time,
 * sender index) are copied; the rest of the payload is referenced from
 * b->payload (copied only when it is small, see INLINE_MAX). */
static void send_one(user *u) {
    bench *b = u->b;
    bconn *c = u->tx;
    uint64_t t = b->env.now;
    uint32_t size = b->o.size;
    if (!u->hl) {
        u->hl = u->grp ? wire_post_head(u->head, u->id, u->grp->id, WIRE_POST_GROUP, 0, size)
                       : wire_msg_head(b->o.proto, u->head, u->id, b->u[u->to].id, size);
        if (size <= INLINE_MAX) {
            u->ml = u->hl + size + b->tl;
            u->msg = calloc(1, u->ml);
            if (!u->msg) die("out of memory", 0);
            memcpy(u->msg, u->head, u->hl);
            memcpy(u->msg + u->hl + size, b->tail, b->tl);
        }
    }
    size_t hl = u->hl, stage = u->msg ? u->ml : hl + BCONN_STAMP;
    if (bconn_unit(c, hl + size + b->tl)) die("out of memory (or no random bytes)", 0);
    uint8_t *p = bconn_reserve(c, stage);
    if (!p) die("out of memory", 0);
    if (u->msg) memcpy(p, u->msg, stage);
    else memcpy(p, u->head, hl);
    if (b->o.cids && u->grp) { /* the POST's cid, its last 8 head bytes: big endian */
        uint64_t cid = ((uint64_t)u->id << 32) | (u->sent + 1);
        for (int i = 0; i < 8; i++) p[hl - 1 - i] = (uint8_t)(cid >> (8 * i));
    }
    memcpy(p + hl, &t, 8);
    memcpy(p + hl + 8, &u->idx, 4);
    uint32_t seq = (uint32_t)u->sent;
    memcpy(p + hl + 12, &seq, 4);
    bconn_commit(c, stage);
    if (!u->msg && (bconn_ref(c, b->payload + BCONN_STAMP, size - BCONN_STAMP) ||
                    bconn_put(c, b->tail, b->tl)))
        die("out of memory", 0);
    if (u->stamp) u->stamp[u->sent % (uint64_t)b->o.depth] = t;
    u->sent++;
    u->inflight++;
    b->sent++;
    if (u->grp) { /* sent counts deliveries: one per online member */
        bgroup_posted(u->grp);
        b->sent += u->grp->receivers - 1;
    }
    bconn_want_flush(c);
}

/* group: the author u posts as many messages as its group has room for. */
static void group_fill(user *u) {
    for (uint32_t k = bgroup_room(u->grp); k && !u->b->done; k--) send_one(u);
}

static void done_one(bench *b, uint64_t sent_at, uint64_t len) {
    b->received++;
    if (!b->measuring) return;
    uint64_t t = b->env.now;
    hist_add(&b->h, sent_at < t ? t - sent_at : 0);
    b->delivered++;
    b->bytes += len;
}

static void finish(void) {
    if (fflush(stdout)) {
        perror("chat-bench: stdout");
        exit(1);
    }
    exit(0); /* the servers see the connections close */
}

static void report_idle(uv_timer_t *t) {
    bench *b = t->data;
    long after = b->o.server_pid ? bproc_rss_kib(b->o.server_pid) : -1;
    double per = after >= 0 && b->rss_before >= 0
                     ? (double)(after - b->rss_before) * 1024.0 / b->o.users : -1;
    printf("proto=%s scenario=idle conns=%d sources=%d connect_s=%.2f "
           "rss_before_kib=%ld rss_after_kib=%ld rss_per_conn_b=%.0f\n",
           wire_proto_name(b->o.proto), b->o.users, b->nsources,
           (double)(b->t0 - b->t_start) / 1e9, b->rss_before, after, per);
    b->done = 1;
    finish();
}

static void on_timer(uv_timer_t *t) {
    bench *b = t->data;
    if (!b->measuring) {
        b->measuring = 1;
        b->t0 = bconn_clock();
        b->cpu_srv0 = b->o.server_pid ? bproc_cpu_secs(b->o.server_pid) : -1;
        b->cpu_self0 = bproc_cpu_self(&b->cpu_sys0);
        b->steal_ok = bproc_steal(&b->steal0, &b->total0) == 0;
        for (int i = 0; i < b->o.nalso; i++) b->cpu_also0[i] = bproc_cpu_secs(b->o.also_pid[i]);
        b->sys0 = b->env.syscalls;
        if (uv_timer_start(t, on_timer, (uint64_t)(b->o.seconds * 1000), 0)) die("timer", 0);
        /* for scripts that sample the server during the measurement */
        fprintf(stderr, "chat-bench: measuring for %.2f s\n", b->o.seconds);
        return;
    }
    double secs = (double)(bconn_clock() - b->t0) / 1e9;
    double srv = b->o.server_pid ? bproc_cpu_secs(b->o.server_pid) : -1;
    double srv_pct = srv >= 0 && b->cpu_srv0 >= 0 ? 100 * (srv - b->cpu_srv0) / secs : -1;
    /* messages per CPU-second of the server: its efficiency, which other
     * processes on the machine disturb less than they disturb msgs/s */
    double per_cpu = srv_pct > 0 ? (double)b->delivered / (srv - b->cpu_srv0) : -1;
    double sys;
    double self = bproc_cpu_self(&sys);
    double self_pct = self >= 0 && b->cpu_self0 >= 0 ? 100 * (self - b->cpu_self0) / secs : -1;
    double sys_pct = sys >= 0 && b->cpu_sys0 >= 0 ? 100 * (sys - b->cpu_sys0) / secs : -1;
    double sys_per_msg = b->delivered ? (double)(b->env.syscalls - b->sys0) / (double)b->delivered : 0;
    /* the share of the machine's CPU time the hypervisor took meanwhile */
    unsigned long long steal1, total1;
    double steal_pct = -1;
    if (b->steal_ok && bproc_steal(&steal1, &total1) == 0 && total1 > b->total0)
        steal_pct = 100.0 * (double)(steal1 - b->steal0) / (double)(total1 - b->total0);
    b->done = 1;
    printf("proto=%s scenario=%s users=%d depth=%d size=%u seconds=%.2f msgs=%llu "
           "msgs_per_s=%.0f mb_per_s=%.2f p50_us=%.0f p99_us=%.0f p999_us=%.0f "
           "server_rss_kib=%ld server_cpu_pct=%.0f bench_cpu_pct=%.0f bench_sys_pct=%.0f "
           "msgs_per_server_cpu_s=%.0f bench_syscalls_per_msg=%.2f sent=%llu received=%llu misrouted=%llu unheard=%llu "
           "steal_pct=%.1f",
           wire_proto_name(b->o.proto), sc_names[b->o.sc], b->o.users, b->o.depth,
           b->o.size, secs, (unsigned long long)b->delivered,
           (double)b->delivered / secs, (double)b->bytes / secs / 1e6,
           hist_pct(&b->h, 0.50) / 1e3, hist_pct(&b->h, 0.99) / 1e3, hist_pct(&b->h, 0.999) / 1e3,
           b->o.server_pid ? bproc_rss_kib(b->o.server_pid) : -1L, srv_pct, self_pct, sys_pct, per_cpu,
           sys_per_msg, (unsigned long long)b->sent, (unsigned long long)b->received,
           (unsigned long long)b->misrouted, (unsigned long long)b->unheard, steal_pct);
    if (b->o.sc == SC_GROUP) {
        /* msgs and msgs_per_s above count deliveries (a message at one
         * member), sent and received too; posted: group messages */
        uint64_t posted = 0, acked = 0;
        for (int g = 0; g < b->o.users / b->o.members; g++) {
            posted += b->grp[g].sent;
            acked += b->grp[g].acked;
        }
        printf(" members=%d offline=%d cids=%d groups=%d group_msgs_per_s=%.0f misordered=%llu "
               "posted=%llu acked=%llu", b->o.members, b->o.offline, b->o.cids,
               b->o.users / b->o.members,
               (double)b->gdone / secs, (unsigned long long)b->misordered,
               (unsigned long long)posted, (unsigned long long)acked);
    }
    if (b->o.acks)
        printf(" acks=1 acked=%llu acked_per_s=%.0f ack_p50_us=%.0f ack_p99_us=%.0f",
               (unsigned long long)b->acked, (double)b->acked_m / secs,
               hist_pct(&b->hack, 0.50) / 1e3, hist_pct(&b->hack, 0.99) / 1e3);
    if (b->o.nalso) { /* the other processes, and all of them with the server */
        double all = srv_pct >= 0 ? srv - b->cpu_srv0 : -1;
        for (int i = 0; i < b->o.nalso; i++) {
            double c = bproc_cpu_secs(b->o.also_pid[i]);
            double d = c >= 0 && b->cpu_also0[i] >= 0 ? c - b->cpu_also0[i] : -1;
            printf(" %s_cpu_pct=%.0f %s_rss_kib=%ld", b->o.also_name[i],
                   d >= 0 ? 100 * d / secs : -1.0, b->o.also_name[i],
                   bproc_rss_kib(b->o.also_pid[i]));
            all = all >= 0 && d >= 0 ? all + d : -1;
        }
        printf(" all_cpu_pct=%.0f msgs_per_all_cpu_s=%.0f", all >= 0 ? 100 * all / secs : -1.0,
               all > 0 ? (double)b->delivered / all : -1.0);
    }
    if (b->o.tls) printf(" tls=%s", b->env.tls_desc[0] ? b->env.tls_desc : "unknown");
    if (b->o.ws) printf(" ws=%s", b->o.ws_path);
    printf("\n");
    if (b->delivered == 0) fprintf(stderr, "chat-bench: nothing was delivered\n");
    finish();
}

/* Every user is subscribed: start the load (or the idle measurement). */
static void all_ready(bench *b) {
    b->t0 = b->env.now = bconn_clock();
    if (b->o.sc == SC_IDLE) { /* let the server settle, then read its RSS */
        /* Idle means settled: servers free per-connection scratch memory
         * on timers (chat-server: every second), so measure after 2.5 s. */
        if (uv_timer_start(&b->timer, report_idle, 2500, 0)) die("timer", 0);
        return;
    }
    for (int i = 0; i < b->o.users; i++)
        if (b->u[i].grp)
            group_fill(&b->u[i]);
        else if (b->u[i].sends)
            for (int k = 0; k < b->o.depth; k++) send_one(&b->u[i]);
    if (uv_timer_start(&b->timer, on_timer, (uint64_t)(b->o.warmup * 1000), 0)) die("timer", 0);
}

static void user_connect(user *u);

/* Connect the next user that is not absent, if any. */
static void connect_next(bench *b) {
    while (b->next_user < b->o.users && b->u[b->next_user].absent) b->next_user++;
    if (b->next_user < b->o.users) user_connect(&b->u[b->next_user++]);
}

static void user_check_ready(user *u) {
    bench *b = u->b;
    int need_pub = wire_split_pubsub(b->o.proto) && b->o.sc != SC_IDLE;
    if (u->ready || !u->sub_ready || (need_pub && !u->pub_ready)) return;
    u->ready = 1;
    b->nready++; /* absent users were counted at the start */
    connect_next(b);
    if (b->nready == b->o.users) all_ready(b);
}

/* group: the author's WELCOME granted `granted` (WIRE_CONV, WIRE_ACKS):
 * create its group with the other members (ids after its own), named
 * "bench <group>"; the answer makes it ready. */
static void group_create(user *u, uint64_t granted) {
    bench *b = u->b;
    uint64_t want = WIRE_CONV | (u->grp->acks ? WIRE_ACKS : 0);
    if ((granted & want) != want)
        die("the server did not grant CONV (or ACKS) to the group's author: "
            "a server without groups, or in --echo mode?", 0);
    uint32_t n = (uint32_t)b->o.members - 1;
    char name[32];
    snprintf(name, sizeof name, "bench %u", u->idx / (uint32_t)b->o.members);
    uint32_t *ids = malloc(n * sizeof *ids);
    uint8_t *f = malloc(wire_group_create_size(strlen(name), n));
    if (!ids || !f) die("out of memory", 0);
    for (uint32_t k = 0; k < n; k++) ids[k] = u->id + 1 + k;
    size_t len = wire_group_create(f, u->id, 1, name, ids, n);
    if (!len) die("a group this large cannot be created in one request", 0);
    out_put(u->tx, f, len);
    free(f);
    free(ids);
}

/* group: a GROUPS frame at an author; the answer to its CREATE (request
 * 1) makes it ready; events (the group's creation, told to every CONV
 * connection of its members) are ignored. */
static void group_answer(user *u, const wire_ev *ev) {
    wire_groups g;
    if (wire_parse_groups(ev->body, ev->len, &g)) die("the server sent a malformed GROUPS frame", 0);
    if (g.op != WIRE_GROUP_CREATE || g.req != 1 || u->grp->id) return;
    if (!g.group) die("the server created group 0", 0);
    u->grp->id = g.group;
    u->sub_ready = 1;
    user_check_ready(u);
}

/* group: member u got a message whose stamp names author s and sequence
 * number seq: it must be u's group's author's, and the next one u lacks. */
static void group_msg(user *u, user *s, uint64_t t, uint32_t seq, uint64_t len) {
    bench *b = u->b;
    if (!s->grp || u->to != s->idx || u == s) {
        b->misrouted++;
        return;
    }
    int r = seq == (uint32_t)u->got ? bgroup_delivered(s->grp, u->got) : -1;
    if (r < 0) { /* lost, repeated or reordered: the account stays as it was */
        b->misordered++;
        return;
    }
    u->got++;
    done_one(b, t, len);
    if (r == 1) {
        if (b->measuring) b->gdone++;
        group_fill(s);
    }
}

/* --- what the connections report (bconn_ops) */

static void on_msg(bconn *c, const uint8_t *stamp, uint64_t len) {
    user *u = user_of(c);
    bench *b = u->b;
    if (b->o.acks) { /* acknowledged at the end of this loop iteration */
        if (u->rcvd++ == u->rcvd_acked) {
            u->next_ack = b->ack_head;
            b->ack_head = u;
        }
    }
    if (len < BCONN_STAMP) return;
    uint64_t t;
    uint32_t sidx;
    memcpy(&t, stamp, 8);
    memcpy(&sidx, stamp + 8, 4);
    if (sidx >= (uint32_t)b->o.users) {
        b->misrouted++;
        return;
    }
    user *s = &b->u[sidx];
    if (b->o.sc == SC_GROUP) {
        uint32_t seq;
        memcpy(&seq, stamp + 12, 4);
        group_msg(u, s, t, seq, len);
        return;
    }
    if (s->to != u->idx) b->misrouted++;
    done_one(b, t, len);
    s->inflight--;
    /* --acks: and while fewer than D await the server's ACK */
    if (!b->done && (!b->o.acks || s->sent - s->acked < (uint64_t)b->o.depth)) send_one(s);
}

static void on_event(bconn *c, const wire_ev *ev) {
    user *u = user_of(c);
    bench *b = u->b;
    switch (ev->kind) {
    case WEV_READY:
        if (c == &u->pubc) break;
        if (b->o.acks && !(ev->count & WIRE_ACKS))
            die("the server did not grant ACKS (--acks): a store that cannot keep an "
                "acknowledgement's promise, e.g. a cluster's Redis without appendfsync always?", 0);
        if (u->grp) { /* the WELCOME: create the group, ready when it exists */
            group_create(u, ev->count);
            break;
        }
        u->sub_ready = 1;
        user_check_ready(u);
        break;
    case WEV_GROUPS:
        if (u->grp) group_answer(u, ev);
        break;
    case WEV_ACK: /* offline, group with --offline: the server has stored them */
        if (u->grp) {
            if (bgroup_acked(u->grp, ev->count))
                die("the server acknowledged fewer messages than before, or more "
                    "than were posted", 0);
            group_fill(u);
            break;
        }
        if (b->o.acks) { /* --acks: the window moves; the message is done at its receiver */
            if (ev->count > u->sent) die("the server acknowledged more than was sent", 0);
            uint64_t now = b->env.now;
            for (; u->acked < ev->count; u->acked++) {
                b->acked++;
                if (!b->measuring) continue;
                uint64_t at = u->stamp[u->acked % (uint64_t)b->o.depth];
                hist_add(&b->hack, at < now ? now - at : 0);
                b->acked_m++;
            }
            while (!b->done && u->sends && u->inflight < b->o.depth &&
                   u->sent - u->acked < (uint64_t)b->o.depth)
                send_one(u);
            break;
        }
        while (u->acked < ev->count && u->acked < u->sent) {
            done_one(b, u->stamp[u->acked % (uint64_t)b->o.depth], b->o.size);
            u->acked++;
            u->inflight--;
            if (!b->done) send_one(u);
        }
        break;
    case WEV_PUBLISHED:
        if (ev->count == 0) b->unheard++;
        break;
    case WEV_PING: {
        uint8_t p[WIRE_PONG_MAX];
        size_t n = wire_pong(b->o.proto, p, u->id, ev->body, ev->len);
        if (n) out_put(c, p, n);
        break;
    }
    case WEV_ERROR:
        fprintf(stderr, "chat-bench: %s server error (user %u): %.*s\n",
                wire_proto_name(b->o.proto), u->id, (int)ev->len, (const char *)ev->body);
        exit(1);
    case WEV_MSG: /* bconn reports messages through on_msg */
    case WEV_NONE:
        break;
    }
}

static void on_open(bconn *c) {
    user *u = user_of(c);
    bench *b = u->b;
    int pub = c == &u->pubc;
    uint8_t hello[WIRE_HELLO_MAX];
    unsigned flags = pub ? 0 : WIRE_SUB | (b->o.sc == SC_OFFLINE || b->o.acks ? WIRE_ACKS : 0) |
                                   (b->o.sc == SC_IDLE ? WIRE_HELLO : 0);
    if (u->grp) flags = WIRE_CONV | (u->grp->acks ? WIRE_ACKS : 0);
    size_t n = wire_hello(b->o.proto, hello, u->id, flags);
    if (n) out_put(c, hello, n);
    if (pub) {
        u->pub_ready = 1;
        user_check_ready(u);
    }
}

static void on_fail(bconn *c, const char *why) {
    user *u = user_of(c);
    bench *b = u->b;
    if (b->done) return;
    fprintf(stderr, "chat-bench: user %u (connection to %s:%d%s%s): %s\n", u->id, b->o.host,
            u->srv2 ? b->o.port2 : b->o.port, b->o.tls ? ", TLS" : "", b->o.ws ? ", WebSocket" : "", why);
    exit(1);
}

static const bconn_ops ops = {on_open, on_event, on_msg, on_fail};

/* --acks: each connection that received data frames in this loop iteration
 * acknowledges them all with one ACK (libchat's rhythm). Runs before
 * bconn's flush: libuv runs check handles started later first, and this
 * one starts after bconn_env_init's. */
static void ack_check(uv_check_t *h) {
    bench *b = h->data;
    uint8_t f[WIRE_ACK_MAX];
    for (user *u = b->ack_head, *next; u; u = next) {
        next = u->next_ack;
        u->next_ack = NULL;
        size_t n = wire_ack(b->o.proto, f, u->id, u->rcvd);
        if (n) out_put(&u->sub, f, n);
        u->rcvd_acked = u->rcvd;
    }
    b->ack_head = NULL;
}

/* Open one connection, from source address 127.0.0.(2 + k % sources) when
 * there are several (each address has its own ephemeral ports). */
static void conn_open(bench *b, user *u, bconn *c) {
    c->data = u;
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(b->nconn % (unsigned long)b->nsources));
    int r = bconn_open(&b->env, c, u->srv2 ? &b->addr2 : &b->addr,
                       b->nsources > 1 ? &src : NULL);
    if (r) {
        fprintf(stderr, "chat-bench: connect %s:%d (connection %lu): %s\n", b->o.host,
                u->srv2 ? b->o.port2 : b->o.port, b->nconn, uv_strerror(r));
        exit(1);
    }
    b->nconn++;
}

static void user_connect(user *u) {
    bench *b = u->b;
    conn_open(b, u, &u->sub);
    if (wire_split_pubsub(b->o.proto) && b->o.sc != SC_IDLE) conn_open(b, u, &u->pubc);
}

static void usage(FILE *f) {
    fprintf(f,
"Usage: chat-bench [--proto chat|redis|nats|mqtt|ws] [--host H] [--port P]\n"
"                  [--scenario echo|pair|fanin|offline|idle|group] [--users U]\n"
"                  [--members M [--offline K] [--cids]] [--depth D] [--size S]\n"
"                  [--seconds T] [--warmup W]\n"
"                  [--server-pid PID] [--sources K] [--window N]\n"
"                  [--tls --ca FILE [--tls-suite S] [--tls-group G]]\n"
"                  [--splice-min BYTES] [--congestion NAME] [--ws [--ws-path P]]\n"
"                  [--port2 P [--place split|together]] [--acks]\n"
"                  [--also-pid NAME=PID]...\n"
"Defaults: chat, 127.0.0.1:8888, pair, 50 users, depth 1, 64 bytes, 5 s\n"
"after a 1 s warm-up; --sources: 127.0.0.2.. source addresses, automatic\n"
"(one per %d connections) on loopback; --window 256 users connecting at\n"
"once. idle: U connections, prints the server's RSS per connection.\n"
"group (chat): U/M groups of M users (default M = U), each with one author\n"
"keeping D group messages in flight to the others, of whom K (default 0)\n"
"never connect; msgs counts deliveries (a message at one member); --cids:\n"
"each POST carries a client id (the server delivers a stored one only once\n"
"committed).\n"
"--tls: TLS 1.3 only, verifying the server's certificate for --host against\n"
"the CA file --ca; the only suite offered is --tls-suite\n"
"(TLS_AES_128_GCM_SHA256), the only group --tls-group (X25519).\n"
"--splice-min: payloads larger than this are sent without a copy\n"
"(vmsplice + splice; default %ld, 0: always writev). --congestion: the TCP\n"
"congestion control of chat-bench's own sockets (default: the system's).\n"
"--ws: over a WebSocket (RFC 6455; with --tls, wss) at --ws-path: chat\n"
"/ws (subprotocol chat.v1), nats / , mqtt /mqtt (subprotocol mqtt); not\n"
"redis. --proto ws is --proto chat --ws.\n"
"--port2: a second server (a cluster's other node); odd users connect to it\n"
"(--place split: in pair, every pair spans both) or odd pairs (--place\n"
"together: every pair on one of them). --acks (chat; echo, pair, fanin):\n"
"HELLO asking for ACKS, received frames acknowledged once per iteration,\n"
"the server's ACKs counted (acked=). --also-pid NAME=PID: also measure that\n"
"process's CPU and RSS (NAME_cpu_pct, NAME_rss_kib; all_cpu_pct with the\n"
"server's), up to 4.\n"
"Prints one line of key=value figures.\n", PER_SOURCE, SPLICE_MIN);
}

int main(int argc, char **argv) {
    static bench b;
    b.o = (opts){"127.0.0.1", 8888, WIRE_CHAT, SC_PAIR, 50, 1, 64, 5.0, 1.0, 0, 0, 256,
                 0, NULL, "TLS_AES_128_GCM_SHA256", "X25519", SPLICE_MIN, NULL, 0, NULL, 0, 0, 0,
                 0, 0, 0, 0, {0}, {0}};
    static const struct option lo[] = {
        {"proto", 1, 0, 'r'}, {"host", 1, 0, 'h'}, {"port", 1, 0, 'p'},
        {"scenario", 1, 0, 's'}, {"users", 1, 0, 'u'}, {"depth", 1, 0, 'd'},
        {"size", 1, 0, 'z'}, {"seconds", 1, 0, 't'}, {"warmup", 1, 0, 'w'},
        {"server-pid", 1, 0, 'P'}, {"sources", 1, 0, 'S'}, {"window", 1, 0, 'W'},
        {"tls", 0, 0, 'T'}, {"ca", 1, 0, 'C'}, {"tls-suite", 1, 0, 'X'},
        {"tls-group", 1, 0, 'G'}, {"splice-min", 1, 0, 'M'}, {"congestion", 1, 0, 'c'}, {"help", 0, 0, 'H'},
        {"ws", 0, 0, 'K'}, {"ws-path", 1, 0, 'k'}, {"members", 1, 0, 'm'},
        {"offline", 1, 0, 'o'}, {"cids", 0, 0, 'I'}, {"port2", 1, 0, '2'},
        {"place", 1, 0, 'L'}, {"acks", 0, 0, 'A'}, {"also-pid", 1, 0, 'a'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'r':
            if (!strcmp(optarg, "ws")) { /* the name for chat over WebSocket */
                b.o.proto = WIRE_CHAT;
                b.o.ws = 1;
            } else if (wire_proto_parse(optarg, &b.o.proto)) {
                fprintf(stderr, "chat-bench: --proto: '%s' is not chat, redis, nats, mqtt or ws\n", optarg);
                return 2;
            }
            break;
        case 'h': b.o.host = optarg; break;
        case 'p': b.o.port = atoi(optarg); break;
        case 's': {
            int k = -1;
            for (int i = 0; i < SC_COUNT; i++)
                if (!strcmp(optarg, sc_names[i])) k = i;
            if (k < 0) {
                fprintf(stderr, "chat-bench: --scenario: '%s' is not echo, pair, fanin, offline, "
                                "idle or group\n", optarg);
                return 2;
            }
            b.o.sc = (enum scenario)k;
            break;
        }
        case 'u': b.o.users = atoi(optarg); break;
        case 'd': b.o.depth = atoi(optarg); break;
        case 'z': b.o.size = (uint32_t)atol(optarg); break;
        case 't': b.o.seconds = atof(optarg); break;
        case 'w': b.o.warmup = atof(optarg); break;
        case 'P': b.o.server_pid = atoi(optarg); break;
        case 'S': b.o.sources = atoi(optarg); break;
        case 'W': b.o.window = atoi(optarg); break;
        case 'T': b.o.tls = 1; break;
        case 'C': b.o.ca = optarg; break;
        case 'X': b.o.suite = optarg; break;
        case 'G': b.o.group = optarg; break;
        case 'M': b.o.splice_min = atol(optarg); break;
        case 'c': b.o.congestion = optarg; break;
        case 'K': b.o.ws = 1; break;
        case 'k': b.o.ws_path = optarg; break;
        case 'm': b.o.members = atoi(optarg); break;
        case 'o': b.o.offline = atoi(optarg); break;
        case 'I': b.o.cids = 1; break;
        case '2': b.o.port2 = atoi(optarg); break;
        case 'L':
            if (!strcmp(optarg, "together")) b.o.place_pairs = 1;
            else if (!strcmp(optarg, "split")) b.o.place_pairs = 0;
            else {
                fprintf(stderr, "chat-bench: --place: '%s' is not split or together\n", optarg);
                return 2;
            }
            break;
        case 'A': b.o.acks = 1; break;
        case 'a': {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || b.o.nalso == ALSO_MAX || atoi(eq + 1) <= 0) {
                fprintf(stderr, "chat-bench: --also-pid NAME=PID (at most %d)\n", ALSO_MAX);
                return 2;
            }
            *eq = '\0';
            b.o.also_name[b.o.nalso] = optarg;
            b.o.also_pid[b.o.nalso++] = atoi(eq + 1);
            break;
        }
        case 'H': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    opts *o = &b.o;
    if (o->users < 1 || o->depth < 1 || o->size < BCONN_STAMP || o->seconds <= 0 || o->window < 1 ||
        (o->sc == SC_PAIR && o->users % 2) || (o->sc == SC_FANIN && o->users < 2)) {
        fprintf(stderr, "chat-bench: need users >= 1 (even for pair, >= 2 for fanin), "
                        "depth >= 1, size >= %u, seconds > 0, window >= 1\n", BCONN_STAMP);
        return 2;
    }
    if ((o->sc == SC_OFFLINE || o->sc == SC_GROUP) && o->proto != WIRE_CHAT) {
        fprintf(stderr, "chat-bench: the %s scenario needs --proto chat\n", sc_names[o->sc]);
        return 2;
    }
    if (o->sc == SC_GROUP && !o->members) o->members = o->users;
    if ((o->members || o->offline || o->cids) &&
        (o->sc != SC_GROUP || o->members < 2 || o->members > GROUP_MEMBERS_MAX ||
         o->users % o->members || o->offline < 0 || o->offline > o->members - 2)) {
        fprintf(stderr, "chat-bench: --members, --offline and --cids are for --scenario group: "
                        "2 <= members <= %d dividing --users, 0 <= offline <= members - 2 "
                        "(the author and one receiver are online)\n", GROUP_MEMBERS_MAX);
        return 2;
    }
    if (o->acks && (o->proto != WIRE_CHAT ||
                    (o->sc != SC_ECHO && o->sc != SC_PAIR && o->sc != SC_FANIN))) {
        fprintf(stderr, "chat-bench: --acks is for --proto chat and the echo, pair and fanin "
                        "scenarios\n");
        return 2;
    }
    if (o->port2 && (o->port2 < 1 || o->port2 > 65535 || o->ws)) {
        fprintf(stderr, "chat-bench: --port2 needs a port (1-65535), not with --ws\n");
        return 2;
    }
    if (o->ws && o->proto == WIRE_REDIS) {
        fprintf(stderr, "chat-bench: --ws: Redis has no WebSocket listener (use chat, nats or mqtt)\n");
        return 2;
    }
    if (o->ws_path && (!o->ws || o->ws_path[0] != '/')) {
        fprintf(stderr, "chat-bench: --ws-path needs --ws and must start with '/'\n");
        return 2;
    }
    if (o->tls && !o->ca) {
        fprintf(stderr, "chat-bench: --tls needs --ca FILE (the CA that signed the server's "
                        "certificate)\n");
        return 2;
    }
    unsigned long conns = (unsigned long)o->users *
                          (wire_split_pubsub(o->proto) && o->sc != SC_IDLE ? 2u : 1u);
    unsigned long have = 0;
    if (bproc_raise_nofile(conns + 64, &have)) {
        fprintf(stderr, "chat-bench: %lu connections need %lu descriptors but the limit "
                        "is %lu (ulimit -Hn); nothing measured\n", conns, conns + 64, have);
        return 3;
    }
    b.nsources = o->sources;
    if (b.nsources <= 0)
        b.nsources = !strncmp(o->host, "127.", 4) && conns > PER_SOURCE
                         ? (int)((conns + PER_SOURCE - 1) / PER_SOURCE) : 1;
    btls_ctx *tls = NULL;
    if (o->tls) {
        char err[512];
        tls = btls_ctx_new(o->ca, o->suite, o->group, err, sizeof err);
        if (!tls) {
            fprintf(stderr, "chat-bench: %s\n", err);
            return 2;
        }
    }
    b.loop = uv_default_loop();
    int r = bconn_env_init(&b.env, b.loop, o->proto, &ops, tls, o->host);
    if (r) die("setting up the connections", r);
    if (o->ws) {
        static const char *paths[] = {"/ws", NULL, "/", "/mqtt"};
        static const char *subs[] = {"chat.v1", NULL, NULL, "mqtt"};
        if (!o->ws_path) o->ws_path = paths[o->proto];
        if (bconn_env_ws(&b.env, o->ws_path, subs[o->proto], o->host, o->port)) {
            fprintf(stderr, "chat-bench: --ws: the upgrade request does not fit %u bytes "
                            "(--ws-path too long?) or OpenSSL has no random bytes\n", BWS_REQ_MAX);
            return 2;
        }
    }
    /* bconn compares the referenced part, the payload after its stamp */
    b.env.splice_min = o->splice_min > 0 ? (size_t)o->splice_min + 1 - BCONN_STAMP : 0;
    b.env.congestion = o->congestion;
    size_t psize = ((size_t)o->size + 4095) & ~(size_t)4095; /* whole pages, for splice */
    b.payload = aligned_alloc(4096, psize);
    if (b.payload) memset(b.payload, 0, psize); /* and present before the clock starts */
    b.u = calloc((size_t)o->users, sizeof *b.u);
    if (!b.payload || !b.u) die("out of memory", 0);
    b.tl = wire_msg_tail(o->proto, b.tail);
    if (uv_ip4_addr(o->host, o->port, &b.addr)) die("--host is not an IPv4 address", 0);
    if (uv_ip4_addr(o->host, o->port2, &b.addr2)) die("--host is not an IPv4 address", 0);
    if (o->acks) { /* after bconn_env_init's check: runs before it (ack_check) */
        if (uv_check_init(b.loop, &b.ackcheck) || uv_check_start(&b.ackcheck, ack_check))
            die("check handle", 0);
        b.ackcheck.data = &b;
    }
    for (int i = 0; i < o->users; i++) {
        user *u = &b.u[i];
        u->b = &b;
        u->idx = (uint32_t)i;
        u->id = (uint32_t)i + 1;
        u->tx = wire_split_pubsub(o->proto) ? &u->pubc : &u->sub;
        u->srv2 = o->port2 && ((o->place_pairs ? (uint32_t)i >> 1 : (uint32_t)i) & 1u);
        switch (o->sc) {
        case SC_ECHO: u->to = u->idx; u->sends = 1; break;
        case SC_PAIR: u->to = u->idx ^ 1u; u->sends = 1; break;
        case SC_FANIN: u->to = 0; u->sends = i > 0; break;
        case SC_OFFLINE: u->to = u->idx; u->sends = 1; break; /* id replaced below */
        case SC_IDLE: u->to = u->idx; u->sends = 0; break;
        case SC_GROUP: { /* the first member of each group is its author */
            uint32_t m = (uint32_t)o->members, k = u->idx % m;
            u->to = u->idx - k;
            u->sends = k == 0;
            u->absent = k >= m - (uint32_t)o->offline;
            b.nready += u->absent;
            break;
        }
        }
        if (o->sc == SC_OFFLINE || o->acks) { /* send times of the unacknowledged */
            u->stamp = calloc((size_t)o->depth, sizeof *u->stamp);
            if (!u->stamp) die("out of memory", 0);
        }
    }
    if (o->sc == SC_GROUP) {
        int ng = o->users / o->members;
        b.grp = calloc((size_t)ng, sizeof *b.grp);
        if (!b.grp) die("out of memory", 0);
        for (int g = 0; g < ng; g++) {
            if (bgroup_init(&b.grp[g], (uint32_t)(o->members - 1 - o->offline),
                            (uint32_t)o->depth, o->offline > 0))
                die("out of memory", 0);
            b.u[g * o->members].grp = &b.grp[g];
        }
    }
    if (o->sc == SC_OFFLINE) { /* receivers are absent users, never connected */
        user *extra = realloc(b.u, 2 * (size_t)o->users * sizeof *b.u);
        if (!extra) die("out of memory", 0);
        b.u = extra;
        for (int i = 0; i < o->users; i++) {
            user *u = &b.u[i];
            u->tx = &u->sub;
            u->to = (uint32_t)(o->users + i);
            b.u[o->users + i] = (user){.id = 1000000u + (uint32_t)i};
        }
    }
    b.rss_before = o->server_pid ? bproc_rss_kib(o->server_pid) : -1;
    b.t_start = bconn_clock();
    if (uv_timer_init(b.loop, &b.timer)) die("timer", 0);
    b.timer.data = &b;
    for (int k = 0; k < o->window; k++) connect_next(&b);
    r = uv_run(b.loop, UV_RUN_DEFAULT);
    (void)r; /* the run ends with exit() from the timer or a failure */
    return 1;
}
