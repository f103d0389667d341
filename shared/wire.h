/* wire — the responder ↔ mcp-broker messages over Redis pub/sub
 * (docs/broker-protocol.md). Pure encode/decode: no I/O, no Redis.
 *
 * Request, PUBLISHed on <prefix>mcp:calls:
 *   {"v":1,"op":"call"|"start"|"cancel","id":"<32 hex>","reply":"<channel>",
 *    "server":"…","tool":"…","args":{…},"deadline":<unix ms>}
 *   ("tool" and "args" only for "call"; a call may also carry "rid", the
 *   client request's id (shared/reqid.h, for logs and the MCP server), and
 *   "tp", its W3C traceparent, docs/traces.md). "cancel" names an earlier call by
 *   its id (same reply, server and deadline): the responder gave up on it, the
 *   broker tells the MCP server and sends no reply. A broker that predates
 *   "cancel" logs it as malformed and ignores it.
 * Reply, PUBLISHed on the request's reply channel:
 *   {"id":"…","ok":true,"result":{tools/call result}}     (call)
 *   {"id":"…","ok":true,"tools":[{name,description,inputSchema}]}   (start)
 *   {"id":"…","ok":false,"error":"why"}                    (either)
 * and, before a call's answer, any number of non-final progress reports
 * (MCP notifications/progress, relayed; no "ok", so a responder that predates
 * them drops them as malformed):
 *   {"id":"…","progress":{"progress":n,"total":n?,"message":"…"?},"left_ms":n}
 *   left_ms: the broker's deadline for the call is now that far away (it
 *   extended it); relative, so no two clocks are compared.
 * and, during a call, any number of sampling requests (MCP
 * sampling/createMessage from the server, forwarded to the call's owner; no
 * "ok" either, so an older responder drops them and the broker's own bound
 * answers the server):
 *   {"id":"…","sampling":{"sid":n,"params":{createMessage params}}}
 * which the responder answers on <prefix>mcp:calls with op "sampled":
 *   {"v":1,"op":"sampled","id":"<the call's id>","reply","server","deadline",
 *    "sid":n,"result":{role,content,model,stopReason}} or ..."error":"why"} */
#ifndef AIPROXY_WIRE_H
#define AIPROXY_WIRE_H

#include "shared/caps.h"

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_VERSION 1
#define WIRE_ID_LEN 32               /* hex characters of a request id */
#define WIRE_MAX_MSG CAP_WIRE_MSG        /* a message larger than this is refused */

enum wire_op { WIRE_OP_CALL = 1, WIRE_OP_START = 2, WIRE_OP_CANCEL = 3, WIRE_OP_SAMPLED = 4 };

typedef struct wire_req {
    enum wire_op op;
    char id[WIRE_ID_LEN + 1];
    const char *reply;       /* borrowed from root */
    const char *server;      /* borrowed from root */
    const char *tool;        /* borrowed from root; NULL for start and cancel */
    json_object *args;       /* borrowed from root; an object (never NULL for call), else NULL */
    int64_t deadline;        /* unix ms */
    json_object *root;       /* owned: the parsed message */
    int64_t sid;             /* sampled: the server request it answers (>= 1) */
    json_object *result;     /* sampled: borrowed, the answer (an object), or NULL with */
    const char *error;       /* sampled: borrowed, why there is none */
    const char *rid;         /* borrowed: the request id ("rid"), NULL when none or
                              * not a valid one (shared/reqid.h) */
    const char *tp;          /* call: borrowed, the W3C traceparent of the tool call
                                ("tp", optional; NULL when absent) */
    char *own;               /* owned: the strings above when read by wire_scan_call
                              * (root is then the args), else NULL */
} wire_req_t;

typedef struct wire_reply {
    char id[WIRE_ID_LEN + 1];
    int is_progress;         /* a non-final progress report: only the fields below */
    double progress;         /* progress: as the server reported it */
    double total;            /* progress: < 0 when the server gave none */
    const char *message;     /* progress: borrowed, NULL when none */
    int64_t left_ms;         /* progress: ms to the call's (extended) broker deadline */
    int ok;
    json_object *result;     /* borrowed: call result (ok) */
    json_object *tools;      /* borrowed: start catalog (ok) */
    const char *error;       /* borrowed: reason (!ok) */
    json_object *root;       /* owned */
    int is_sampling;         /* a sampling request for the call: only sid and params */
    int64_t sid;             /* sampling: its number, echoed in op "sampled" */
    json_object *params;     /* sampling: borrowed createMessage params (an object) */
} wire_reply_t;

/* A request as JSON text (malloc'd, NULL on ENOMEM or a bad argument: id not
 * 32 hex, empty reply/server, call without tool). `args` is borrowed (NULL →
 * {}); tool and args are ignored for start and cancel. */
char *wire_req_encode(enum wire_op op, const char *id, const char *reply, const char *server,
                      const char *tool, json_object *args, int64_t deadline);

/* wire_req_encode with the request id `rid` ("rid"; NULL, or one that is
 * not reqid_valid, sends none). */
char *wire_req_encode_rid(enum wire_op op, const char *id, const char *reply, const char *server,
                          const char *tool, json_object *args, int64_t deadline, const char *rid);
/* Adds the string member "key":"value" to an encoded request `text` (which
 * it frees) and returns the new text: the optional fields of a call, such as
 * "tp" (its traceparent, docs/broker-protocol.md). A value that would need
 * escaping, or ENOMEM, returns `text` as it was (the field is optional). */
char *wire_req_with(char *text, const char *key, const char *value);

/* The responder's answer to sampling request `sid` of call `id` (op
 * "sampled"): exactly one of `result` (borrowed object) and `error` (cut to
 * CAP_WIRE_PROGRESS_TEXT bytes). malloc'd JSON text; NULL on ENOMEM or a bad
 * argument (id, empty reply/server, sid < 1, neither or both answers). */
char *wire_req_sampled(const char *id, const char *reply, const char *server, int64_t deadline,
                       int64_t sid, json_object *result, const char *error);

/* Parses and validates a request. Returns 0 and fills *out (release with
 * wire_req_clear), or -EINVAL with err naming the bad field
 * (e.g. "id: must be 32 hex characters"). */
int wire_req_decode(const char *s, size_t n, wire_req_t *out, char *err, size_t errlen);
void wire_req_clear(wire_req_t *r);

/* Reply encoders (malloc'd JSON text, NULL on ENOMEM). Borrowed arguments. */
char *wire_reply_result(const char *id, json_object *result);
char *wire_reply_tools(const char *id, json_object *tools);
char *wire_reply_error(const char *id, const char *error);

/* wire_reply_result with the result as text: `raw` (n bytes, borrowed) must
 * be one JSON object, e.g. cut unchanged from the MCP server's answer that
 * parsed, and is copied in as is (no parse, no re-serialisation). NULL on
 * ENOMEM, an id that is not 32 hex, or raw not starting with '{'. */
char *wire_reply_result_raw(const char *id, const char *raw, size_t n);

/* A progress report for call `id` (see the top of this file): `total` < 0
 * and `message` NULL are left out; the message is cut to
 * CAP_WIRE_PROGRESS_TEXT bytes (at a character boundary, ill-formed UTF-8
 * replaced); left_ms < 0 counts as 0. malloc'd JSON text; NULL on ENOMEM, a
 * bad id or a progress that is not finite. */
char *wire_reply_progress(const char *id, double progress, double total, const char *message,
                          int64_t left_ms);

/* A sampling request for call `id` (see the top of this file): `params`
 * borrowed (an object). malloc'd JSON text; NULL on ENOMEM or a bad
 * argument (id, sid < 1, params not an object). */
char *wire_reply_sampling(const char *id, int64_t sid, json_object *params);

/* Parses and validates a reply (ok replies need "result" or "tools"; error
 * replies a string "error"; a progress report, is_progress set, needs a
 * numeric "progress.progress" and a "left_ms" >= 0; a sampling request,
 * is_sampling set, an integer "sampling.sid" >= 1 and an object
 * "sampling.params"). 0 or -EINVAL with err;
 * release with wire_reply_clear. */
int wire_reply_decode(const char *s, size_t n, wire_reply_t *out, char *err, size_t errlen);
void wire_reply_clear(wire_reply_t *r);

/* 1 when s is exactly WIRE_ID_LEN lowercase/uppercase hex characters. */
int wire_id_valid(const char *s);

#endif
