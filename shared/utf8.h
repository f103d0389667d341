/* utf8 — text we echo back stays valid UTF-8. json-c writes a string's bytes
 * as they are, so a model name with byte 0xFF, or an upstream's broken body
 * copied into our error, would make our JSON invalid UTF-8 (RFC 8259 8.1):
 * every such byte is replaced by U+FFFD on the way out. Pure: no I/O. */
#ifndef AIPROXY_UTF8_H
#define AIPROXY_UTF8_H

#include <stddef.h>

/* 1 when s[0..n) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), else 0. */
int utf8_valid(const char *s, size_t n);

/* Copies s[0..n) into dst (room for dcap bytes, NUL included; dcap > 0) with
 * each ill-formed part (the longest prefix of a sequence that could have
 * been valid, or one byte) replaced by U+FFFD, stopping at a character
 * boundary when dst is full. Returns the length written (dst is terminated). */
size_t utf8_clean(const char *s, size_t n, char *dst, size_t dcap);

/* utf8_clean into a new malloc'd string (at most 3 * n + 1 bytes), its length
 * in *outlen when not NULL. NULL on ENOMEM. */
char *utf8_clean_dup(const char *s, size_t n, size_t *outlen);

#endif
