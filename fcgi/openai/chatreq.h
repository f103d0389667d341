/* chatreq — parse and validate a POST /v1/chat/completions body, with no I/O.
 *
 * Checks the shape OpenAI documents for the fields we read or pass on, so a
 * client gets a 400 naming the offending field (`param`) instead of an
 * upstream error or a crash. Unknown fields are left alone (passed on). */
#ifndef AIPROXY_CHATREQ_H
#define AIPROXY_CHATREQ_H

#include "shared/err.h"

#include <json-c/json.h>
#include <stddef.h>

typedef struct chatreq {
    json_object *body;      /* the parsed request (owned: chatreq_clear puts it) */
    const char *model;      /* borrowed from body */
    int stream;             /* "stream": true */
    int include_usage;      /* "stream_options": {"include_usage": true} */
} chatreq_t;

/* Parses `len` bytes of JSON (nesting capped) and validates them. On success
 * returns 0 and fills *out (call chatreq_clear). On a bad body returns
 * -EINVAL with *err the 400 to answer (err->param the offending field, e.g.
 * "messages[2].role"; "" for the body) and *out empty; -ENOMEM on allocation
 * failure. */
int chatreq_parse(const char *text, size_t len, chatreq_t *out, aip_err_t *err);

/* Validates an already parsed body (borrowed). Returns 0 or -EINVAL with *err. */
int chatreq_validate(json_object *body, aip_err_t *err);

/* Releases out->body and empties *out. */
void chatreq_clear(chatreq_t *out);

#endif
