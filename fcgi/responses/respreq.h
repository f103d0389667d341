/* respreq — parse, validate and translate a POST /v1/responses body (the
 * OpenAI Responses API) into the canonical OpenAI chat body the agent takes,
 * with no I/O. docs/responses.md lists every rule.
 *
 * input (a string or items) -> messages, instructions -> a system message
 * after the assistant's own prompt, function tools -> chat function tools,
 * max_output_tokens -> max_tokens, text.format -> response_format,
 * reasoning.effort -> reasoning_effort. A client `type: "mcp"` tool (and
 * every hosted tool: web_search, file_search, ...) is refused with a 400:
 * the assistant's MCP tools are added server-side. */
#ifndef AIPROXY_RESPREQ_H
#define AIPROXY_RESPREQ_H

#include "shared/err.h"

#include <json-c/json.h>
#include <stddef.h>

typedef struct respreq {
    json_object *in;        /* the client's body (owned) */
    json_object *body;      /* the canonical chat body (owned) */
    const char *model;      /* borrowed from in */
    const char *previous;   /* previous_response_id or NULL (borrowed from in) */
    int stream;             /* "stream": true */
    int store;              /* "store" (default true) */
    int has_instructions;   /* body's messages[0] is the instructions (not stored) */
} respreq_t;

/* Parses `len` bytes of JSON (nesting capped) and checks the top-level
 * fields (model, stream, store, previous_response_id); respreq_translate
 * builds the body. 0 and *out filled (call respreq_clear); -EINVAL with *err
 * the 400 to answer (err->param the field); -ENOMEM. */
int respreq_parse(const char *text, size_t len, respreq_t *out, aip_err_t *err);

/* Builds out->body from out->in, with `history` (borrowed chat messages, may
 * be NULL) before the input. 0, -EINVAL (err filled) or -ENOMEM. */
int respreq_translate(respreq_t *out, json_object *history, aip_err_t *err);

/* Releases everything and empties *out. */
void respreq_clear(respreq_t *out);

#endif
