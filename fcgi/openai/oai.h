/* oai — the OpenAI response objects the responder sends, built by pure
 * functions (no I/O, no clock: the caller passes id and created) so unit tests
 * check them field by field. */
#ifndef AIPROXY_OAI_H
#define AIPROXY_OAI_H

#include "shared/buf.h"
#include "shared/caps.h"

#include <json-c/json.h>
#include <stddef.h>

#define OAI_ID_MAX CAP_RESP_ID

/* Writes a fresh "chatcmpl-" id (24 random alphanumerics from rid_alnum, so
 * ids are unique across threads and processes). */
void oai_new_id(char out[OAI_ID_MAX]);

/* The finish_reason to report: "tool_calls" when `message` carries a
 * non-empty tool_calls array, else `finish_reason` ("stop" when empty). */
const char *oai_finish_reason(json_object *message, const char *finish_reason);

/* A new chat.completion object. `message` and `usage` are borrowed (the
 * result takes its own references); usage NULL gives null. The message's
 * role is set to "assistant" and its content to null when absent. NULL on
 * ENOMEM. */
json_object *oai_completion(const char *id, long long created, const char *model,
                            json_object *message, const char *finish_reason,
                            json_object *usage);

/* Appends what json_object_to_json_string_ext(oai_completion(...),
 * JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) writes, byte for
 * byte, without building the object: when `message` is already in its
 * answer's form (first member "role": "assistant", a "content" member: the
 * agent's). 0; -EAGAIN when it is not (use oai_completion); or as
 * buf_append. */
int oai_completion_text(buf_t *out, const char *id, long long created, const char *model,
                        json_object *message, const char *finish_reason, json_object *usage);

/* A new chat.completion.chunk with one choice. `delta` is consumed (NULL gives
 * {}); finish_reason NULL gives null; `usage_null` adds "usage": null (set on
 * every chunk when the client asked for include_usage). NULL on ENOMEM. */
json_object *oai_chunk(const char *id, long long created, const char *model,
                       json_object *delta, const char *finish_reason, int usage_null);

/* The include_usage chunk: choices [] and `usage` (borrowed; NULL gives zeros). */
json_object *oai_usage_chunk(const char *id, long long created, const char *model,
                             json_object *usage);

/* A delta carrying the message's tool_calls for a stream: each with index, id,
 * type and function{name, arguments}. NULL when the message has none. */
json_object *oai_tool_calls_delta(json_object *message);

/* Appends "data: <json>\n\n" to `out`. Returns 0 or as buf_append. */
int oai_sse_event(buf_t *out, json_object *obj);

/* One entry of GET /v1/models for assistant `name` (borrowed registry entry). */
json_object *oai_model(const char *name, json_object *assistant, long long created);

#endif
