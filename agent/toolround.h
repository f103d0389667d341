/* toolround — one round of the tool loop: run the MCP tool calls of a model
 * turn through the broker and append the assistant message and the tool
 * results to the conversation. Also the helpers that sort a turn's calls into
 * ours and the client's. Internal to agent/. */
#ifndef AIPROXY_TOOLROUND_H
#define AIPROXY_TOOLROUND_H

#include "agent/backend.h"
#include "agent/mcpc.h"
#include "agent/toolname.h"
#include "shared/err.h"

#include <json-c/json.h>

/* tr_run's return when a call (name + arguments) came in 3 consecutive rounds. */
#define TR_REPEATED 1

/* The calls (as "name\narguments" strings) of the last two rounds. */
typedef struct tr_history {
    json_object *prev[2];   /* [0] last round, [1] the one before; NULL at first */
} tr_history_t;

void tr_history_init(tr_history_t *h);
void tr_history_clear(tr_history_t *h);


/* 1 when some call of `calls` names a client-supplied tool (a reserved name). */
int tr_wants_client(const tn_map_t *map, json_object *calls);

/* A new array of the calls of `calls` that name client tools. NULL on ENOMEM. */
json_object *tr_client_calls(const tn_map_t *map, json_object *calls);

/* agent.h's event (declared, not included: agent.c uses this module, and the
 * layering keeps that one-way; toolround.c reads the definition). */
struct agent_event;

/* What a round tells the loop's caller while it runs; every member may be
 * NULL (agent_req_t's alive, on_event and ud, passed through). */
typedef struct tr_hooks {
    int (*alive)(void *ud);   /* polled while the calls run; 0: client gone */
    /* AGENT_EV_TOOL_START / _PROGRESS / _DONE; non-zero: client gone */
    int (*on_event)(void *ud, const struct agent_event *ev);
    void *ud;
    /* Not a hook: how results reach the model. 0: as text (images are
     * placeholders); else a result with images becomes a tool message whose
     * content is OpenAI parts (text and image_url data URLs, mcpc_parts),
     * each image up to this many bytes of base64 (the assistant's
     * tool_images; docs/agent.md, "Tool results the model sees"). */
    size_t image_cap;
    /* sampling/createMessage from the MCP servers of the round's calls is
     * served with this (agent/sampling.h); NULL refuses it */
    const struct smp_ctx *sampling;
    /* Not a hook: the request id each call carries to the broker, or NULL. */
    const char *request_id;
} tr_hooks_t;

/* Runs turn->tool_calls (every name ours or unknown) concurrently with one
 * mcpc_call_many, then appends to req.messages the assistant message with
 * the calls and one tool message per call, in order (content a string, or
 * parts when hooks->image_cap lets images through). Unknown names and
 * invalid JSON arguments become "[tool error] ..." results, nothing called.
 * Calls lacking an id get one ("call_<round>_<i>"). Events (hooks->on_event):
 * TOOL_START for every call in order before any goes out (server and tool
 * NULL for an unknown name), TOOL_DONE at once for the ones answered here
 * (is_error, ms 0), then TOOL_PROGRESS and TOOL_DONE as the broker reports
 * them. Returns 0, TR_REPEATED (same, and the loop should withdraw tools), or
 * a negative code with *e the error to answer: -ECONNABORTED when the client
 * left (a hook said so; 499 client_gone), others as mcpc_call_many (503
 * broker gone, Redis unreachable) or 500. `hooks` may be NULL. */
int tr_run(mcpc_t *mcpc, const tn_map_t *map, json_object *req, be_turn_t *turn, int round,
           int timeout_ms, const tr_hooks_t *hooks, tr_history_t *hist, aip_err_t *e);

#endif
