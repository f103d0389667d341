/* ondemand — the scripts and small parsers behind a broker started on demand
 * (see ondemand.h). */
#include "mcp-broker/ondemand.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

const char ondemand_claim_lua[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur == false or cur == ARGV[1] or cur == ARGV[2] then\n"
    "  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1\n"
    "end\n"
    "return 0\n";

const char ondemand_release_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";

int ondemand_parse_idle(const char *s, int *out)
{
    char *end;
    long v;

    if (!s || !*s)
        return -EINVAL;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < 0 || v > ONDEMAND_IDLE_MAX_S)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

int ondemand_record(char *out, size_t n, const char *id, const char *token)
{
    int w = snprintf(out, n, "{\"pid\":%d,\"broker\":\"%s\",\"token\":\"%s\"}", (int)getpid(), id,
                     token);
    return w < 0 || (size_t)w >= n ? -ENOSPC : 0;
}
