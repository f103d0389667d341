/* utf8 — see utf8.h. */
#include "shared/utf8.h"

#include <stdlib.h>
#include <string.h>

/* How many bytes of s[0..n) form one valid character (1..4), or 0 when the
 * sequence is ill-formed; then *bad is the length of its longest prefix that
 * could have started a valid one (at least 1). RFC 3629 table 3-7 ranges. */
static size_t utf8__char(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len, i;

    *bad = 1;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4;
    else
        return 0;   /* a continuation byte, C0, C1 or F5..FF */
    if (c == 0xE0)
        lo = 0xA0;  /* no overlong 3-byte forms */
    else if (c == 0xED)
        hi = 0x9F;  /* no surrogates */
    else if (c == 0xF0)
        lo = 0x90;  /* no overlong 4-byte forms */
    else if (c == 0xF4)
        hi = 0x8F;  /* nothing past U+10FFFF */
    for (i = 1; i < len; i++) {
        unsigned char b = i < n ? s[i] : 0;
        if (i >= n || b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF)) {
            *bad = i;
            return 0;
        }
    }
    return len;
}

int utf8_valid(const char *s, size_t n)
{
    size_t i = 0, k, bad;

    while (i < n) {
        if (!(k = utf8__char((const unsigned char *)s + i, n - i, &bad)))
            return 0;
        i += k;
    }
    return 1;
}

size_t utf8_clean(const char *s, size_t n, char *dst, size_t dcap)
{
    static const char fffd[] = "\xEF\xBF\xBD";
    size_t i = 0, o = 0, k, bad;

    while (i < n) {
        const char *from = s + i;
        k = utf8__char((const unsigned char *)s + i, n - i, &bad);
        if (!k) {
            from = fffd;
            i += bad;
            k = 3;
        } else {
            i += k;
        }
        if (o + k >= dcap)
            break;
        memcpy(dst + o, from, k);
        o += k;
    }
    dst[o] = '\0';
    return o;
}

char *utf8_clean_dup(const char *s, size_t n, size_t *outlen)
{
    size_t cap = n * 3 + 1, len;
    char *d = malloc(cap);

    if (!d)
        return NULL;
    len = utf8_clean(s, n, d, cap);
    if (outlen)
        *outlen = len;
    return d;
}
