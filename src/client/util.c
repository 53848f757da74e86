/*
 * util.c -- libchat's pure helpers: error names, file-type guessing, the
 * backoff schedule. No state, no I/O, no allocation.
 */
#include "chat.h"

#include <string.h>
#include <strings.h>

#include "proto/frame.h"

const char *chat_strerror(int err) {
    switch (err) {
    case CHAT_OK: return "success";
    case CHAT_EINVAL: return "invalid argument";
    case CHAT_ENOMEM: return "out of memory";
    case CHAT_EFULL: return "outgoing queue full; retry after acknowledgements";
    case CHAT_ETOOBIG: return "message larger than the server accepts";
    case CHAT_ENOENT: return "no such file";
    case CHAT_EIO: return "file could not be opened or read";
    case CHAT_ERESOLVE: return "host name could not be resolved";
    case CHAT_ECONNECT: return "could not connect to the server";
    case CHAT_ECLOSED: return "connection closed by the server";
    case CHAT_ENOTCONN: return "not connected";
    case CHAT_EPROTO: return "protocol error";
    case CHAT_EAUTH: return "login refused by the server";
    case CHAT_ESTATE: return "operation not valid in the current state";
    case CHAT_ESYS: return "system error";
    case CHAT_ENOTSUP: return "not supported";
    case CHAT_ETLSCONF: return "TLS set-up failed (CA, certificate or key file)";
    case CHAT_ETLS: return "TLS handshake or connection failed";
    case CHAT_ETLSVERIFY: return "the server's TLS certificate failed verification";
    case CHAT_EREFUSED: return "the server refused the request";
    default: return "unknown error";
    }
}

const char *chat_server_strerror(int code) {
    if (code == CHAT_SERR_DENIED) return "presence subscription refused";
    return code < 0 ? "unknown error" : frame_err_name((unsigned)code);
}

int chat_type_from_path(const char *path) {
    static const struct { const char *ext; int type; } map[] = {
        {"png", CHAT_PICTURE}, {"jpg", CHAT_PICTURE}, {"jpeg", CHAT_PICTURE},
        {"gif", CHAT_PICTURE}, {"webp", CHAT_PICTURE}, {"bmp", CHAT_PICTURE},
        {"heic", CHAT_PICTURE}, {"svg", CHAT_PICTURE},
        {"mp3", CHAT_VOICE}, {"wav", CHAT_VOICE}, {"ogg", CHAT_VOICE},
        {"oga", CHAT_VOICE}, {"opus", CHAT_VOICE}, {"m4a", CHAT_VOICE},
        {"aac", CHAT_VOICE}, {"flac", CHAT_VOICE},
        {"mp4", CHAT_VIDEO}, {"webm", CHAT_VIDEO}, {"mkv", CHAT_VIDEO},
        {"mov", CHAT_VIDEO}, {"avi", CHAT_VIDEO}, {"m4v", CHAT_VIDEO},
    };
    if (!path) return CHAT_EINVAL;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base) return CHAT_EINVAL; /* no extension, or ".png" */
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcasecmp(dot + 1, map[i].ext) == 0) return map[i].type;
    return CHAT_EINVAL;
}

uint32_t chat_backoff_ms(unsigned attempt, uint32_t min_ms, uint32_t max_ms) {
    uint64_t d = min_ms;
    for (unsigned i = 0; i < attempt && d != 0 && d < max_ms; i++) d *= 2;
    return d > max_ms ? max_ms : (uint32_t)d;
}
