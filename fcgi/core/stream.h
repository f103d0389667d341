/* stream — one chat.completion.chunk stream (SSE) over a request.
 *
 * One id and one created for the whole stream whatever the tool rounds inside.
 * The runner starts the stream (headers and the role chunk) with stream_begin
 * once the request is accepted (the agent's READY); a failure before that is
 * still an ordinary HTTP error, one after it an error event (stream_fail).
 * The other writers start it themselves if it was not. While nothing else is
 * written, stream_keepalive sends SSE comments so that proxies do not cut an
 * idle connection. Every event is flushed to the web server at once. */
#ifndef AIPROXY_STREAM_H
#define AIPROXY_STREAM_H

#include "fcgi/core/http.h"
#include "fcgi/openai/oai.h"

typedef struct stream {
    http_req_t *req;          /* borrowed */
    const char *model;        /* borrowed: the assistant name */
    char id[OAI_ID_MAX];
    long long created;
    int include_usage;
    int started;              /* headers and the role chunk went out */
    int defer_flush;          /* stream_delta writes; stream_flush pushes */
} stream_t;

/* Prepares a stream; sends nothing. */
void stream_init(stream_t *s, http_req_t *req, const char *model, const char *id,
                 long long created, int include_usage);

/* Starts the stream now: the headers and the role chunk
 * ({"role":"assistant","content":""}, as OpenAI sends first), flushed. Does
 * nothing once started. Returns 0, or -EPIPE when the client is gone. */
int stream_begin(stream_t *s);

/* Sends the SSE comment ": keep-alive" (every SSE parser, the SDKs' among
 * them, skips comment lines), flushed. Nothing before the stream started.
 * Returns 0, or -EPIPE when the client is gone. */
int stream_keepalive(stream_t *s);

/* Sends one content piece (starting the stream first if needed). Returns 0,
 * or -EPIPE when the client is gone (then the caller stops the work). */
int stream_delta(stream_t *s, const char *text, size_t len);

/* Pushes what stream_delta wrote to the client (when s->defer_flush is set,
 * stream_delta only writes into libfcgi's buffer). Returns 0 or -EPIPE. */
int stream_flush(stream_t *s);

/* Sends a chunk whose delta is empty and which carries one more top-level
 * field key=val (borrowed): {..., "choices":[{"index":0,"delta":{},
 * "finish_reason":null}], key: val}. SDKs read it as a chunk that adds
 * nothing (tool events, core/toolev.h). Starts the stream first if needed;
 * flushes. Returns 0, or -EPIPE when the client is gone. */
int stream_extra(stream_t *s, const char *key, json_object *val);

/* Ends a successful stream: tool_calls chunk (if the message has any), the
 * finish_reason chunk, the usage chunk (include_usage), [DONE]. `message` and
 * `usage` are borrowed. Returns 0 or -EPIPE. */
int stream_finish(stream_t *s, json_object *message, const char *finish_reason,
                  json_object *usage);

/* Ends a stream that already started with the error `e` (borrowed) as
 * OpenAI does: one event `data: {"error":{"message","type","param","code"}}`
 * and nothing after it (no finish_reason, no [DONE], so no client takes the
 * answer for finished). The openai SDKs raise it as an APIError carrying
 * e's message, type, param and code. Returns 0 or -EPIPE. */
int stream_fail(stream_t *s, const aip_err_t *e);

#endif
