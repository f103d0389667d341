/* anthvocab — the Anthropic Messages API vocabulary, once: the stop reasons,
 * the content block types and the error types with their HTTP status and
 * their OpenAI counterpart. Both sides use it: the backend
 * (agent/anthropic_*.c, Anthropic -> the loop's OpenAI vocabulary) and the
 * /v1/messages surface (fcgi/anthropic/, the loop's answer -> Anthropic).
 * A new stop reason or error type is one row in anthvocab.c. No I/O, no
 * state. */
#ifndef AIPROXY_ANTHVOCAB_H
#define AIPROXY_ANTHVOCAB_H

/* Content block and delta types. */
#define ANTHV_BLOCK_TEXT        "text"
#define ANTHV_BLOCK_TOOL_USE    "tool_use"
#define ANTHV_BLOCK_TOOL_RESULT "tool_result"
#define ANTHV_BLOCK_IMAGE       "image"
#define ANTHV_DELTA_TEXT        "text_delta"
#define ANTHV_DELTA_INPUT_JSON  "input_json_delta"

/* The OpenAI finish_reason for an Anthropic stop_reason; "" for NULL or one
 * we do not know (the caller then leaves finish_reason as it was). */
const char *anthv_finish_reason(const char *stop_reason);

/* The Anthropic stop_reason for an OpenAI finish_reason: the first stop
 * reason of the table that maps to it ("length" -> "max_tokens"); "end_turn"
 * for NULL or one we do not know. */
const char *anthv_stop_reason(const char *finish_reason);

/* An Anthropic error type (e.g. "overloaded_error") as its HTTP status and
 * OpenAI error type. `status` wins when it is an error status (>= 400); an
 * unknown or NULL type is judged by `status` alone (0 means 500). Both
 * outputs are required; the strings are static. */
void anthv_error_kind(const char *anth_type, int status, int *status_out,
                      const char **openai_type);

/* The Anthropic error type for an HTTP status the surface answers with
 * (429 -> "rate_limit_error"); a status of no row is "api_error" from 500 on
 * and "invalid_request_error" below. The string is static. */
const char *anthv_error_type(int status);

#endif
