/* reqid — request ids: the one string that follows a request through the
 * responder's answer and log, the upstream LLM call, the broker and the MCP
 * server (docs/observability.md, "Request ids and logs").
 *
 * A client may bring its own (X-Request-Id); it is kept only when it is
 * 1..CAP_REQUEST_ID characters of [A-Za-z0-9._:@/+=-], so it can go into a
 * header, a log line and a JSON string as it is. Otherwise one is made:
 * "req_" + 24 characters of [A-Za-z0-9] from shared/rid's per-thread
 * keystream (no system call per id). Pure: no I/O. */
#ifndef AIPROXY_REQID_H
#define AIPROXY_REQID_H

#include "shared/caps.h"

#include <stddef.h>

#define REQID_MAX CAP_REQUEST_ID       /* characters, NUL not counted */
#define REQID_PREFIX "req_"
#define REQID_RANDOM 24                /* random characters after the prefix */
/* The key of an MCP tools/call's params._meta that carries the id to the MCP
 * server (MCP allows a reverse-DNS prefix on _meta keys). */
#define REQID_MCP_META "io.aiproxy/request_id"

/* 1 when s (NUL-terminated) is an id we pass on: 1..REQID_MAX characters,
 * each of [A-Za-z0-9._:@/+=-]; 0 otherwise (NULL, empty, too long, any other
 * byte: a space, a quote, CR, LF, a non-ASCII byte). */
int reqid_valid(const char *s);

/* Writes a new id ("req_" + REQID_RANDOM alphanumerics) and a NUL into
 * out[REQID_MAX + 1]. Never fails. */
void reqid_new(char out[REQID_MAX + 1]);

/* The id of a request whose client sent `client` (NULL when it sent none):
 * a copy of it when reqid_valid, else a new one. Writes out[REQID_MAX + 1].
 * Returns 1 when the client's was kept, 0 when one was made. */
int reqid_take(const char *client, char out[REQID_MAX + 1]);

#endif
