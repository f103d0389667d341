/* respout — what POST /v1/responses answers: the response object (built by
 * pure functions from the request, the loop's items and the agent's result)
 * and its SSE event stream (response.created ... response.completed, each
 * event with its sequence_number).
 *
 * The items of a response are gathered here as the loop runs: an mcp_call
 * item per MCP call (the agent's TOOL_START / TOOL_DONE events), message
 * items for the text, function_call items for the client's tools at the end.
 * Streamed, each item is announced as it opens (output_item.added) and
 * closes (output_item.done); not streamed, the items are the response's
 * output at the end. */
#ifndef AIPROXY_RESPOUT_H
#define AIPROXY_RESPOUT_H

#include "agent/agent.h"
#include "fcgi/core/http.h"
#include "shared/buf.h"
#include "shared/caps.h"

#include <json-c/json.h>

#define RESPOUT_ID_MAX CAP_RESP_ID

typedef struct respout {
    http_req_t *req;          /* borrowed */
    json_object *in;          /* borrowed: the client's request (echoed fields) */
    const char *model;        /* borrowed */
    char id[RESPOUT_ID_MAX];  /* resp_... */
    long long created;
    int stream;               /* write events as things happen */
    int started;              /* headers and response.created went out */
    int defer_flush;          /* _delta writes; _flush pushes */
    long long seq;            /* the next sequence_number */
    json_object *output;      /* the items so far (owned) */
    int msg_idx;              /* streamed: output index of the open message, -1 none */
    buf_t text;               /* streamed: the open message's text */
    json_object *final;       /* the last response object built (owned), for storing */
} respout_t;

/* Prepares *o (sends nothing). `in` and `model` borrowed. 0 or -ENOMEM. */
int respout_init(respout_t *o, http_req_t *req, json_object *in, const char *model,
                 long long created, int stream);

/* Frees what *o holds. */
void respout_clear(respout_t *o);

/* Writes a fresh id with `prefix` ("resp_", "msg_", ...) and 24 random
 * alphanumerics into out (RESPOUT_ID_MAX). */
void respout_new_id(char *out, const char *prefix);

/* A tool event of the loop: TOOL_START opens an mcp_call item (streamed:
 * output_item.added, mcp_call_arguments.delta/.done, mcp_call.in_progress),
 * TOOL_DONE closes it with its output or error (mcp_call.completed/.failed,
 * output_item.done). Calls the loop answered itself (no server: an unknown
 * tool) are not MCP calls and make no item. 0, -EPIPE or -ENOMEM. */
int respout_tool_event(respout_t *o, const agent_event_t *ev);

/* The finished response object for the agent's result (borrowed): status
 * completed, incomplete (finish_reason length) or failed (res->status !=
 * 200, with error); output = the items, then (when not streamed) the
 * message and function_call items of res->message. New object (o->final
 * keeps a reference too); NULL on ENOMEM. */
json_object *respout_response(respout_t *o, const agent_res_t *res);

/* The stream: start (headers, response.created, response.in_progress;
 * once), a text piece (opening a message item and its output_text part
 * first), flush, an SSE comment keep-alive, the end (closing the message,
 * the function_call items, response.completed / .incomplete), the failure
 * (the `error` event, with nothing after it, as on chat completions: the
 * SDKs raise it). All 0 or -EPIPE. */
int respout_begin(respout_t *o);
int respout_delta(respout_t *o, const char *text, size_t len);
int respout_flush(respout_t *o);
int respout_keepalive(respout_t *o);
int respout_finish(respout_t *o, const agent_res_t *res);
int respout_fail(respout_t *o, const agent_res_t *res);

#endif
