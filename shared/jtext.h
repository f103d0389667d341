/* jtext — JSON objects to the text that goes on a wire. */
#ifndef AIPROXY_JTEXT_H
#define AIPROXY_JTEXT_H

#include <json-c/json.h>

/* Serialises `o` compactly (no slash escaping), releases it (consumes the
 * reference; NULL is allowed) and returns the text, malloc'd. NULL when `o`
 * was NULL or on ENOMEM. */
char *jtext_take(json_object *o);

#endif
