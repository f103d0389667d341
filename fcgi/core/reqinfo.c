/* reqinfo — the request's tally (reqinfo.h). */
#include "fcgi/core/reqinfo.h"

#include <string.h>
#include <time.h>

long long reqinfo_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void reqinfo_tool(reqinfo_t *ri, arena_t *a, const char *server, int is_error, long long us)
{
    reqinfo_tool_t *t = NULL;

    ri->tool_calls++;
    ri->tool_errors += is_error ? 1u : 0u;
    ri->tools_us += us;
    if (!server)
        return;
    for (size_t i = 0; i < ri->ntools; i++)
        if (strcmp(ri->tools[i].server, server) == 0) {
            t = &ri->tools[i];
            break;
        }
    if (!t) {
        char *copy;
        if (ri->ntools >= REQINFO_SERVERS || !(copy = arena_strdup(a, server)))
            return;
        t = &ri->tools[ri->ntools++];
        t->server = copy;
    }
    t->calls++;
    t->errors += is_error ? 1u : 0u;
    t->us += us;
}
