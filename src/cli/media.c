/*
 * media.c -- saving received media bodies under unique names (see media.h).
 */
#include "cli/media.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *cli_media_ext(const void *body, size_t len) {
    const unsigned char *b = body;
    if (len >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return "png";
    if (len >= 3 && memcmp(b, "\xff\xd8\xff", 3) == 0) return "jpg";
    if (len >= 4 && memcmp(b, "GIF8", 4) == 0) return "gif";
    if (len >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0) return "webp";
    if (len >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WAVE", 4) == 0) return "wav";
    if (len >= 2 && memcmp(b, "BM", 2) == 0 && len >= 14) return "bmp";
    if (len >= 3 && memcmp(b, "ID3", 3) == 0) return "mp3";
    if (len >= 4 && memcmp(b, "OggS", 4) == 0) return "ogg";
    if (len >= 4 && memcmp(b, "fLaC", 4) == 0) return "flac";
    if (len >= 8 && memcmp(b + 4, "ftyp", 4) == 0) return "mp4";
    if (len >= 4 && memcmp(b, "\x1a\x45\xdf\xa3", 4) == 0) return "webm";
    return "bin";
}

int cli_media_save(const char *dir, const char *type_name, uint32_t sender,
                   const void *body, size_t len, char *path, size_t cap) {
    const char *ext = cli_media_ext(body, len);
    int fd = -1;
    for (unsigned n = 1; n < 1000000; n++) {
        int w = snprintf(path, cap, "%s/%s-from%u-%04u.%s", dir, type_name, sender, n, ext);
        if (w < 0 || (size_t)w >= cap) {
            errno = ENAMETOOLONG;
            return -1;
        }
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST) break;
    }
    if (fd < 0) return -1;
    const char *p = body;
    size_t left = len;
    while (left > 0) {
        ssize_t r = write(fd, p, left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            close(fd);
            (void)unlink(path); /* best effort: the write error is what counts */
            errno = e;
            return -1;
        }
        p += r;
        left -= (size_t)r;
    }
    if (close(fd) < 0) {
        int e = errno;
        (void)unlink(path); /* best effort: the close error is what counts */
        errno = e;
        return -1;
    }
    return 0;
}
