/* wire — encode/decode of the broker protocol messages (see wire.h). */
#include "shared/wire.h"
#include "shared/wire_scan.h"
#include "shared/jtext.h"
#include "shared/jget.h"
#include "shared/reqid.h"
#include "shared/utf8.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wire_id_valid(const char *s)
{
    size_t i;

    if (!s)
        return 0;
    for (i = 0; s[i]; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return i == WIRE_ID_LEN;
}

static int wire__add_str(json_object *o, const char *k, const char *v)
{
    json_object *s = json_object_new_string(v);
    if (!s)
        return -ENOMEM;
    json_object_object_add(o, k, s);
    return 0;
}

char *wire_req_encode(enum wire_op op, const char *id, const char *reply, const char *server,
                      const char *tool, json_object *args, int64_t deadline)
{
    return wire_req_encode_rid(op, id, reply, server, tool, args, deadline, NULL);
}

char *wire_req_encode_rid(enum wire_op op, const char *id, const char *reply, const char *server,
                          const char *tool, json_object *args, int64_t deadline, const char *rid)
{
    json_object *o = NULL;
    char *res = NULL;

    if (!wire_id_valid(id) || !reply || !*reply || !server || !*server)
        goto out;
    if (op != WIRE_OP_CALL && op != WIRE_OP_START && op != WIRE_OP_CANCEL)
        goto out;
    if (op == WIRE_OP_CALL && (!tool || !*tool))
        goto out;
    o = json_object_new_object();
    if (!o)
        goto out;
    json_object_object_add(o, "v", json_object_new_int(WIRE_VERSION));
    if (wire__add_str(o, "op", op == WIRE_OP_CALL ? "call" : op == WIRE_OP_START ? "start" : "cancel") ||
        wire__add_str(o, "id", id) || wire__add_str(o, "reply", reply) ||
        wire__add_str(o, "server", server))
        goto out;
    if (op == WIRE_OP_CALL) {
        if (wire__add_str(o, "tool", tool))
            goto out;
        json_object_object_add(o, "args", args ? json_object_get(args) : json_object_new_object());
    }
    json_object_object_add(o, "deadline", json_object_new_int64(deadline));
    if (rid && reqid_valid(rid) && wire__add_str(o, "rid", rid))
        goto out;
    res = jtext_take(o);
    o = NULL;
out:
    json_object_put(o);
    return res;
}

/* Parses text that must be one JSON object (jtext_parse: big integers keep
 * their text across the wire). */
static json_object *wire__parse(const char *s, size_t n, char *err, size_t errlen)
{
    json_object *o = NULL;
    char why[160];

    if (!s || n == 0) {
        snprintf(err, errlen, "empty message");
        goto out;
    }
    if (n > WIRE_MAX_MSG) {
        snprintf(err, errlen, "message too large (%zu bytes, max %u)", n, WIRE_MAX_MSG);
        goto out;
    }
    if (jtext_parse(s, n, JSON_TOKENER_DEFAULT_DEPTH, &o, why, sizeof why) != 0) {
        snprintf(err, errlen, "not valid JSON (%s)", why);
        goto out;
    }
    if (!json_object_is_type(o, json_type_object)) {
        snprintf(err, errlen, "not a JSON object");
        json_object_put(o);
        o = NULL;
    }
out:
    return o;
}

/* The members of op "sampled" (see wire.h) into out. 0 or -EINVAL. */
static int wire__decode_sampled(json_object *o, wire_req_t *out, char *err, size_t errlen)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(o, "sid", &v) || !json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) < 1) {
        snprintf(err, errlen, "sid: must be an integer >= 1");
        return -EINVAL;
    }
    out->sid = json_object_get_int64(v);
    out->result = jget_obj(o, "result");
    out->error = jget_str(o, "error");
    if (!out->result == !out->error) {
        snprintf(err, errlen, "sampled: needs an object \"result\" or a string \"error\", not both");
        return -EINVAL;
    }
    return 0;
}

char *wire_req_sampled(const char *id, const char *reply, const char *server, int64_t deadline,
                       int64_t sid, json_object *result, const char *error)
{
    json_object *o = NULL;
    char *res = NULL;

    if (!wire_id_valid(id) || !reply || !*reply || !server || !*server || sid < 1 ||
        !result == !error || (result && !json_object_is_type(result, json_type_object)))
        goto out;
    o = json_object_new_object();
    if (!o)
        goto out;
    json_object_object_add(o, "v", json_object_new_int(WIRE_VERSION));
    if (wire__add_str(o, "op", "sampled") || wire__add_str(o, "id", id) ||
        wire__add_str(o, "reply", reply) || wire__add_str(o, "server", server))
        goto out;
    json_object_object_add(o, "deadline", json_object_new_int64(deadline));
    json_object_object_add(o, "sid", json_object_new_int64(sid));
    if (result) {
        json_object_object_add(o, "result", json_object_get(result));
    } else {
        char cut[CAP_WIRE_PROGRESS_TEXT + 1];
        utf8_clean(error, strlen(error), cut, sizeof cut);
        if (wire__add_str(o, "error", cut))
            goto out;
    }
    res = jtext_take(o);
    o = NULL;
out:
    json_object_put(o);
    return res;
}

int wire_req_decode(const char *s, size_t n, wire_req_t *out, char *err, size_t errlen)
{
    json_object *o = NULL, *v = NULL;
    const char *op, *id;
    int rc = -EINVAL;

    if (wire_scan_call(s, n, out) == 0)
        return 0;
    o = wire__parse(s, n, err, errlen);
    if (!o)
        goto out;
    if (!json_object_object_get_ex(o, "v", &v) || !json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) != WIRE_VERSION) {
        snprintf(err, errlen, "v: must be %d", WIRE_VERSION);
        goto out;
    }
    op = jget_str(o, "op");
    if (op && strcmp(op, "call") == 0)
        out->op = WIRE_OP_CALL;
    else if (op && strcmp(op, "start") == 0)
        out->op = WIRE_OP_START;
    else if (op && strcmp(op, "cancel") == 0)
        out->op = WIRE_OP_CANCEL;
    else if (op && strcmp(op, "sampled") == 0)
        out->op = WIRE_OP_SAMPLED;
    else {
        snprintf(err, errlen, "op: must be \"call\", \"start\", \"cancel\" or \"sampled\"");
        goto out;
    }
    id = jget_str(o, "id");
    if (!wire_id_valid(id)) {
        snprintf(err, errlen, "id: must be %d hex characters", WIRE_ID_LEN);
        goto out;
    }
    memcpy(out->id, id, WIRE_ID_LEN + 1);
    out->reply = jget_str(o, "reply");
    if (!out->reply || !*out->reply || strlen(out->reply) > 512) {
        snprintf(err, errlen, "reply: must be a channel name of 1 to 512 characters");
        goto out;
    }
    out->server = jget_str(o, "server");
    if (!out->server || !*out->server) {
        snprintf(err, errlen, "server: must be a non-empty string");
        goto out;
    }
    if (!json_object_object_get_ex(o, "deadline", &v) || !json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) <= 0) {
        snprintf(err, errlen, "deadline: must be a positive integer (unix ms)");
        goto out;
    }
    out->deadline = json_object_get_int64(v);
    /* optional: a request id we could not log or pass on as it is, is none */
    out->rid = jget_str(o, "rid");
    if (out->rid && !reqid_valid(out->rid))
        out->rid = NULL;
    if (out->op == WIRE_OP_CALL) {
        out->tool = jget_str(o, "tool");
        if (!out->tool || !*out->tool) {
            snprintf(err, errlen, "tool: must be a non-empty string");
            goto out;
        }
        if (!json_object_object_get_ex(o, "args", &v)) {
            v = json_object_new_object();
            if (!v) {
                snprintf(err, errlen, "out of memory");
                rc = -ENOMEM;
                goto out;
            }
            json_object_object_add(o, "args", v);
        } else if (!json_object_is_type(v, json_type_object)) {
            snprintf(err, errlen, "args: must be an object");
            goto out;
        }
        out->args = v;
    }
    if (out->op == WIRE_OP_SAMPLED && wire__decode_sampled(o, out, err, errlen) != 0)
        goto out;
    out->tp = jget_str(o, "tp");   /* optional; the broker checks its shape */
    out->root = o;
    o = NULL;
    rc = 0;
out:
    if (rc)
        memset(out, 0, sizeof(*out));
    json_object_put(o);
    return rc;
}

void wire_req_clear(wire_req_t *r)
{
    json_object_put(r->root);
    free(r->own);
    memset(r, 0, sizeof(*r));
}

static char *wire__reply(const char *id, int ok, const char *key, json_object *val, const char *error)
{
    json_object *o = json_object_new_object();

    if (!o)
        return NULL;
    if (wire__add_str(o, "id", id ? id : ""))
        goto fail;
    json_object_object_add(o, "ok", json_object_new_boolean(ok));
    if (ok)
        json_object_object_add(o, key, val ? json_object_get(val) : json_object_new_object());
    else if (wire__add_str(o, "error", error ? error : "unknown error"))
        goto fail;
    return jtext_take(o);
fail:
    json_object_put(o);
    return NULL;
}

char *wire_reply_result(const char *id, json_object *result)
{
    return wire__reply(id, 1, "result", result, NULL);
}

char *wire_reply_result_raw(const char *id, const char *raw, size_t n)
{
    static const char head[] = "{\"id\":\"", mid[] = "\",\"ok\":true,\"result\":";
    size_t hl = sizeof(head) - 1, ml = sizeof(mid) - 1;
    char *t;

    if (!wire_id_valid(id) || !raw || n == 0 || raw[0] != '{' || n > WIRE_MAX_MSG)
        return NULL;
    t = malloc(hl + WIRE_ID_LEN + ml + n + 2);
    if (!t)
        return NULL;
    memcpy(t, head, hl);
    memcpy(t + hl, id, WIRE_ID_LEN);
    memcpy(t + hl + WIRE_ID_LEN, mid, ml);
    memcpy(t + hl + WIRE_ID_LEN + ml, raw, n);
    memcpy(t + hl + WIRE_ID_LEN + ml + n, "}", 2);
    return t;
}

char *wire_reply_tools(const char *id, json_object *tools)
{
    if (!tools)
        return wire__reply(id, 1, "tools", json_object_new_array(), NULL);
    return wire__reply(id, 1, "tools", tools, NULL);
}

char *wire_reply_error(const char *id, const char *error)
{
    return wire__reply(id, 0, NULL, NULL, error);
}

/* A number as JSON: whole values as integers ("3", not "3.0"). */
static json_object *wire__num(double d)
{
    if (d == floor(d) && fabs(d) < 9e15)
        return json_object_new_int64((int64_t)d);
    return json_object_new_double(d);
}

char *wire_reply_progress(const char *id, double progress, double total, const char *message,
                          int64_t left_ms)
{
    json_object *o = NULL, *p = NULL;
    char *res = NULL;

    if (!wire_id_valid(id) || !isfinite(progress))
        goto out;
    o = json_object_new_object();
    p = json_object_new_object();
    if (!o || !p || wire__add_str(o, "id", id))
        goto out;
    json_object_object_add(p, "progress", wire__num(progress));
    if (total >= 0 && isfinite(total))
        json_object_object_add(p, "total", wire__num(total));
    if (message) {
        char cut[CAP_WIRE_PROGRESS_TEXT + 1];
        utf8_clean(message, strlen(message), cut, sizeof cut);
        if (wire__add_str(p, "message", cut))
            goto out;
    }
    json_object_object_add(o, "progress", p);
    p = NULL;
    json_object_object_add(o, "left_ms", json_object_new_int64(left_ms > 0 ? left_ms : 0));
    res = jtext_take(o);
    o = NULL;
out:
    json_object_put(p);
    json_object_put(o);
    return res;
}

char *wire_reply_sampling(const char *id, int64_t sid, json_object *params)
{
    json_object *o = NULL, *m = NULL;
    char *res = NULL;

    if (!wire_id_valid(id) || sid < 1 || !params || !json_object_is_type(params, json_type_object))
        goto out;
    o = json_object_new_object();
    m = json_object_new_object();
    if (!o || !m || wire__add_str(o, "id", id))
        goto out;
    json_object_object_add(m, "sid", json_object_new_int64(sid));
    json_object_object_add(m, "params", json_object_get(params));
    json_object_object_add(o, "sampling", m);
    m = NULL;
    res = jtext_take(o);
    o = NULL;
out:
    json_object_put(m);
    json_object_put(o);
    return res;
}

/* The "progress" member of a reply (see wire.h) into out. 0 or -EINVAL. */
static int wire__decode_progress(json_object *o, json_object *p, wire_reply_t *out, char *err,
                                 size_t errlen)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(p, "progress", &v) || !v ||
        !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) ||
        !isfinite(json_object_get_double(v))) {
        snprintf(err, errlen, "progress.progress: must be a number");
        return -EINVAL;
    }
    out->progress = json_object_get_double(v);
    out->total = -1;
    if (json_object_object_get_ex(p, "total", &v) && v) {
        if (!(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) ||
            !isfinite(json_object_get_double(v))) {
            snprintf(err, errlen, "progress.total: must be a number when present");
            return -EINVAL;
        }
        out->total = json_object_get_double(v);
    }
    if (json_object_object_get_ex(p, "message", &v) && v) {
        if (!json_object_is_type(v, json_type_string)) {
            snprintf(err, errlen, "progress.message: must be a string when present");
            return -EINVAL;
        }
        out->message = json_object_get_string(v);
    }
    if (!json_object_object_get_ex(o, "left_ms", &v) || !json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) < 0) {
        snprintf(err, errlen, "left_ms: a progress report needs an integer >= 0");
        return -EINVAL;
    }
    out->left_ms = json_object_get_int64(v);
    out->is_progress = 1;
    return 0;
}

int wire_reply_decode(const char *s, size_t n, wire_reply_t *out, char *err, size_t errlen)
{
    json_object *o = NULL, *v = NULL;
    const char *id;
    int rc = -EINVAL;

    memset(out, 0, sizeof(*out));
    o = wire__parse(s, n, err, errlen);
    if (!o)
        goto out;
    id = jget_str(o, "id");
    if (!wire_id_valid(id)) {
        snprintf(err, errlen, "id: must be %d hex characters", WIRE_ID_LEN);
        goto out;
    }
    memcpy(out->id, id, WIRE_ID_LEN + 1);
    if ((v = jget_obj(o, "sampling"))) {
        json_object *sid = jget_typed(v, "sid", json_type_int);
        if (!sid || json_object_get_int64(sid) < 1 || !(out->params = jget_obj(v, "params"))) {
            snprintf(err, errlen, "sampling: needs an integer \"sid\" >= 1 and an object \"params\"");
            goto out;
        }
        out->sid = json_object_get_int64(sid);
        out->is_sampling = 1;
        out->root = o;
        o = NULL;
        rc = 0;
        goto out;
    }
    if ((v = jget_obj(o, "progress"))) {
        if (wire__decode_progress(o, v, out, err, errlen) != 0)
            goto out;
        out->root = o;
        o = NULL;
        rc = 0;
        goto out;
    }
    if (!(v = jget_typed(o, "ok", json_type_boolean))) {
        snprintf(err, errlen, "ok: must be true or false");
        goto out;
    }
    out->ok = json_object_get_boolean(v);
    if (out->ok) {
        if ((v = jget_obj(o, "result")))
            out->result = v;
        else if ((v = jget_arr(o, "tools")))
            out->tools = v;
        else {
            snprintf(err, errlen, "result: an ok reply needs an object \"result\" or an array \"tools\"");
            goto out;
        }
    } else {
        out->error = jget_str(o, "error");
        if (!out->error) {
            snprintf(err, errlen, "error: a failed reply needs an \"error\" string");
            goto out;
        }
    }
    out->root = o;
    o = NULL;
    rc = 0;
out:
    if (rc)
        memset(out, 0, sizeof(*out));
    json_object_put(o);
    return rc;
}

void wire_reply_clear(wire_reply_t *r)
{
    json_object_put(r->root);
    memset(r, 0, sizeof(*r));
}

char *wire_req_with(char *text, const char *key, const char *value)
{
    size_t tl = text ? strlen(text) : 0, kl, vl;
    char *res;

    if (!text || !key || !value || tl < 2 || text[tl - 1] != '}')
        return text;
    kl = strlen(key);
    vl = strlen(value);
    for (const char *p = key; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\')
            return text;
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\')
            return text;
    if (!(res = malloc(tl + kl + vl + 7)))
        return text;
    /* text is "{...}" (at least one member: v, op, id...) */
    memcpy(res, text, tl - 1);
    snprintf(res + tl - 1, kl + vl + 8, ",\"%s\":\"%s\"}", key, value);
    free(text);
    return res;
}
