/* jsonrpc — JSON-RPC 2.0 framing and classification for MCP. No I/O.
 *
 * The line framer turns a byte stream (an MCP stdio server's stdout) into
 * newline-delimited messages; classification says what one parsed message is
 * (request, notification, response) and pulls out its parts. */
#ifndef AIPROXY_JSONRPC_H
#define AIPROXY_JSONRPC_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/buf.h"

/* --- newline framing ------------------------------------------------------ */

/* Called once per non-blank line (without its "\n" or "\r\n"); `line` is
 * NUL-terminated and valid during the call only. Return 0 to go on. */
typedef int (*jsonrpc_line_cb)(void *ud, const char *line, size_t len);

typedef struct jsonrpc_framer {
    buf_t pending;           /* an incomplete last line */
    size_t max_line;
    int skipping;            /* dropping an over-long line up to its "\n" */
} jsonrpc_framer_t;

/* A framer refusing lines longer than max_line bytes. */
void jsonrpc_framer_init(jsonrpc_framer_t *f, size_t max_line);

/* Feeds n bytes, calls cb per complete line. Returns 0, the callback's
 * non-zero return, or -ENOSPC when a line passes the cap (the partial line is
 * dropped, so the framer stays usable after the next "\n"). */
int jsonrpc_framer_feed(jsonrpc_framer_t *f, const char *data, size_t n, jsonrpc_line_cb cb,
                        void *ud);
void jsonrpc_framer_free(jsonrpc_framer_t *f);

/* --- classification ------------------------------------------------------- */

enum jsonrpc_kind {
    JSONRPC_REQUEST = 1,      /* method + id */
    JSONRPC_NOTIFICATION,     /* method, no id */
    JSONRPC_RESULT,           /* id + result */
    JSONRPC_ERROR,            /* id (maybe null) + error{code,message} */
};

typedef struct jsonrpc_msg {
    enum jsonrpc_kind kind;
    const char *method;       /* requests and notifications */
    json_object *id;          /* borrowed; NULL for notifications */
    int64_t num_id;           /* the id when it is an integer, else -1 */
    json_object *params;      /* borrowed, may be NULL */
    json_object *result;      /* borrowed (RESULT) */
    int64_t err_code;         /* ERROR */
    const char *err_message;  /* ERROR; "" when absent */
} jsonrpc_msg_t;

/* Classifies one message object (not a batch). Pointers borrow from `o`.
 * Returns 0 or -EINVAL with err ("missing jsonrpc \"2.0\"", "no method, result
 * or error", …). */
int jsonrpc_classify(json_object *o, jsonrpc_msg_t *m, char *err, size_t errlen);

/* The text of member `key` of the JSON object `json` (len bytes; a message
 * as the peer wrote it): *val points into json, *vlen bytes, exactly as
 * written. The last one when the key repeats (json-c keeps the last, so
 * this is the value a parse of the same text holds). Only the structure is
 * checked (strings, nesting), not the values: use it on text that parsed.
 * Returns 0, -ENOENT (no such member), or -EINVAL (not an object, cut). */
int jsonrpc_member_raw(const char *json, size_t len, const char *key, const char **val,
                       size_t *vlen);

/* The common answer to a call read without a json-c tree: the message
 * {"jsonrpc":"2.0","id":<positive integer>,"result":{...}} with no method
 * or error (other members ignored). *id; *result and *rlen the result's text
 * as written (into json); *is_error whether it says "isError": true.
 * Returns 0, or -1 for anything else (another kind of message, a string
 * id, escapes or non-ASCII in a top-level string, isError not a boolean, a
 * grammar error, ...): the caller parses it the long way, which decides
 * what it is. No allocation. */
int jsonrpc_scan_result(const char *json, size_t len, int64_t *id, const char **result,
                        size_t *rlen, int *is_error);

/* Builders: malloc'd JSON text, NULL on ENOMEM. `params`/`result` borrowed
 * (NULL omits params / gives {} as result). `id` borrowed (echoed as is). */
char *jsonrpc_request(int64_t id, const char *method, json_object *params);
char *jsonrpc_notification(const char *method, json_object *params);
char *jsonrpc_result(json_object *id, json_object *result);
char *jsonrpc_error(json_object *id, int code, const char *message);

#define JSONRPC_PARSE_ERROR      (-32700)
#define JSONRPC_INVALID_REQUEST  (-32600)
#define JSONRPC_METHOD_NOT_FOUND (-32601)
#define JSONRPC_INVALID_PARAMS   (-32602)
#define JSONRPC_INTERNAL_ERROR   (-32603)

#endif
