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

/* Runs turn->tool_calls (every name ours or unknown) concurrently with one
 * mcpc_call_many, then appends to req.messages the assistant message with
 * the calls and one tool message per call, in order. Unknown names and
 * invalid JSON arguments become "[tool error] ..." results, nothing called.
 * Calls lacking an id get one ("call_<round>_<i>"). Returns 0, TR_REPEATED
 * (same, and the loop should withdraw tools), or a negative code with *e
 * the error to answer: -ECONNABORTED when the client left (499 client_gone),
 * others as mcpc_call_many (503 broker gone, Redis unreachable) or 500. */
int tr_run(mcpc_t *mcpc, const tn_map_t *map, json_object *req, be_turn_t *turn, int round,
           int timeout_ms, int (*alive)(void *ud), void *ud, tr_history_t *hist,
           aip_err_t *e);

#endif
