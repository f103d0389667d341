/* jtext — JSON objects to the text that goes on a wire. */
#ifndef AIPROXY_JTEXT_H
#define AIPROXY_JTEXT_H

#include <json-c/json.h>

/* Serialises `o` compactly (no slash escaping), releases it (consumes the
 * reference; NULL is allowed) and returns the text, malloc'd. NULL when `o`
 * was NULL or on ENOMEM. */
char *jtext_take(json_object *o);

/* Parses exactly one JSON value from text[0..len): nesting deeper than
 * max_depth, anything but whitespace after the value, or a value that ends
 * early are refused. Returns 0 and *out (caller owns), -EINVAL with err
 * ("the request body is not valid JSON: ..."), or -ENOMEM. No I/O. */
int jtext_parse_strict(const char *text, size_t len, int max_depth, json_object **out, char *err,
                       size_t errlen);

#endif
