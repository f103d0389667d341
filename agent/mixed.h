/* mixed — model turns that call MCP tools (ours) and client tools at once.
 *
 * The turn's MCP calls run now; the whole round (every call of the turn and
 * our calls' results) is kept in Redis for a while, and the client gets only
 * its own calls, under ids we make ("call_mx<token>_<k>", the token 96 random
 * bits naming the stored round). When the client comes back with its
 * results, the assistant message it holds (its calls only) gets the stored
 * calls back and our results are put before the client's, so the upstream
 * sees the conversation it produced: every call has its result. A round that
 * is gone (TTL, Redis lost) leaves the client's conversation as it is: valid
 * by itself, the model just never sees its MCP calls. See docs/agent.md
 * "Mixed turns". Internal to agent/. */
#ifndef AIPROXY_MIXED_H
#define AIPROXY_MIXED_H

#include "agent/backend.h"
#include "agent/mcpc.h"
#include "agent/toolname.h"
#include "agent/toolround.h"
#include "shared/err.h"

#include <json-c/json.h>

/* Ids we give the client's calls of a mixed turn: prefix, token, "_<k>". */
#define MX_ID_PREFIX "call_mx"
#define MX_TOKEN_LEN 24           /* hex digits: 96 random bits */
#define MX_TTL_DEFAULT 3600       /* seconds; AIPROXY_MIXED_TTL_S */
#define MX_TTL_MAX 604800         /* a week */

/* 1 when `calls` names both client-supplied tools and others (ours, or
 * unknown names, which become tool errors): a mixed turn. */
int mx_is_mixed(const tn_map_t *map, json_object *calls);

/* Runs the turn's calls that are not the client's (tr_run, on a scratch
 * conversation), renames the client's calls in turn->tool_calls to our ids,
 * and stores the round for `ttl_s` seconds under a key made of a hash of
 * `assistant_name` and the token. The caller then returns the client's calls
 * (tr_client_calls) to the client. A round that cannot be stored (Redis
 * lost, larger than CAP_MX_ROUND) is logged, not an error: the follow-up
 * falls back. Returns 0, or tr_run's negative code with *e the error to
 * answer (client gone, broker gone). */
int mx_run(mcpc_t *mcpc, const tn_map_t *map, const char *assistant_name, be_turn_t *turn,
           int round, int timeout_ms, int ttl_s, const tr_hooks_t *hooks,
           tr_history_t *hist, aip_err_t *e);

/* Pure: a new array (caller owns; NULL on ENOMEM) of the messages `msgs`
 * with each assistant message whose calls carry the token of a round in
 * `rounds` (an object token -> {tool_calls, results}) given the round's
 * calls, and followed by the round's results. Other messages are shared by
 * reference, none is modified. A round that does not hold every call of the
 * client's message is not used. */
json_object *mx_splice(json_object *msgs, json_object *rounds);

/* Reads the stored rounds the history of `body` refers to (at most
 * CAP_MX_ROUNDS, the latest) and sets *out to a shallow copy of body whose
 * messages are spliced (caller owns), or NULL when nothing was re-inserted
 * (use body as it is). Missing rounds and Redis failures are logged and
 * fall back to the client's messages. Returns 0, or -ENOMEM with *e. */
int mx_restore(mcpc_t *mcpc, const char *assistant_name, json_object *body,
               json_object **out, aip_err_t *e);

/* The round TTL in seconds: AIPROXY_MIXED_TTL_S (1..MX_TTL_MAX), else
 * MX_TTL_DEFAULT (an invalid value is logged). */
int mx_ttl(void);

#endif
