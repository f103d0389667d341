#include "shared/pct.h"

#include <errno.h>

int pct_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long pct_decode(const char *s, size_t n, char *dst, size_t dcap, unsigned flags)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        char c = s[i];
        int hi, lo;

        if (c == '+' && (flags & PCT_PLUS_SPACE)) {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 < n && (hi = pct_hex((unsigned char)s[i + 1])) >= 0 &&
                (lo = pct_hex((unsigned char)s[i + 2])) >= 0) {
                c = (char)(hi * 16 + lo);
                i += 2;
                if (c == '\0' && (flags & PCT_STRICT))
                    return -EILSEQ;
            } else if (flags & PCT_STRICT) {
                return -EINVAL;
            }
        }
        if (o + 1 >= dcap)
            return -ENOSPC;
        dst[o++] = c;
    }
    if (o >= dcap)
        return -ENOSPC; /* dcap 0: no room even for the NUL of an empty result */
    dst[o] = '\0';
    return (long)o;
}
