/* sampling — MCP sampling/createMessage served by the calling assistant's
 * own backend: an MCP server running one of the assistant's tool calls asks
 * for an LLM completion, and gets one turn of the assistant's model, no
 * tools (docs/broker-protocol.md, "Sampling"). Internal to agent/. */
#ifndef AIPROXY_SAMPLING_H
#define AIPROXY_SAMPLING_H

#include "agent/backend.h"
#include "agent/upstream.h"

#include <json-c/json.h>
#include <stddef.h>

/* What answering needs: the assistant's backend and the agent's upstream
 * handle. All borrowed for the request's time. */
typedef struct smp_ctx {
    up_t *up;
    const be_ops_t *be;
    const char *backend_name;
    json_object *backend;        /* registry entry of the assistant's backend */
    json_object *assistant;      /* registry entry: model, allow_sampling, max_tokens */
    const char *assistant_name;
    int (*alive)(void *ud);      /* may be NULL */
    void *ud;
    const char *request_id;      /* NULL, or the upstream's X-Request-Id */
} smp_ctx_t;

/* The canonical (OpenAI chat) request for createMessage `params` on
 * `assistant`: its model (modelPreferences are hints, and the assistant's
 * model is the one it may use), systemPrompt as a system message, each
 * message's text (an image or audio block becomes a placeholder line),
 * max_tokens = maxTokens (at most the assistant's max_tokens when it sets
 * one), temperature, stopSequences as stop; no tools, not streamed. Returns
 * 0 with *req (caller owns), -EINVAL with the reason in err (bad params), or
 * -ENOMEM. */
int smp_request(json_object *assistant, json_object *params, json_object **req, char *err,
                size_t errlen);

/* 1 unless the assistant says allow_sampling: false. */
int smp_allowed(json_object *assistant);

/* Answers createMessage `params` (borrowed) with one upstream turn: 0 with
 * *result a new {role:"assistant", content:{type:"text",text}, model,
 * stopReason} (endTurn, maxTokens, or the upstream's reason), or a negative
 * code with the reason in err (refused by allow_sampling, bad params, the
 * upstream failed); -ECONNABORTED when the client went away meanwhile.
 * left_ms is the tool call's time left: a turn is not started with none. */
int smp_answer(const smp_ctx_t *x, json_object *params, long long left_ms, json_object **result,
               char *err, size_t errlen);

#endif
