/* reqinfo — what one request was and did: filled as it goes (the core: the
 * route, the clock, the bytes out; the auth chain: who; the completion runner
 * and /mcp: the assistant, tokens, tool calls) and read once it is answered
 * by the route table's after-hooks (routes_after: usage accounting, limits,
 * metrics) and the access log. Plain data inside http_req_t: strings are
 * arena memory or static, and never a secret. */
#ifndef AIPROXY_REQINFO_H
#define AIPROXY_REQINFO_H

#include "shared/arena.h"
#include "shared/caps.h"

#include <stddef.h>

#define REQINFO_SERVERS CAP_REQINFO_SERVERS

/* The tool calls of one MCP server in this request. */
typedef struct reqinfo_tool {
    const char *server;       /* arena copy */
    unsigned calls, errors;   /* errors: tool errors, timeouts, server down */
    long long us;             /* summed call time */
} reqinfo_tool_t;

typedef struct reqinfo {
    long long t0_us;          /* CLOCK_MONOTONIC µs when the request was accepted */
    char id[CAP_REQUEST_ID + 1];  /* the request id (shared/reqid.h): the client's
                               * X-Request-Id when valid, else made; "" before */
    const char *route;        /* the matched route's pattern ("/v1/chat/completions",
                               * "/mcp/{assistant}"); NULL when no route matched */
    /* Who, for logs and accounting: "key_<id>" (a managed key), "static:<8 hex
     * of the key's SHA-256>", "apiman:<...>"; NULL when /v1 is open or the
     * request was not authenticated. Never the secret. */
    const char *principal;
    void *auth;               /* the auth chain's own record of the caller (fcgi/auth) */
    const char *assistant;    /* the assistant named, once the registry had it */
    const char *backend;
    int stream;
    long long prompt_tokens, completion_tokens;  /* as the upstream reported, all turns */
    int upstream_turns;
    long long upstream_us;    /* time spent in upstream calls */
    long long ttft_us;        /* streams: first content byte, from t0_us; 0 when none */
    int tool_rounds;
    unsigned tool_calls, tool_errors;
    long long tools_us;       /* summed tool call time */
    reqinfo_tool_t tools[REQINFO_SERVERS];  /* by server, first come; a server past the
                                             * cap is counted in tool_calls only */
    size_t ntools;
    size_t bytes_out;         /* body and header bytes written */
    int failed;               /* the answer was an error (a status >= 400, or an error
                               * event in a stream that had started) */
} reqinfo_t;

/* Counts one finished tool call of `server` (copied into `a` the first time
 * it is seen). Never fails: when memory or the cap runs out the call counts
 * in the totals only. */
void reqinfo_tool(reqinfo_t *ri, arena_t *a, const char *server, int is_error, long long us);

/* CLOCK_MONOTONIC in µs. */
long long reqinfo_now_us(void);

#endif
