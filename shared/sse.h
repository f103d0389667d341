/* sse — incremental Server-Sent Events parser (WHATWG rules). No I/O.
 *
 * Feed it bytes as they arrive, split anywhere; it calls back once per
 * complete event. Used for upstream LLM streams (agent/) and for the MCP SSE
 * and streamable-HTTP transports (mcp-broker/). Handles \n, \r\n and \r line
 * ends, comments (keep-alives), multi-line data, `event`, `id`, `retry`. */
#ifndef AIPROXY_SSE_H
#define AIPROXY_SSE_H

#include <stddef.h>

typedef struct sse_parser sse_parser_t;

/* One event. `event` is "message" when the stream named none; `data` is the
 * joined data lines (NUL-terminated, `len` bytes); `id` is the last event id
 * seen ("" if none). All three are valid only during the callback. Return 0 to
 * go on, anything else to stop: sse_feed then returns that value. */
typedef int (*sse_event_cb)(void *ud, const char *event, const char *data, size_t len,
                            const char *id);

/* A parser that refuses events larger than `max_event` bytes. NULL on ENOMEM. */
sse_parser_t *sse_new(size_t max_event, sse_event_cb cb, void *ud);

/* Parses n bytes. Returns 0, the callback's non-zero return, or -ENOSPC when an
 * event passes the cap (the parser is then unusable). */
int sse_feed(sse_parser_t *p, const char *data, size_t n);

/* The last `retry:` value in milliseconds, or -1 if the stream sent none. */
long sse_retry_ms(const sse_parser_t *p);

/* Forgets any partial event and the event id (for a fresh stream). */
void sse_reset(sse_parser_t *p);

void sse_free(sse_parser_t *p);

#endif
