/*
 * settings_doc.c -- build/settings-doc: prints the texts made from
 * chat-server's settings table (config.h) that the build puts into the
 * manual pages, docs/OPERATIONS.md and the example chat-server.conf:
 *
 *   settings-doc man-flags              OPTIONS of chat-server(8)
 *   settings-doc man-conf               SETTINGS of chat-server.conf(5)
 *   settings-doc markdown               the table of docs/OPERATIONS.md
 *   settings-doc conf [NAME=VALUE]...   the commented example file, with
 *                                       each NAME=VALUE set (uncommented)
 *
 * Exit 0, or 2 with a sentence on stderr.
 */
#include <stdio.h>

#include "config.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: settings-doc man-flags|man-conf|markdown|"
                        "conf [NAME=VALUE]...\n");
        return 2;
    }
    if (config_doc(argv[1], argc - 2, argv + 2, stdout)) return 2;
    if (fflush(stdout) || ferror(stdout)) {
        perror("settings-doc: stdout");
        return 2;
    }
    return 0;
}
