/* fuzz_utf8 — shared/utf8.h: what we echo stays valid UTF-8.
 *
 * The first byte picks the room given to utf8_clean. Checks: the result is
 * terminated, fits, is valid UTF-8; valid input comes back unchanged when it
 * fits; cleaning twice changes nothing; utf8_valid agrees with "clean is a
 * no-op". */
#include "shared/utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t room, len, len2, n;
    const char *s;
    char *out, *again;

    if (size < 1)
        return 0;
    room = (size_t)data[0] + 1;
    s = (const char *)data + 1;
    n = size - 1;
    out = malloc(room);
    again = malloc(room);
    if (!out || !again)
        abort();
    len = utf8_clean(s, n, out, room);
    if (len >= room || out[len] != '\0' || !utf8_valid(out, len))
        abort();
    len2 = utf8_clean(out, len, again, room);
    if (len2 != len || memcmp(out, again, len) != 0)
        abort();
    if (utf8_valid(s, n) && n < room && (len != n || memcmp(out, s, n) != 0))
        abort();
    if (!utf8_valid(s, n) && n < room && len == n && memcmp(out, s, n) == 0)
        abort();
    free(out);
    free(again);
    return 0;
}
