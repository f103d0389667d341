/* pct — percent-decoding (%XX), for query strings and Redis URLs. No I/O. */
#ifndef AIPROXY_PCT_H
#define AIPROXY_PCT_H

#include <stddef.h>

/* The value of one hex digit, or -1. */
int pct_hex(int c);

enum {
    PCT_PLUS_SPACE = 1,  /* '+' means a space, as HTML forms send */
    PCT_STRICT = 2       /* a malformed escape or %00 is an error (else kept literally) */
};

/* Decodes s[0..n) into dst (room for dcap bytes, NUL included). Returns the
 * decoded length, or -EINVAL (malformed escape, strict), -EILSEQ (%00,
 * strict), -ENOSPC (does not fit). */
long pct_decode(const char *s, size_t n, char *dst, size_t dcap, unsigned flags);

#endif
