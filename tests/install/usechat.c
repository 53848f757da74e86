/* usechat.c -- a program built against an installed libchat (make
 * install-check): it must compile with pkg-config's flags, link, and run. */
#include <stdio.h>
#include <string.h>

#include <chat.h>

int main(void) {
    chat_options o;
    chat_options_init(&o);
    o.host = "127.0.0.1";
    o.port = 1;
    o.user = 7;
    int err = 0;
    chat_client *c = chat_new(&o, &err);
    if (!c) {
        fprintf(stderr, "chat_new: %s\n", chat_strerror(err));
        return 1;
    }
    if (strcmp(chat_strerror(CHAT_ETOOBIG), "unknown error") == 0) return 1;
    chat_free(c);
    /* TLS: OpenSSL must come with libchat (chat.pc's Requires.private). */
    chat_tls_options t = {0};
    t.ca_file = "/nonexistent/ca.pem";
    o.tls = &t;
    char msg[256];
    if (chat_new_ex(&o, &err, msg, sizeof msg) || err != CHAT_ETLSCONF) {
        fprintf(stderr, "chat_new_ex with a missing CA file: %s\n", chat_strerror(err));
        return 1;
    }
    t.ca_file = NULL; /* the system's CAs */
    c = chat_new(&o, &err);
    if (!c || !chat_tls_enabled(c)) {
        fprintf(stderr, "chat_new with TLS: %s\n", chat_strerror(err));
        return 1;
    }
    chat_free(c);
    puts("libchat ok");
    return 0;
}
