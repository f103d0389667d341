/* buf — growable byte buffer with a hard size cap (curl's dynbuf, in small).
 *
 * A buf always keeps a NUL after its last byte, so `b->data` can be used as a
 * C string when the content is text. The cap bounds what a peer can make us
 * allocate: an append that would pass it fails with -ENOSPC and leaves the
 * buffer unchanged. A zero-initialised buf_t is not usable: call buf_init. */
#ifndef AIPROXY_BUF_H
#define AIPROXY_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
    char  *data;   /* NULL until the first append; then NUL-terminated */
    size_t len;    /* bytes used, not counting the trailing NUL */
    size_t cap;    /* bytes allocated */
    size_t max;    /* hard cap on len */
} buf_t;

/* Prepares an empty buffer that will never hold more than `max` bytes. */
void buf_init(buf_t *b, size_t max);

/* Appends n bytes. Returns 0, -ENOSPC past the cap, -ENOMEM. */
int buf_append(buf_t *b, const void *p, size_t n);

/* Makes room for n more bytes (and the NUL) now, in one allocation, so a
 * text written piece by piece up to that size is not grown (realloc'd) at
 * each power of two it passes. Returns 0, -ENOSPC past the cap (the buffer
 * unchanged), -ENOMEM. */
int buf_reserve(buf_t *b, size_t n);

/* Appends a C string. Same returns as buf_append. */
int buf_puts(buf_t *b, const char *s);

/* Appends t[0..n) as a JSON string, byte for byte as json-c writes one
 * (JSON_C_TO_STRING_NOSLASHESCAPE): '"', '\\' and the control characters
 * escaped, every other byte as it is; for JSON text built without a json-c
 * tree. Returns as buf_append. */
int buf_json_str(buf_t *b, const char *t, size_t n);

/* Appends printf-formatted text. Same returns as buf_append. */
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf_t *b, const char *fmt, va_list ap);

/* Removes the first n bytes (n > len empties it); keeps the allocation. */
void buf_consume(buf_t *b, size_t n);

/* Empties the buffer, keeping its allocation and cap. */
void buf_reset(buf_t *b);

/* Gives the content to the caller (malloc'd, NUL-terminated, never NULL on
 * success; "" for an empty buffer) and leaves `b` empty. NULL on ENOMEM. */
char *buf_detach(buf_t *b);

/* Frees the allocation; the buffer may be reused after buf_init. */
void buf_free(buf_t *b);

/* The text, always NUL-terminated ("" when empty). Valid until the next append. */
const char *buf_str(const buf_t *b);

#endif
