/* request — the canonical upstream request (OpenAI chat completions shape)
 * built from an assistant, the client's body and the MCP tool catalogs.
 * Pure: no I/O. Backends (backend.h) translate it to their dialect. */
#ifndef AIPROXY_REQUEST_H
#define AIPROXY_REQUEST_H

#include "agent/toolname.h"
#include "shared/err.h"

#include <json-c/json.h>
#include <stddef.h>

/* One MCP server's tool catalog: an array of {name, description, inputSchema, ...}
 * (as mcpc_tools gives it). Borrowed. */
typedef struct rq_catalog {
    const char *server;
    json_object *tools;
    /* borrowed, NULL none: a second allow/deny over this catalog (the
     * caller's key policy, agent_req_t.tool_policy), applied after the
     * assistant's own */
    json_object *policy;
} rq_catalog_t;

/* Builds the first turn's request into *out (caller owns):
 *  - model = assistant.model;
 *  - messages = the client's, with assistant.system_prompt prepended as a
 *    system message unless the first message is already system or developer;
 *  - sampling: the assistant's temperature, top_p, max_tokens, overridden by
 *    the client's (and the client's pass-through fields, see request.c);
 *  - assistant.extra_body merged last, shallow;
 *  - tools: every catalog tool the assistant's tools.allow/deny let through
 *    (shared/toolsel.h) as an OpenAI function tool named through `map`
 *    (client tools' names are reserved in `map` first, so a clash renames
 *    ours), followed by the client's tools untouched;
 *  - stream: true and stream_options.include_usage when `stream`.
 * Messages of the client are shared by reference, never modified.
 * Returns 0, or -EINVAL / -E2BIG / -ENOMEM with *e the error to answer: 400
 * naming the client's field at fault (e->param), 500 assistant_misconfigured
 * when the assistant `name` itself is unusable, 500 out of memory; for the
 * tool cap (tsel_cap) -E2BIG with 502 too_many_tools when the assistant's
 * own tools pass it, 400 too_many_tools param "tools" when the client's
 * tools do not fit beside them. */
int rq_build(const char *name, json_object *assistant, json_object *body,
             const rq_catalog_t *cats, size_t ncats, tn_map_t *map, int stream,
             json_object **out, aip_err_t *e);

/* Removes what offers tools (tools, tool_choice, parallel_tool_calls) from
 * `req`, for the last turn of a loop that must end with an answer. */
void rq_drop_tools(json_object *req);

#endif
