/*
 * json.h -- JSON string output for chat-client's JSON lines.
 *
 * Pure formatting, no allocation: writes to a stdio stream. Used by
 * `chat-client listen` for message bodies (UTF-8 text from the network,
 * possibly invalid) and file paths.
 */
#ifndef CLI_JSON_H
#define CLI_JSON_H

#include <stddef.h>
#include <stdio.h>

/* Write `len` bytes of `s` to `f` as one JSON string, quotes included:
 * '"' and '\\' are escaped, control characters (< 0x20) become \n, \t, \r,
 * \b, \f or \u00XX, valid UTF-8 is copied as is, and each maximal invalid
 * subsequence (Unicode's "substitution of maximal subparts", as Python's
 * errors="replace") becomes \ufffd. Returns 0, or -1 when a write failed.
 * O(len). */
int cli_json_string(FILE *f, const void *s, size_t len);

#endif
