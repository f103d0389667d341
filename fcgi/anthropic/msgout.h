/* msgout — what POST /v1/messages answers, in Anthropic's Messages format:
 * the whole message, the error body, and the SSE event stream. The builders
 * are pure (no I/O, no clock); the stream writer writes through http.h.
 *
 * The agent's result is an OpenAI chat message (agent.h); these functions
 * translate it back at the edge: content -> a text block, tool_calls ->
 * tool_use blocks, finish_reason -> stop_reason, usage -> input/output tokens. */
#ifndef AIPROXY_MSGOUT_H
#define AIPROXY_MSGOUT_H

#include "fcgi/core/http.h"
#include "shared/caps.h"

#include <json-c/json.h>
#include <stddef.h>

#define MSGOUT_ID_MAX CAP_RESP_ID

/* Writes a fresh "msg_" id (24 random alphanumerics, as oai_new_id). */
void msgout_new_id(char out[MSGOUT_ID_MAX]);

/* The Anthropic stop_reason for an OpenAI finish_reason: stop -> end_turn,
 * length -> max_tokens, tool_calls -> tool_use, content_filter -> refusal;
 * tool_use whenever `message` (borrowed, may be NULL) carries tool_calls;
 * end_turn for anything else. */
const char *msgout_stop_reason(json_object *message, const char *finish_reason);

/* A new {input_tokens, output_tokens} from OpenAI usage (borrowed; NULL or
 * missing counts give 0). NULL on ENOMEM. */
json_object *msgout_usage(json_object *usage);

/* A new Messages response {id, type: "message", role, model, content,
 * stop_reason, stop_sequence: null, usage}. `message` and `usage` are
 * borrowed. content: a text block when the text is not empty, then one
 * tool_use block per tool call ({id, name, input}; arguments that are not a
 * JSON object give {}). NULL on ENOMEM. */
json_object *msgout_message(const char *id, const char *model, json_object *message,
                            const char *finish_reason, json_object *usage);

/* The Anthropic error type for an HTTP status (anthv_error_type, the one
 * table in agent/anthvocab.c): 400/422 invalid_request_error,
 * 401 authentication_error, 403 permission_error, 404 not_found_error, 413
 * request_too_large, 429 rate_limit_error, 504 timeout_error, 529
 * overloaded_error, other 5xx api_error, other 4xx invalid_request_error. */
const char *msgout_error_type(int status);

/* A new {"type":"error","error":{"type","message"}}; `type` NULL means
 * msgout_error_type(status). NULL on ENOMEM. */
json_object *msgout_error_json(int status, const char *type, const char *message);

/* Sends an Anthropic error answer with `status` (`type` as above). Returns as
 * http_send. */
int msgout_send_error(http_req_t *req, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* One Messages SSE stream over a request. The runner starts it (headers and
 * message_start) with msgout_stream_begin once the request is accepted (the
 * agent's READY), so a failure before that is an ordinary HTTP error and one
 * after it an `error` event; the other writers start it themselves if it was
 * not. While nothing else is written, msgout_stream_ping sends Anthropic's
 * `ping` events so that proxies do not cut an idle connection. One id for the
 * whole stream whatever the tool rounds inside. */
typedef struct msgout_stream {
    http_req_t *req;          /* borrowed */
    const char *model;        /* borrowed: the assistant name */
    char id[MSGOUT_ID_MAX];
    int started;              /* headers and message_start went out */
    int text_open;            /* the text block (index 0) is open */
    int nblocks;              /* content blocks opened so far */
    int defer_flush;          /* _delta writes; _flush pushes */
} msgout_stream_t;

/* Prepares a stream; sends nothing. */
void msgout_stream_init(msgout_stream_t *s, http_req_t *req, const char *model, const char *id);

/* Starts the stream now: headers and message_start, flushed. Does nothing
 * once started. Returns 0, or -EPIPE when the client is gone. */
int msgout_stream_begin(msgout_stream_t *s);

/* Sends `event: ping` with data {"type": "ping"}, as Anthropic does while a
 * stream is idle (the SDKs skip it), flushed. Nothing before the stream
 * started. Returns 0, or -EPIPE when the client is gone. */
int msgout_stream_ping(msgout_stream_t *s);

/* Sends a text piece as a text_delta (starting the stream and the text block
 * first if needed). Returns 0, or -EPIPE when the client is gone. */
int msgout_stream_delta(msgout_stream_t *s, const char *text, size_t len);

/* Pushes what _delta wrote (when defer_flush is set). Returns 0 or -EPIPE. */
int msgout_stream_flush(msgout_stream_t *s);

/* Sends an event of our own, "event: <type>\ndata: {"type": <type>, key:
 * val}" (val borrowed), starting the stream first if needed; flushes. The
 * Anthropic SDKs pass unknown event types through and their MessageStream
 * ignores them (tool events, core/toolev.h). Returns 0 or -EPIPE. */
int msgout_stream_extra(msgout_stream_t *s, const char *type, const char *key,
                        json_object *val);

/* Ends a successful stream: content_block_stop of the text block, a tool_use
 * block per tool call (start, one input_json_delta with the whole arguments,
 * stop), message_delta (stop_reason, usage), message_stop. `message` and
 * `usage` borrowed. Returns 0 or -EPIPE. */
int msgout_stream_finish(msgout_stream_t *s, json_object *message, const char *finish_reason,
                         json_object *usage);

/* Ends a stream that already started with an `error` event
 * {"type":"error","error":{type, message}}; nothing follows it. Returns 0 or
 * -EPIPE. */
int msgout_stream_fail(msgout_stream_t *s, int status, const char *type, const char *msg);

#endif
