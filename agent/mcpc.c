/* STUB: replaced by the broker client (issue 3). */
#include "agent/mcpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

struct mcpc { int unused; };

mcpc_t *mcpc_new(const char *url, const char *prefix)
{
    (void)url;
    (void)prefix;
    return calloc(1, sizeof(struct mcpc));
}

void mcpc_free(mcpc_t *c)
{
    free(c);
}

int mcpc_tools(mcpc_t *c, const char *server, int timeout_ms, json_object **tools, char *err,
               size_t errlen)
{
    (void)c; (void)server; (void)timeout_ms;
    *tools = NULL;
    snprintf(err, errlen, "mcp-broker is not running");
    return -EHOSTDOWN;
}

int mcpc_call_many(mcpc_t *c, mcpc_call_t *calls, size_t n, int timeout_ms,
                   int (*alive)(void *ud), void *ud, char *err, size_t errlen)
{
    (void)c; (void)calls; (void)n; (void)timeout_ms; (void)alive; (void)ud;
    snprintf(err, errlen, "mcp-broker is not running");
    return -EHOSTDOWN;
}

void mcpc_calls_clear(mcpc_call_t *calls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(calls[i].text);
        calls[i].text = NULL;
    }
}

char *mcpc_flatten(json_object *result)
{
    (void)result;
    return NULL;
}
