/* fuzz_pct — shared/pct.h: pct_decode into a buffer of exactly dcap bytes.
 *
 * Input: byte 0 the flags, byte 1 the destination size, the rest the text.
 * ASan catches any write past dcap; the checks hold pct_decode to its
 * contract (a result always fits with its NUL, a lax decode never fails when
 * the room is there, decoding never makes text longer). */
#include "shared/pct.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned flags;
    size_t dcap, n;
    const char *s;
    char *dst, *big;
    long r, rbig;

    if (size < 2)
        return 0;
    flags = data[0] & (PCT_PLUS_SPACE | PCT_STRICT);
    dcap = data[1];
    s = (const char *)data + 2;
    n = size - 2;
    dst = malloc(dcap ? dcap : 1);
    big = malloc(n + 1);
    if (!dst || !big)
        abort();

    r = pct_decode(s, n, dst, dcap, flags);
    if (r >= 0 && ((size_t)r >= dcap || dst[r] != '\0'))
        abort();
    if (r < 0 && r != -ENOSPC && r != -EINVAL && r != -EILSEQ)
        abort();
    if (r < 0 && r != -ENOSPC && !(flags & PCT_STRICT))
        abort();    /* only a strict decode refuses what it reads */

    rbig = pct_decode(s, n, big, n + 1, flags);
    if (rbig == -ENOSPC || rbig > (long)n)
        abort();
    if (r >= 0 && (rbig != r || memcmp(dst, big, (size_t)r) != 0))
        abort();    /* the room given does not change the result */
    if (r == -ENOSPC && rbig >= 0 && (size_t)rbig < dcap)
        abort();    /* refused for room, yet it fits */

    free(dst);
    free(big);
    return 0;
}
