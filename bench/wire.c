/* wire.c -- see wire.h. */
#include "wire.h"

#include <stdio.h>
#include <string.h>

#include "proto/frame.h"

_Static_assert(WIRE_POST_GROUP == FRAME_MSG_GROUP, "wire.h's GROUP flag is the protocol's");

/* A line (text protocols) longer than this without CRLF is not the
 * protocol (NATS INFO is a few hundred bytes). */
#define LINE_MAX_LEN 65536u

int wire_proto_parse(const char *s, wire_proto *p) {
    static const char *names[] = {"chat", "redis", "nats", "mqtt"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) {
            *p = (wire_proto)i;
            return 0;
        }
    return -1;
}

const char *wire_proto_name(wire_proto p) {
    static const char *names[] = {"chat", "redis", "nats", "mqtt"};
    return names[p];
}

int wire_split_pubsub(wire_proto p) { return p == WIRE_REDIS; }

/* --- helpers */

/* MQTT remaining length, 1-4 bytes. */
static size_t mqtt_varint(uint8_t *out, uint32_t v) {
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        out[n++] = (uint8_t)(b | (v ? 0x80 : 0));
    } while (v);
    return n;
}

/* Position of "\r\n" in d[from..n), or -1. */
static long find_crlf(const uint8_t *d, size_t n, size_t from) {
    for (size_t i = from; i + 1 < n; i++) {
        const uint8_t *r = memchr(d + i, '\r', n - 1 - i);
        if (!r) return -1;
        i = (size_t)(r - d);
        if (d[i + 1] == '\n') return (long)i;
    }
    return -1;
}

/* Decimal at d[0..n) (n > 0, digits only, optional '-'), or -1. */
static long long parse_dec(const uint8_t *d, size_t n) {
    if (n == 0 || n > 18) return -1;
    long long v = 0;
    size_t i = 0;
    int neg = 0;
    if (d[0] == '-') { neg = 1; i = 1; }
    if (i == n) return -1;
    for (; i < n; i++) {
        if (d[i] < '0' || d[i] > '9') return -1;
        v = v * 10 + (d[i] - '0');
    }
    return neg ? -v : v;
}

/* --- hello */

size_t wire_hello(wire_proto p, uint8_t out[WIRE_HELLO_MAX], uint32_t id, unsigned flags) {
    int n = 0;
    switch (p) {
    case WIRE_CHAT:
        if (flags & (WIRE_ACKS | WIRE_HELLO | WIRE_CONV)) {
            uint8_t *body = out + FRAME_C2S_HDR;
            uint8_t hf = (flags & WIRE_ACKS ? FRAME_FLAG_ACKS : 0) |
                         (flags & WIRE_CONV ? FRAME_FLAG_CONV : 0);
            size_t bl = frame_put_hello(body, FRAME_VERSION, hf,
                                        (const uint8_t *)WIRE_DEVICE,
                                        (uint8_t)strlen(WIRE_DEVICE), NULL, 0);
            return frame_put_c2s_hdr(out, id, 0, FRAME_HELLO, (uint32_t)bl) + bl;
        }
        if (!(flags & WIRE_SUB)) return 0;
        return frame_put_c2s_hdr(out, id, id, FRAME_TEXT, 0);
    case WIRE_REDIS: {
        if (!(flags & WIRE_SUB)) return 0;
        char ch[16];
        int cl = snprintf(ch, sizeof ch, "u%u", id);
        n = snprintf((char *)out, WIRE_HELLO_MAX, "*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n", cl, ch);
        return (size_t)n;
    }
    case WIRE_NATS:
        n = snprintf((char *)out, WIRE_HELLO_MAX,
                     "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n");
        if (flags & WIRE_SUB)
            n += snprintf((char *)out + n, WIRE_HELLO_MAX - (size_t)n, "SUB u%u 1\r\n", id);
        n += snprintf((char *)out + n, WIRE_HELLO_MAX - (size_t)n, "PING\r\n");
        return (size_t)n;
    case WIRE_MQTT: {
        char cid[16];
        int cl = snprintf(cid, sizeof cid, "b%u", id);
        uint8_t *o = out;
        /* CONNECT: "MQTT", level 4, clean session, keepalive 0, client id */
        uint32_t rem = 10 + 2 + (uint32_t)cl;
        *o++ = 0x10;
        o += mqtt_varint(o, rem);
        static const uint8_t vh[] = {0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 0};
        memcpy(o, vh, sizeof vh);
        o += sizeof vh;
        *o++ = 0;
        *o++ = (uint8_t)cl;
        memcpy(o, cid, (size_t)cl);
        o += cl;
        if (flags & WIRE_SUB) { /* MQTT 3.1.1 lets a client send it before CONNACK */
            char t[16];
            int tl = snprintf(t, sizeof t, "u%u", id);
            *o++ = 0x82;
            o += mqtt_varint(o, 2 + 2 + (uint32_t)tl + 1);
            *o++ = 0;
            *o++ = 1; /* packet id 1 */
            *o++ = 0;
            *o++ = (uint8_t)tl;
            memcpy(o, t, (size_t)tl);
            o += tl;
            *o++ = 0; /* QoS 0 */
        }
        return (size_t)(o - out);
    }
    }
    return 0;
}

/* --- messages */

size_t wire_msg_head(wire_proto p, uint8_t out[WIRE_HEAD_MAX], uint32_t from,
                     uint32_t to, uint32_t len) {
    char t[16];
    int tl;
    switch (p) {
    case WIRE_CHAT:
        return frame_put_c2s_hdr(out, from, to, FRAME_TEXT, len);
    case WIRE_REDIS:
        tl = snprintf(t, sizeof t, "u%u", to);
        return (size_t)snprintf((char *)out, WIRE_HEAD_MAX,
                                "*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%u\r\n", tl, t, len);
    case WIRE_NATS:
        return (size_t)snprintf((char *)out, WIRE_HEAD_MAX, "PUB u%u %u\r\n", to, len);
    case WIRE_MQTT: {
        tl = snprintf(t, sizeof t, "u%u", to);
        uint8_t *o = out;
        *o++ = 0x30; /* PUBLISH, QoS 0, no retain */
        o += mqtt_varint(o, 2 + (uint32_t)tl + len);
        *o++ = 0;
        *o++ = (uint8_t)tl;
        memcpy(o, t, (size_t)tl);
        o += tl;
        return (size_t)(o - out);
    }
    }
    return 0;
}

size_t wire_msg_tail(wire_proto p, uint8_t out[WIRE_TAIL_MAX]) {
    if (p != WIRE_REDIS && p != WIRE_NATS) return 0;
    out[0] = '\r';
    out[1] = '\n';
    return 2;
}

/* --- chat: conversations and groups */

size_t wire_post_head(uint8_t out[WIRE_HEAD_MAX], uint32_t from, uint32_t to,
                      uint8_t flags, uint64_t cid, uint32_t len) {
    size_t n = frame_put_c2s_hdr(out, from, to, FRAME_POST, FRAME_POST_PRE + len);
    out[n] = FRAME_TEXT;
    out[n + 1] = flags;
    frame_wr64(out + n + 2, cid);
    return n + FRAME_POST_PRE;
}

size_t wire_group_create_size(size_t namelen, uint32_t count) {
    return FRAME_C2S_HDR + FRAME_GROUP_PRE + 1 + namelen + 2 + 4 * (size_t)count;
}

size_t wire_group_create(uint8_t *out, uint32_t from, uint32_t req, const char *name,
                         const uint32_t *ids, uint32_t count) {
    size_t nl = strlen(name);
    if (nl < 1 || nl > WIRE_GROUP_NAME_MAX || count > WIRE_GROUP_MEMBERS_MAX) return 0;
    size_t total = wire_group_create_size(nl, count);
    uint8_t *o = out + frame_put_c2s_hdr(out, from, 0, FRAME_GROUP,
                                         (uint32_t)(total - FRAME_C2S_HDR));
    *o++ = WIRE_GROUP_CREATE;
    frame_wr32(o, req);
    frame_wr32(o + 4, 0); /* no group yet */
    o += 8;
    *o++ = (uint8_t)nl;
    memcpy(o, name, nl);
    o += nl;
    *o++ = (uint8_t)(count >> 8);
    *o++ = (uint8_t)count;
    for (uint32_t i = 0; i < count; i++, o += 4) frame_wr32(o, ids[i]);
    return total;
}

int wire_parse_groups(const uint8_t *body, size_t len, wire_groups *g) {
    if (len < FRAME_GROUP_PRE || body[0] < 1 || body[0] > WIRE_GROUP_EVENT) return -1;
    g->op = body[0];
    g->req = frame_rd32(body + 1);
    g->group = frame_rd32(body + 5);
    g->rest = body + FRAME_GROUP_PRE;
    g->rest_len = len - FRAME_GROUP_PRE;
    return 0;
}

size_t wire_ack(wire_proto p, uint8_t out[WIRE_ACK_MAX], uint32_t id, uint64_t count) {
    if (p != WIRE_CHAT) return 0;
    frame_put_c2s_hdr(out, id, 0, FRAME_ACK, FRAME_ACK_SIZE);
    frame_put_ack(out + FRAME_C2S_HDR, count);
    return FRAME_C2S_HDR + FRAME_ACK_SIZE;
}

size_t wire_pong(wire_proto p, uint8_t out[WIRE_PONG_MAX], uint32_t id,
                 const uint8_t *body, size_t len) {
    switch (p) {
    case WIRE_CHAT:
        if (len > FRAME_PING_MAX) len = FRAME_PING_MAX;
        frame_put_c2s_hdr(out, id, 0, FRAME_PONG, (uint32_t)len);
        memcpy(out + FRAME_C2S_HDR, body, len);
        return FRAME_C2S_HDR + len;
    case WIRE_NATS:
        memcpy(out, "PONG\r\n", 6);
        return 6;
    case WIRE_MQTT:
        out[0] = 0xd0; /* PINGRESP (never asked for with keepalive 0) */
        out[1] = 0;
        return 2;
    case WIRE_REDIS:
        return 0;
    }
    return 0;
}

/* --- decoders */

/* Control frames from the server are tens of bytes, but a GROUPS event or
 * MEMBERS answer lists a group's members (up to --max-group-members, 5
 * bytes each): 60 KiB holds 12,000 of them. One over this is not what
 * chat-bench expects; it must stay below bconn's BCONN_PEND_MAX (64 KiB). */
#define CHAT_CONTROL_MAX (60u << 10)

static long decode_chat(const uint8_t *d, size_t n, wire_ev *ev) {
    if (n < FRAME_S2C_HDR) return 0;
    uint8_t type = d[4];
    uint32_t len = (uint32_t)d[5] << 24 | (uint32_t)d[6] << 16 | (uint32_t)d[7] << 8 | d[8];
    ev->kind = WEV_NONE;
    ev->body = NULL;
    ev->follow = 0;
    ev->count = 0;
    if (frame_is_data(type)) { /* the head only; 0 bytes: the binding's echo */
        ev->kind = len ? WEV_MSG : WEV_READY;
        ev->len = len;
        ev->follow = len;
        return FRAME_S2C_HDR;
    }
    if (type == FRAME_MSG) { /* its head: the header and the fixed prefix */
        if (len < FRAME_MSG_PRE) return -1;
        if (n < FRAME_S2C_HDR + FRAME_MSG_PRE) return 0;
        ev->kind = WEV_MSG;
        ev->len = len - FRAME_MSG_PRE;
        ev->follow = ev->len;
        return FRAME_S2C_HDR + FRAME_MSG_PRE;
    }
    frame_s2c f;
    long r = frame_decode_s2c(d, n, CHAT_CONTROL_MAX, &f);
    if (r <= 0) return r == FRAME_PARTIAL ? 0 : -1;
    ev->body = f.body;
    ev->len = f.len;
    if (f.type == FRAME_WELCOME) {
        frame_welcome w;
        if (frame_parse_welcome(f.body, f.len, &w)) return -1;
        ev->kind = WEV_READY;
        ev->count = (w.flags & FRAME_FLAG_ACKS ? WIRE_ACKS : 0) |
                    (w.flags & FRAME_FLAG_CONV ? WIRE_CONV : 0);
    } else if (f.type == FRAME_GROUPS) {
        ev->kind = WEV_GROUPS;
    } else if (f.type == FRAME_ACK) {
        if (frame_parse_ack(f.body, f.len, &ev->count)) return -1;
        ev->kind = WEV_ACK;
    } else if (f.type == FRAME_PING) {
        ev->kind = WEV_PING;
    } else if (f.type == FRAME_ERROR) {
        frame_error e;
        ev->kind = WEV_ERROR;
        if (frame_parse_error(f.body, f.len, &e) == 0) {
            ev->body = e.reason;
            ev->len = e.reason_len;
        }
    }
    return r;
}

/* One RESP2 element at d[0..n): bulk string or integer (or simple string /
 * error). Returns its size, 0 partial, -1 not RESP; *s and *sl the text, *iv the
 * integer. */
static long resp_elem(const uint8_t *d, size_t n, const uint8_t **s, size_t *sl,
                      long long *iv, uint8_t *kind) {
    if (n < 1) return 0;
    long e = find_crlf(d, n, 1);
    if (e < 0) return n > LINE_MAX_LEN ? -1 : 0;
    *kind = d[0];
    switch (d[0]) {
    case '$': {
        long long len = parse_dec(d + 1, (size_t)e - 1);
        if (len < 0) return -1;
        size_t total = (size_t)e + 2 + (size_t)len + 2;
        if (n < total) return 0;
        *s = d + e + 2;
        *sl = (size_t)len;
        return (long)total;
    }
    case ':':
        *iv = parse_dec(d + 1, (size_t)e - 1);
        return e + 2;
    case '+':
    case '-':
        *s = d + 1;
        *sl = (size_t)e - 1;
        return e + 2;
    default:
        return -1;
    }
}

/* A RESP2 bulk string's header "$N\r\n" at d[0..n): its size, 0 partial,
 * -1 not one; *len = N. */
static long resp_bulk_head(const uint8_t *d, size_t n, long long *len) {
    if (n < 1) return 0;
    if (d[0] != '$') return -1;
    long e = find_crlf(d, n, 1);
    if (e < 0) return n > LINE_MAX_LEN ? -1 : 0;
    *len = parse_dec(d + 1, (size_t)e - 1);
    return *len < 0 ? -1 : e + 2;
}

static long decode_redis(const uint8_t *d, size_t n, wire_ev *ev) {
    if (n < 1) return 0;
    const uint8_t *s = NULL;
    size_t sl = 0;
    long long iv = 0;
    uint8_t k;
    ev->kind = WEV_NONE;
    ev->body = NULL;
    ev->follow = 0;
    if (d[0] != '*') {
        long r = resp_elem(d, n, &s, &sl, &iv, &k);
        if (r <= 0) return r;
        if (k == ':') {
            ev->kind = WEV_PUBLISHED;
            ev->count = iv < 0 ? 0 : (uint64_t)iv;
        } else if (k == '-') {
            ev->kind = WEV_ERROR;
            ev->body = s;
            ev->len = sl;
        }
        return r;
    }
    long e = find_crlf(d, n, 1);
    if (e < 0) return n > LINE_MAX_LEN ? -1 : 0;
    long long cnt = parse_dec(d + 1, (size_t)e - 1);
    if (cnt < 0 || cnt > 8) return -1;
    size_t off = (size_t)e + 2;
    const uint8_t *first = NULL;
    size_t firstl = 0;
    for (long long i = 0; i < cnt; i++) {
        if (i == 2 && cnt == 3 && first && firstl == 7 && !memcmp(first, "message", 7)) {
            /* ["message", channel, payload]: stop at the payload's head */
            long long len;
            long r = resp_bulk_head(d + off, n - off, &len);
            if (r <= 0) return r;
            ev->kind = WEV_MSG;
            ev->len = (size_t)len;
            ev->follow = (uint64_t)len + 2;
            return (long)(off + (size_t)r);
        }
        long r = resp_elem(d + off, n - off, &s, &sl, &iv, &k);
        if (r <= 0) return r;
        if (i == 0 && k == '$') { first = s; firstl = sl; }
        off += (size_t)r;
    }
    if (first && firstl == 9 && !memcmp(first, "subscribe", 9)) ev->kind = WEV_READY;
    return (long)off;
}

static int line_is(const uint8_t *d, long e, const char *w) {
    size_t l = strlen(w);
    return (size_t)e >= l && !memcmp(d, w, l) && ((size_t)e == l || d[l] == ' ' || d[l] == '\t');
}

static long decode_nats(const uint8_t *d, size_t n, wire_ev *ev) {
    long e = find_crlf(d, n, 0);
    if (e < 0) return n > LINE_MAX_LEN ? -1 : 0;
    ev->kind = WEV_NONE;
    ev->body = NULL;
    ev->follow = 0;
    if (line_is(d, e, "MSG")) {
        /* MSG <subject> <sid> [reply-to] <#bytes>: the size is the last word */
        long s = e;
        while (s > 0 && d[s - 1] != ' ' && d[s - 1] != '\t') s--;
        long long len = parse_dec(d + s, (size_t)(e - s));
        if (len < 0) return -1;
        ev->kind = WEV_MSG;
        ev->len = (size_t)len;
        ev->follow = (uint64_t)len + 2;
        return e + 2;
    }
    if (line_is(d, e, "PING")) ev->kind = WEV_PING;
    else if (line_is(d, e, "PONG")) ev->kind = WEV_READY;
    else if (line_is(d, e, "-ERR")) {
        ev->kind = WEV_ERROR;
        ev->body = d;
        ev->len = (size_t)e;
    } else if (!line_is(d, e, "INFO") && !line_is(d, e, "+OK"))
        return -1;
    return e + 2;
}

/* Other MQTT packets from a broker are a few bytes; one over this is not
 * what chat-bench expects. */
#define MQTT_CONTROL_MAX 4096u

static long decode_mqtt(const uint8_t *d, size_t n, wire_ev *ev) {
    if (n < 2) return 0;
    uint32_t rem = 0;
    size_t i = 1;
    for (int shift = 0;; shift += 7, i++) {
        if (i >= n) return 0;
        if (shift > 21) return -1;
        rem |= (uint32_t)(d[i] & 0x7f) << shift;
        if (!(d[i] & 0x80)) break;
    }
    size_t hdr = i + 1;
    const uint8_t *v = d + hdr;
    ev->kind = WEV_NONE;
    ev->body = NULL;
    ev->follow = 0;
    if (d[0] >> 4 == 3) { /* PUBLISH: the head is up to the payload */
        if (rem < 2) return -1;
        if (n < hdr + 2) return 0;
        size_t tl = (size_t)v[0] << 8 | v[1];
        size_t skip = 2 + tl + (((d[0] >> 1) & 3) ? 2 : 0);
        if (skip > rem) return -1;
        if (n < hdr + skip) return 0;
        ev->kind = WEV_MSG;
        ev->len = rem - skip;
        ev->follow = rem - skip;
        return (long)(hdr + skip);
    }
    if (rem > MQTT_CONTROL_MAX) return -1;
    size_t total = hdr + rem;
    if (n < total) return 0;
    switch (d[0] >> 4) {
    case 2: /* CONNACK */
        if (rem < 2) return -1;
        if (v[1]) {
            ev->kind = WEV_ERROR;
            ev->body = (const uint8_t *)"CONNACK refused the connection";
            ev->len = strlen((const char *)ev->body);
        }
        break;
    case 9: /* SUBACK */
        if (rem < 3) return -1;
        if (v[2] == 0x80) {
            ev->kind = WEV_ERROR;
            ev->body = (const uint8_t *)"SUBACK refused the subscription";
            ev->len = strlen((const char *)ev->body);
        } else
            ev->kind = WEV_READY;
        break;
    case 12: /* PINGREQ from a server: not in 3.1.1, answer anyway */
        ev->kind = WEV_PING;
        break;
    default: /* PINGRESP, UNSUBACK, ... */
        break;
    }
    return (long)total;
}

long wire_decode(wire_proto p, const uint8_t *d, size_t n, wire_ev *ev) {
    switch (p) {
    case WIRE_CHAT: return decode_chat(d, n, ev);
    case WIRE_REDIS: return decode_redis(d, n, ev);
    case WIRE_NATS: return decode_nats(d, n, ev);
    case WIRE_MQTT: return decode_mqtt(d, n, ev);
    }
    return -1;
}
