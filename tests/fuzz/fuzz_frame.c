/*
 * fuzz_frame.c -- libFuzzer target for the wire codec (src/proto/frame.c).
 *
 * The input is treated, in turn, as:
 *   1. a stream of pipelined client -> server frames, decoded one after the
 *      other with two body limits (the protocol's and a small one taken from
 *      the input), every decoded header re-encoded and compared;
 *   2. the same for server -> client frames;
 *   3. a control frame body of each kind (HELLO, with and without a device
 *      name, WELCOME, ACK, ERROR, MSG, POST, RECEIPT, TYPING, PRESENCE
 *      both ways, POSTED), parsed and re-encoded, compared with the input.
 *
 * Every buffer handed to the codec is an exactly sized heap copy, so a read
 * one byte past its end is an AddressSanitizer report, not a silent success.
 * A result that contradicts the contract in frame.h (a size that does not
 * match the header, a PARTIAL for a complete frame, a body pointer outside
 * the input, a round trip that differs) stops the run with FUZZ_CHECK.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/signal.h"

#define FUZZ_CHECK(cond)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_frame: check failed at %s:%d: %s\n",       \
                    __FILE__, __LINE__, #cond);                              \
            __builtin_trap();                                                \
        }                                                                    \
    } while (0)

/* An exactly sized heap copy of p[0..n) (n may be 0: a 1-byte allocation
 * that is never read, so ASan still reports a read at offset 0). */
static uint8_t *dup_exact(const uint8_t *p, size_t n) {
    uint8_t *d = malloc(n ? n : 1);
    if (!d) abort();
    if (n) memcpy(d, p, n);
    return d;
}

/* Parse a control body (from an exact copy) and re-encode it; the encoding
 * must equal the body byte for byte. */
static void check_control_body(uint8_t type, const uint8_t *body, uint32_t len) {
    uint8_t *b = dup_exact(body, len);
    switch (type) {
    case FRAME_HELLO: {
        frame_hello h;
        int r = frame_parse_hello(b, len, &h);
        int conv = len >= FRAME_HELLO_MIN && (b[1] & FRAME_FLAG_CONV);
        int ok = len >= FRAME_HELLO_MIN;
        size_t pre = FRAME_HELLO_MIN;
        if (conv) {
            /* The name's length byte, then that many valid bytes. */
            ok = len >= FRAME_HELLO_CONV_MIN && b[2] <= FRAME_DEVICE_MAX &&
                 b[2] <= len - FRAME_HELLO_CONV_MIN &&
                 frame_device_valid(b + FRAME_HELLO_CONV_MIN, b[2]);
            pre = ok ? FRAME_HELLO_CONV_MIN + (size_t)b[2] : 0;
        }
        if (!ok) {
            FUZZ_CHECK(r == FRAME_EBADBODY);
            break;
        }
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(h.device_len == (conv ? b[2] : 0));
        FUZZ_CHECK(h.device_len ? h.device == b + FRAME_HELLO_CONV_MIN
                                : h.device == NULL);
        FUZZ_CHECK(h.password_len == len - pre);
        FUZZ_CHECK(h.password_len ? h.password == b + pre : h.password == NULL);
        uint8_t *out = malloc(len);
        if (!out) abort();
        size_t n = frame_put_hello(out, h.version, h.flags, h.device,
                                   h.device_len, h.password, h.password_len);
        FUZZ_CHECK(n == len && memcmp(out, b, len) == 0);
        free(out);
        break;
    }
    case FRAME_MSG: {
        frame_msg m;
        int r = frame_parse_msg(b, len, &m);
        if (len < FRAME_MSG_PRE || !frame_is_data(b[8])) {
            FUZZ_CHECK(r == FRAME_EBADBODY);
            break;
        }
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(m.payload == b + FRAME_MSG_PRE &&
                   m.payload_len == len - FRAME_MSG_PRE);
        uint8_t *out = malloc(FRAME_MSG_PRE);
        if (!out) abort();
        FUZZ_CHECK(frame_put_msg(out, &m) == FRAME_MSG_PRE);
        FUZZ_CHECK(memcmp(out, b, FRAME_MSG_PRE) == 0);
        free(out);
        break;
    }
    case FRAME_POST: {
        frame_post p;
        int r = frame_parse_post(b, len, &p);
        if (len < FRAME_POST_PRE || !frame_is_data(b[0]) ||
            (b[1] & ~FRAME_MSG_GROUP)) {
            FUZZ_CHECK(r == FRAME_EBADBODY);
            break;
        }
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(p.payload == b + FRAME_POST_PRE &&
                   p.len == len - FRAME_POST_PRE);
        uint8_t *out = malloc(FRAME_POST_PRE);
        if (!out) abort();
        FUZZ_CHECK(frame_put_post_hdr(out, &p) == FRAME_POST_PRE);
        FUZZ_CHECK(memcmp(out, b, FRAME_POST_PRE) == 0);
        free(out);
        break;
    }
    case FRAME_WELCOME: {
        frame_welcome w;
        int r = frame_parse_welcome(b, len, &w);
        if (len != FRAME_WELCOME_SIZE) {
            FUZZ_CHECK(r == FRAME_EBADBODY);
            break;
        }
        FUZZ_CHECK(r == 0);
        uint8_t *out = malloc(FRAME_WELCOME_SIZE);
        if (!out) abort();
        FUZZ_CHECK(frame_put_welcome(out, &w) == FRAME_WELCOME_SIZE);
        FUZZ_CHECK(memcmp(out, b, FRAME_WELCOME_SIZE) == 0);
        free(out);
        break;
    }
    case FRAME_ACK: {
        uint64_t count = 0;
        int r = frame_parse_ack(b, len, &count);
        if (len != FRAME_ACK_SIZE) {
            FUZZ_CHECK(r == FRAME_EBADBODY);
            break;
        }
        FUZZ_CHECK(r == 0);
        uint8_t *out = malloc(FRAME_ACK_SIZE);
        if (!out) abort();
        FUZZ_CHECK(frame_put_ack(out, count) == FRAME_ACK_SIZE);
        FUZZ_CHECK(memcmp(out, b, FRAME_ACK_SIZE) == 0);
        free(out);
        break;
    }
    case FRAME_ERROR: {
        frame_error e;
        int r = frame_parse_error(b, len, &e);
        if (len < FRAME_ERROR_FIXED) {
            FUZZ_CHECK(r == FRAME_EBADBODY);
            break;
        }
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(e.reason == b + FRAME_ERROR_FIXED);
        FUZZ_CHECK(e.reason_len == len - FRAME_ERROR_FIXED);
        /* The encoder takes a C string: re-encode the reason up to its
         * first NUL. Over FRAME_REASON_MAX bytes it is cut, never inside a
         * UTF-8 sequence, and never written past FRAME_ERROR_MAX. */
        size_t rl = strnlen((const char *)e.reason, e.reason_len);
        char *reason = malloc(rl + 1);
        if (!reason) abort();
        memcpy(reason, e.reason, rl);
        reason[rl] = '\0';
        uint8_t *out = malloc(FRAME_ERROR_MAX);
        if (!out) abort();
        size_t n = frame_put_error(out, e.code, e.ref, reason);
        FUZZ_CHECK(n >= FRAME_ERROR_FIXED && n <= FRAME_ERROR_MAX);
        size_t kept = n - FRAME_ERROR_FIXED;
        FUZZ_CHECK(memcmp(out, b, FRAME_ERROR_FIXED) == 0);
        FUZZ_CHECK(memcmp(out + FRAME_ERROR_FIXED, reason, kept) == 0);
        if (rl <= FRAME_REASON_MAX) {
            FUZZ_CHECK(kept == rl);
        } else {
            FUZZ_CHECK(kept <= FRAME_REASON_MAX);
            /* The cut falls before a byte that starts a sequence. */
            FUZZ_CHECK(((uint8_t)reason[kept] & 0xC0) != 0x80 || kept == 0);
        }
        frame_error e2;
        FUZZ_CHECK(frame_parse_error(out, (uint32_t)n, &e2) == 0);
        FUZZ_CHECK(e2.code == e.code && e2.ref == e.ref &&
                   e2.reason_len == kept);
        free(out);
        free(reason);
        break;
    }
    case FRAME_RECEIPT: {
        frame_receipt r;
        int rc = frame_parse_receipt(b, len, &r);
        int ok = len == FRAME_RECEIPT_SIZE && b[0] >= 1 && b[0] <= 4 &&
                 (b[1] & ~FRAME_MSG_GROUP) == 0 && frame_rd32(b + 2) != 0;
        FUZZ_CHECK(rc == (ok ? 0 : FRAME_EBADBODY));
        if (!ok) break;
        uint8_t out[FRAME_RECEIPT_SIZE];
        FUZZ_CHECK(frame_put_receipt(out, &r) == FRAME_RECEIPT_SIZE);
        FUZZ_CHECK(memcmp(out, b, FRAME_RECEIPT_SIZE) == 0);
        break;
    }
    case FRAME_TYPING: {
        frame_typing t;
        int rc = frame_parse_typing(b, len, &t);
        int ok = len == FRAME_TYPING_SIZE && (b[0] & ~FRAME_MSG_GROUP) == 0 &&
                 frame_rd32(b + 1) != 0 && b[5] <= 1;
        FUZZ_CHECK(rc == (ok ? 0 : FRAME_EBADBODY));
        if (!ok) break;
        uint8_t out[FRAME_TYPING_SIZE];
        FUZZ_CHECK(frame_put_typing(out, &t) == FRAME_TYPING_SIZE);
        FUZZ_CHECK(memcmp(out, b, FRAME_TYPING_SIZE) == 0);
        break;
    }
    case FRAME_POSTED: {
        uint64_t cid, id;
        int rc = frame_parse_posted(b, len, &cid, &id);
        int ok = len == FRAME_POSTED_SIZE && frame_rd64(b) != 0;
        FUZZ_CHECK(rc == (ok ? 0 : FRAME_EBADBODY));
        if (!ok) break;
        uint8_t out[FRAME_POSTED_SIZE];
        FUZZ_CHECK(frame_put_posted(out, cid, id) == FRAME_POSTED_SIZE);
        FUZZ_CHECK(memcmp(out, b, FRAME_POSTED_SIZE) == 0);
        break;
    }
    case FRAME_PRESENCE: { /* the request, then the state */
        uint8_t op;
        uint16_t count;
        int rc = frame_parse_presence_req(b, len, &op, &count);
        if (rc == 0) {
            FUZZ_CHECK(count >= 1 && count <= FRAME_PRESENCE_USERS_MAX &&
                       len == FRAME_PRESENCE_PRE + 4u * count);
            uint8_t out[FRAME_PRESENCE_PRE];
            frame_put_presence_req(out, op, count);
            FUZZ_CHECK(memcmp(out, b, FRAME_PRESENCE_PRE) == 0);
            for (uint16_t i = 0; i < count; i++)
                FUZZ_CHECK(frame_rd32(b + FRAME_PRESENCE_PRE + 4u * i) != 0);
        }
        frame_presence p;
        rc = frame_parse_presence(b, len, &p);
        int ok = len == FRAME_PRESENCE_SIZE && frame_rd32(b) != 0 && b[4] <= 1;
        FUZZ_CHECK(rc == (ok ? 0 : FRAME_EBADBODY));
        if (!ok) break;
        uint8_t out[FRAME_PRESENCE_SIZE];
        FUZZ_CHECK(frame_put_presence(out, &p) == FRAME_PRESENCE_SIZE);
        FUZZ_CHECK(memcmp(out, b, FRAME_PRESENCE_SIZE) == 0);
        break;
    }
    default:
        break;
    }
    free(b);
}

/* Decode c2s frames from buf[0..n) (an exact heap copy) one after the
 * other, with body limit max_body, checking each result. */
static void walk_c2s(const uint8_t *buf, size_t n, uint32_t max_body) {
    size_t off = 0;
    for (;;) {
        const uint8_t *p = buf + off;
        size_t left = n - off;
        frame_c2s f = {0};
        long r = frame_decode_c2s(p, left, max_body, &f);
        uint64_t total = frame_c2s_total(p, left);
        if (left < FRAME_C2S_HDR) {
            FUZZ_CHECK(r == FRAME_PARTIAL && total == 0);
            return;
        }
        FUZZ_CHECK(total == FRAME_C2S_HDR + (uint64_t)f.len);
        uint8_t hdr[FRAME_C2S_HDR];
        FUZZ_CHECK(frame_put_c2s_hdr(hdr, f.sender, f.receiver, f.type,
                                     f.len) == FRAME_C2S_HDR);
        FUZZ_CHECK(memcmp(hdr, p, FRAME_C2S_HDR) == 0);
        if (r == FRAME_ETOOBIG) {
            FUZZ_CHECK(f.len > max_body && f.body == NULL);
            return;
        }
        FUZZ_CHECK(f.len <= max_body);
        if (r == FRAME_PARTIAL) {
            FUZZ_CHECK(left - FRAME_C2S_HDR < f.len && f.body == NULL);
            return;
        }
        FUZZ_CHECK(r > 0 && (uint64_t)r == total && (size_t)r <= left);
        FUZZ_CHECK(f.body == p + FRAME_C2S_HDR);
        FUZZ_CHECK(frame_is_data(f.type) == (frame_type_name(f.type) != NULL));
        if (frame_is_control(f.type)) check_control_body(f.type, f.body, f.len);
        /* One byte short of the frame is PARTIAL (exact copy: no reading
         * the missing byte). */
        if ((size_t)r <= 4096) {
            uint8_t *short_copy = dup_exact(p, (size_t)r - 1);
            frame_c2s g;
            FUZZ_CHECK(frame_decode_c2s(short_copy, (size_t)r - 1, max_body,
                                        &g) == FRAME_PARTIAL);
            free(short_copy);
        }
        off += (size_t)r;
    }
}

/* Same for s2c frames. */
static void walk_s2c(const uint8_t *buf, size_t n, uint32_t max_body) {
    size_t off = 0;
    for (;;) {
        const uint8_t *p = buf + off;
        size_t left = n - off;
        frame_s2c f;
        long r = frame_decode_s2c(p, left, max_body, &f);
        uint64_t total = frame_s2c_total(p, left);
        if (left < FRAME_S2C_HDR) {
            FUZZ_CHECK(r == FRAME_PARTIAL && total == 0);
            return;
        }
        FUZZ_CHECK(total == FRAME_S2C_HDR + (uint64_t)f.len);
        uint8_t hdr[FRAME_S2C_HDR];
        FUZZ_CHECK(frame_put_s2c_hdr(hdr, f.sender, f.type, f.len) ==
                   FRAME_S2C_HDR);
        FUZZ_CHECK(memcmp(hdr, p, FRAME_S2C_HDR) == 0);
        if (r == FRAME_ETOOBIG) {
            FUZZ_CHECK(f.len > max_body && f.body == NULL);
            return;
        }
        FUZZ_CHECK(f.len <= max_body);
        if (r == FRAME_PARTIAL) {
            FUZZ_CHECK(left - FRAME_S2C_HDR < f.len && f.body == NULL);
            return;
        }
        FUZZ_CHECK(r > 0 && (uint64_t)r == total && (size_t)r <= left);
        FUZZ_CHECK(f.body == p + FRAME_S2C_HDR);
        if (frame_is_control(f.type)) check_control_body(f.type, f.body, f.len);
        if ((size_t)r <= 4096) {
            uint8_t *short_copy = dup_exact(p, (size_t)r - 1);
            frame_s2c g;
            FUZZ_CHECK(frame_decode_s2c(short_copy, (size_t)r - 1, max_body,
                                        &g) == FRAME_PARTIAL);
            free(short_copy);
        }
        off += (size_t)r;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* libFuzzer's buffer is exactly `size` bytes already; copy anyway so
     * the target does not depend on that. */
    uint8_t *buf = dup_exact(data, size);

    /* A small limit derived from the input exercises ETOOBIG on short
     * inputs; FRAME_LEN_MAX exercises PARTIAL on 4 GiB headers. */
    uint32_t small = size ? (uint32_t)data[size - 1] * 3u : 0;
    walk_c2s(buf, size, FRAME_LEN_MAX);
    walk_c2s(buf, size, small);
    walk_s2c(buf, size, FRAME_LEN_MAX);
    walk_s2c(buf, size, small);

    /* The whole input as each control body (bodies are u32-sized). */
    if (size <= UINT32_MAX) {
        static const uint8_t types[] = {FRAME_HELLO, FRAME_WELCOME, FRAME_ACK,
                                        FRAME_ERROR, FRAME_MSG, FRAME_POST,
                                        FRAME_RECEIPT, FRAME_TYPING,
                                        FRAME_PRESENCE, FRAME_POSTED};
        for (size_t i = 0; i < sizeof types; i++)
            check_control_body(types[i], buf, (uint32_t)size);
    }

    /* Names: every code has one; type names exactly for data types. */
    for (size_t i = 0; i < size && i < 4; i++) {
        FUZZ_CHECK(frame_err_name(data[i]) != NULL);
        FUZZ_CHECK(frame_is_data(data[i]) == (frame_type_name(data[i]) != NULL));
    }
    free(buf);
    return 0;
}
