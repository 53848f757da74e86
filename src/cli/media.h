/*
 * media.h -- saving received picture/voice/video bodies to files.
 */
#ifndef CLI_MEDIA_H
#define CLI_MEDIA_H

#include <stddef.h>
#include <stdint.h>

/* File extension for a body: from its first bytes when they are a well-known
 * format (png, jpg, gif, webp, bmp, mp3, wav, ogg, flac, mp4, webm), else
 * "bin" (the protocol says only picture/voice/video, not the format). Pure. */
const char *cli_media_ext(const void *body, size_t len);

/* Write `body` to a new file in `dir` named TYPE-fromSENDER-NNNN.EXT (NNNN
 * counts up from 0001 until a name is free: existing files are never
 * overwritten). The path is written to `path` (cap bytes). Returns 0, or -1
 * with errno set (the partial file is removed). O(len). */
int cli_media_save(const char *dir, const char *type_name, uint32_t sender,
                   const void *body, size_t len, char *path, size_t cap);

#endif
