/* fuzz_rconn — shared/rconn.h: rconn_parse on arbitrary REDIS_URL text.
 *
 * Checks: a refusal says why and leaves *out alone; an accepted URL gives
 * terminated strings, a port and a database in range, and either a host or a
 * socket path, never both, or (redis+sentinel://) neither but 1..CAP Sentinels. */
#include "shared/rconn.h"
#include "tests/fuzz/fuzz_split.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rconn_addr_t a, untouched;
    char err[256];
    char *url = fuzz_strndup(data, size);

    memset(&a, 0x5a, sizeof a);
    untouched = a;
    err[0] = '\0';
    if (rconn_parse(url, &a, err, sizeof err) != 0) {
        if (!err[0] || memcmp(&a, &untouched, sizeof a) != 0)
            abort();
    } else {
        if (strnlen(a.host, sizeof a.host) == sizeof a.host ||
            strnlen(a.path, sizeof a.path) == sizeof a.path ||
            strnlen(a.user, sizeof a.user) == sizeof a.user ||
            strnlen(a.password, sizeof a.password) == sizeof a.password)
            abort();
        if (a.port < 0 || a.port > 65535 || a.db < 0 || a.db > 100000)
            abort();
        if (a.master[0]) {  /* Sentinel: no host of its own, 1..CAP Sentinels */
            if (a.host[0] || a.path[0] || a.nsentinels < 1 || a.nsentinels > CAP_REDIS_SENTINELS ||
                strnlen(a.master, sizeof a.master) == sizeof a.master ||
                strnlen(a.sentinel_password, sizeof a.sentinel_password) ==
                    sizeof a.sentinel_password)
                abort();
            for (int i = 0; i < a.nsentinels; i++)
                if (!a.sentinels[i].host[0] ||
                    strnlen(a.sentinels[i].host, sizeof a.sentinels[i].host) ==
                        sizeof a.sentinels[i].host ||
                    a.sentinels[i].port < 1 || a.sentinels[i].port > 65535)
                    abort();
        } else if (!a.host[0] == !a.path[0] || a.nsentinels) {
            abort();    /* exactly one of TCP and unix socket */
        }
    }
    free(url);
    return 0;
}
