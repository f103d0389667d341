/* jtext — JSON objects to the text that goes on a wire. */
#ifndef AIPROXY_JTEXT_H
#define AIPROXY_JTEXT_H

#include <json-c/json.h>

/* Serialises `o` compactly (no slash escaping), releases it (consumes the
 * reference; NULL is allowed) and returns the text, malloc'd. NULL when `o`
 * was NULL or on ENOMEM. */
char *jtext_take(json_object *o);

/* A new JSON string of text[0..len) as valid UTF-8: ill-formed bytes become
 * U+FFFD (utf8_clean), for text we echo (a model name, an upstream's body).
 * NULL text gives "". Caller owns the result; NULL on ENOMEM. */
json_object *jtext_new_echo(const char *text, size_t len);

/* Parses exactly one RFC 8259 JSON value from text[0..len), the way every
 * JSON text from outside (clients, upstreams' tool arguments, the broker
 * wire, MCP servers) is read, so that every input keeps its meaning:
 * nesting deeper than max_depth, anything but whitespace after the value, a
 * value that ends early, and what json-c alone would accept but JSON does not
 * (comments, single quotes, "01", "1.", NaN, Infinity) are refused. An
 * integer past 64 bits becomes a double that prints as the text it was
 * (json-c alone clamps it to 18446744073709551615): json_type_double, so a
 * field that must be an integer refuses it. A "\u0000" in a string is kept
 * (json_object_get_string_len). Returns 0 and *out (caller owns), -EINVAL
 * with err ("the text is not valid JSON: ..."), or -ENOMEM. No I/O. */
int jtext_parse(const char *text, size_t len, int max_depth, json_object **out, char *err,
                size_t errlen);

/* For answers from peers we do not control (MCP servers, upstreams):
 * jtext_parse, and when that refuses the text, json-c's own lenient reading
 * of it, as before (Python's json.dumps writes NaN). Returns the value
 * (caller owns) or NULL when neither reads it (or on ENOMEM). */
json_object *jtext_parse_peer(const char *text, size_t len);

/* jtext_parse for a request body: the same, with errors that start "the
 * request body ...". */
int jtext_parse_strict(const char *text, size_t len, int max_depth, json_object **out, char *err,
                       size_t errlen);

#endif
