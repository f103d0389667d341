/* jsonrpc — newline framing and message classification (see jsonrpc.h). */
#include "mcp-broker/jsonrpc.h"
#include "shared/wire_scan.h"
#include "shared/jtext.h"
#include "shared/jget.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jsonrpc_framer_init(jsonrpc_framer_t *f, size_t max_line)
{
    buf_init(&f->pending, max_line);
    f->max_line = max_line;
    f->skipping = 0;
}

void jsonrpc_framer_free(jsonrpc_framer_t *f)
{
    buf_free(&f->pending);
}

/* Emits the pending line unless it is blank; strips a trailing "\r" (in
 * place, so the callback still gets a NUL-terminated string). */
static int jsonrpc__emit(buf_t *b, jsonrpc_line_cb cb, void *ud)
{
    const char *line = buf_str(b);
    size_t len = b->len, i;

    if (len && line[len - 1] == '\r') {
        len--;
        b->data[len] = '\0';
    }
    for (i = 0; i < len; i++)
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
            break;
    if (i == len)
        return 0;
    return cb(ud, line, len);
}

int jsonrpc_framer_feed(jsonrpc_framer_t *f, const char *data, size_t n, jsonrpc_line_cb cb,
                        void *ud)
{
    int rc = 0, overflow = 0;

    while (n > 0 && rc == 0) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) : n;

        if (!f->skipping && buf_append(&f->pending, data, take) != 0) {
            /* an over-long line: drop it up to its newline, keep the rest */
            buf_reset(&f->pending);
            f->skipping = 1;
            overflow = 1;
        }
        if (!nl)
            break;
        if (!f->skipping)
            rc = jsonrpc__emit(&f->pending, cb, ud);
        f->skipping = 0;
        buf_reset(&f->pending);
        data = nl + 1;
        n -= take + 1;
    }
    if (rc == 0 && overflow)
        rc = -ENOSPC;
    return rc;
}

int jsonrpc_classify(json_object *o, jsonrpc_msg_t *m, char *err, size_t errlen)
{
    json_object *v = NULL, *e = NULL;
    int has_id;

    memset(m, 0, sizeof(*m));
    m->num_id = -1;
    if (!o || !json_object_is_type(o, json_type_object)) {
        snprintf(err, errlen, "message is not a JSON object");
        return -EINVAL;
    }
    if (!(v = jget_typed(o, "jsonrpc", json_type_string)) || strcmp(json_object_get_string(v), "2.0") != 0) {
        snprintf(err, errlen, "missing jsonrpc \"2.0\"");
        return -EINVAL;
    }
    has_id = json_object_object_get_ex(o, "id", &m->id);
    if (has_id && m->id && !json_object_is_type(m->id, json_type_int) &&
        !json_object_is_type(m->id, json_type_string)) {
        if (!(json_object_object_get_ex(o, "error", NULL) && json_object_is_type(m->id, json_type_null))) {
            snprintf(err, errlen, "id must be a string or an integer");
            return -EINVAL;
        }
    }
    if (m->id && json_object_is_type(m->id, json_type_int))
        m->num_id = json_object_get_int64(m->id);
    json_object_object_get_ex(o, "params", &m->params);
    if (json_object_object_get_ex(o, "method", &v)) {
        if (!json_object_is_type(v, json_type_string) || !*json_object_get_string(v)) {
            snprintf(err, errlen, "method must be a non-empty string");
            return -EINVAL;
        }
        m->method = json_object_get_string(v);
        m->kind = (has_id && m->id) ? JSONRPC_REQUEST : JSONRPC_NOTIFICATION;
        return 0;
    }
    if (!has_id) {
        snprintf(err, errlen, "no method, and a response without id");
        return -EINVAL;
    }
    if (json_object_object_get_ex(o, "result", &m->result)) {
        if (!m->id) {
            snprintf(err, errlen, "result with a null id");
            return -EINVAL;
        }
        m->kind = JSONRPC_RESULT;
        return 0;
    }
    if ((e = jget_obj(o, "error"))) {
        m->kind = JSONRPC_ERROR;
        m->err_code = jget_int64(e, "code", m->err_code);
        m->err_message = jget_str(e, "message");
        if (!m->err_message)
            m->err_message = "";
        return 0;
    }
    snprintf(err, errlen, "no method, result or error");
    return -EINVAL;
}

static json_object *jsonrpc__base(void)
{
    json_object *o = json_object_new_object();
    if (o)
        json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
    return o;
}

/* Skips blanks from i; the index of the next other byte (or len). */
static size_t jsonrpc__ws(const char *t, size_t len, size_t i)
{
    while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
        i++;
    return i;
}

/* Skips the string whose opening quote is at i; the index after its closing
 * quote, or 0 when it is cut. */
static size_t jsonrpc__str(const char *t, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (t[i] == '\\')
            i++;
        else if (t[i] == '"')
            return i + 1;
    }
    return 0;
}

/* Skips the value starting at i (blanks skipped already); the index after
 * it, or 0 when it is cut or unbalanced. Nesting is counted, not checked
 * bracket by bracket: the text has parsed already. */
static size_t jsonrpc__value(const char *t, size_t len, size_t i)
{
    size_t depth = 0;

    if (i >= len)
        return 0;
    if (t[i] != '{' && t[i] != '[') {
        if (t[i] == '"')
            return jsonrpc__str(t, len, i);
        while (i < len && !strchr(",}] \t\n\r", t[i]))
            i++;
        return i;
    }
    for (; i < len; i++) {
        if (t[i] == '"') {
            if (!(i = jsonrpc__str(t, len, i)))
                return 0;
            i--;
        } else if (t[i] == '{' || t[i] == '[') {
            depth++;
        } else if ((t[i] == '}' || t[i] == ']') && --depth == 0) {
            return i + 1;
        }
    }
    return 0;
}

int jsonrpc_member_raw(const char *json, size_t len, const char *key, const char **val,
                       size_t *vlen)
{
    size_t klen = strlen(key), i = jsonrpc__ws(json, len, 0), k, end;
    int rc = -ENOENT;

    if (i >= len || json[i] != '{')
        return -EINVAL;
    i = jsonrpc__ws(json, len, i + 1);
    if (i < len && json[i] == '}')
        return -ENOENT;
    while (i < len) {
        if (json[i] != '"' || !(k = jsonrpc__str(json, len, i)))
            return -EINVAL;
        /* a key written with escapes never matches: MCP keys are plain */
        int match = k - i - 2 == klen && memcmp(json + i + 1, key, klen) == 0;
        i = jsonrpc__ws(json, len, k);
        if (i >= len || json[i] != ':')
            return -EINVAL;
        i = jsonrpc__ws(json, len, i + 1);
        if (!(end = jsonrpc__value(json, len, i)) || end == i)
            return -EINVAL;
        if (match) {
            *val = json + i;
            *vlen = end - i;
            rc = 0;
        }
        i = jsonrpc__ws(json, len, end);
        if (i < len && json[i] == '}')
            return rc;
        if (i >= len || json[i] != ',')
            return -EINVAL;
        i = jsonrpc__ws(json, len, i + 1);
    }
    return -EINVAL;
}

int jsonrpc_scan_result(const char *json, size_t len, int64_t *id, const char **result,
                        size_t *rlen, int *is_error)
{
    wire_member_t m[8];
    const wire_member_t *ver, *jid, *res;
    int64_t v = 0;
    int n = wire_scan_members(json, len, m, 8), err;

    if (n < 0 || wire_scan_get(m, n, "method") || wire_scan_get(m, n, "error"))
        return -1;
    ver = wire_scan_get(m, n, "jsonrpc");
    jid = wire_scan_get(m, n, "id");
    res = wire_scan_get(m, n, "result");
    if (!ver || ver->vlen != 5 || memcmp(ver->val, "\"2.0\"", 5) != 0 || !jid || jid->vlen == 0 ||
        jid->vlen > 18 || jid->val[0] < '1' || jid->val[0] > '9' || !res || res->val[0] != '{')
        return -1;
    for (size_t i = 0; i < jid->vlen; i++) {
        if (jid->val[i] < '0' || jid->val[i] > '9')
            return -1;             /* 1.0, 1e3: left to json-c's reading */
        v = v * 10 + (jid->val[i] - '0');
    }
    if ((err = wire_scan_is_error(res->val, res->vlen)) < 0)
        return -1;
    *id = v;
    *result = res->val;
    *rlen = res->vlen;
    *is_error = err;
    return 0;
}

char *jsonrpc_request(int64_t id, const char *method, json_object *params)
{
    json_object *o = jsonrpc__base();

    if (!o)
        return NULL;
    json_object_object_add(o, "id", json_object_new_int64(id));
    json_object_object_add(o, "method", json_object_new_string(method));
    if (params)
        json_object_object_add(o, "params", json_object_get(params));
    return jtext_take(o);
}

char *jsonrpc_notification(const char *method, json_object *params)
{
    json_object *o = jsonrpc__base();

    if (!o)
        return NULL;
    json_object_object_add(o, "method", json_object_new_string(method));
    if (params)
        json_object_object_add(o, "params", json_object_get(params));
    return jtext_take(o);
}

char *jsonrpc_result(json_object *id, json_object *result)
{
    json_object *o = jsonrpc__base();

    if (!o)
        return NULL;
    json_object_object_add(o, "id", id ? json_object_get(id) : NULL);
    json_object_object_add(o, "result", result ? json_object_get(result) : json_object_new_object());
    return jtext_take(o);
}

char *jsonrpc_error(json_object *id, int code, const char *message)
{
    json_object *o = jsonrpc__base(), *e = NULL;

    if (!o)
        return NULL;
    e = json_object_new_object();
    if (!e) {
        json_object_put(o);
        return NULL;
    }
    json_object_object_add(e, "code", json_object_new_int(code));
    json_object_object_add(e, "message", json_object_new_string(message ? message : ""));
    json_object_object_add(o, "id", id ? json_object_get(id) : NULL);
    json_object_object_add(o, "error", e);
    return jtext_take(o);
}
