/* msgreq — parse, validate and translate a POST /v1/messages body (Anthropic's
 * Messages API) into the canonical OpenAI chat body the agent takes, with no
 * I/O. docs/messages.md lists every rule.
 *
 * The agent loop speaks OpenAI chat only, so Anthropic requests are translated
 * at the edge: system -> a system message, content blocks -> parts, tool_use /
 * tool_result -> tool_calls / tool messages, tools -> function tools. What the
 * OpenAI dialect cannot carry (top_k, thinking, server tools' settings) is
 * dropped or refused with a 400 naming the field. */
#ifndef AIPROXY_MSGREQ_H
#define AIPROXY_MSGREQ_H

#include "shared/err.h"

#include <json-c/json.h>
#include <stddef.h>

typedef struct msgreq {
    json_object *body;      /* the canonical OpenAI chat body (owned: msgreq_clear) */
    const char *model;      /* borrowed from body: the assistant's name */
    int stream;             /* "stream": true */
} msgreq_t;

/* Parses `len` bytes of JSON (nesting capped), validates them as a Messages
 * request and translates them. On success returns 0 and fills *out (call
 * msgreq_clear). On a bad body returns -EINVAL with *err the 400 to answer
 * (err->param the offending field, e.g. "messages[1].content[0].source")
 * and *out empty; -ENOMEM on allocation failure. */
int msgreq_parse(const char *text, size_t len, msgreq_t *out, aip_err_t *err);

/* The translation alone, on a parsed body (borrowed; never modified). On
 * success returns 0 and *out is a new object the caller owns; else -EINVAL
 * (err filled) or -ENOMEM, *out NULL. */
int msgreq_translate(json_object *in, json_object **out, aip_err_t *err);

/* Releases out->body and empties *out. */
void msgreq_clear(msgreq_t *out);

/* Internal, shared by msgreq.c and msgreq_msgs.c. */
/* Fills *err and returns -EINVAL. */
int msgreq__fail(aip_err_t *err, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* An optional field of an object: absent, null or `o` not an object give NULL. */
json_object *msgreq__opt(json_object *o, const char *key);
/* A field that is a non-empty string, else NULL. */
const char *msgreq__str(json_object *o, const char *key);
/* -EINVAL with err naming `param` when o[key] is a string with a NUL inside,
 * which a name or an id must not hold (as a C string it would be cut:
 * "plain\u0000evil" served as plain); else 0. */
int msgreq__no_nul(json_object *o, const char *key, const char *param, aip_err_t *err);
/* Adds key=val to o, consuming val; -ENOMEM when val is NULL (a failed
 * constructor) or the add fails. */
int msgreq__set(json_object *o, const char *key, json_object *val);
/* Appends the OpenAI messages for in's "messages" to the array `out`.
 * 0, -EINVAL (err filled) or -ENOMEM. */
int msgreq__messages(json_object *in, json_object *out, aip_err_t *err);

#endif
