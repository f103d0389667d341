/* wire_scan — the broker's hot path of wire_req_decode (see wire_scan.h):
 * a call request read by one pass over its text, without a json-c tree of
 * the message. No I/O. */
#include "shared/wire_scan.h"
#include "shared/jtext.h"
#include "shared/reqid.h"

#include <stdlib.h>
#include <string.h>

#define WS_MAX_MEMBERS 32         /* more than a call has: the full parse */

typedef wire_member_t ws_member_t;

static size_t ws__blank(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* The end of the string opening at s[i] (after its closing quote), or 0.
 * A member of the request itself must be plain printable ASCII: an escape,
 * a control or a non-ASCII byte leaves the text to the full parse (which
 * knows what to make of it). Inside a nested value (the arguments, which
 * jtext_parse reads again) escapes of JSON's grammar and other bytes pass. */
static size_t ws__str(const char *s, size_t n, size_t i, int nested)
{
    static const char hex[] = "0123456789abcdefABCDEF";

    for (i++; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"')
            return i + 1;
        if (ch < 0x20 || (!nested && (ch == '\\' || ch >= 0x80)))
            return 0;
        if (ch != '\\')
            continue;
        if (++i >= n)
            return 0;
        if (s[i] == 'u') {
            if (n - i < 5 || !s[i + 1] || !strchr(hex, s[i + 1]) || !s[i + 2] || !strchr(hex, s[i + 2]) ||
                !s[i + 3] || !strchr(hex, s[i + 3]) || !s[i + 4] || !strchr(hex, s[i + 4]))
                return 0;
            i += 4;
        } else if (!s[i] || !strchr("\"\\/bfnrt", s[i])) {
            return 0;
        }
    }
    return 0;
}

static size_t ws__digits(const char *s, size_t n, size_t i)
{
    size_t j = i;

    while (j < n && s[j] >= '0' && s[j] <= '9')
        j++;
    return j;
}

/* The end of the JSON number at s[i] (strict grammar), or 0. */
static size_t ws__num(const char *s, size_t n, size_t i)
{
    size_t j;

    if (i < n && s[i] == '-')
        i++;
    if (i >= n || s[i] < '0' || s[i] > '9')
        return 0;
    j = s[i] == '0' ? i + 1 : ws__digits(s, n, i);
    if (j < n && s[j] == '.') {
        i = ws__digits(s, n, j + 1);
        if (i == j + 1)
            return 0;
        j = i;
    }
    if (j < n && (s[j] == 'e' || s[j] == 'E')) {
        j++;
        if (j < n && (s[j] == '+' || s[j] == '-'))
            j++;
        i = ws__digits(s, n, j);
        if (i == j)
            return 0;
        j = i;
    }
    return j;
}

/* The end of the value at s[i], or 0; depth JSON_TOKENER_DEFAULT_DEPTH - 1
 * for a member of the request (its strings plain, see ws__str). */
static size_t ws__value(const char *s, size_t n, size_t i, int depth)
{
    char open;

    if (i >= n)
        return 0;
    switch (s[i]) {
    case '"':
        return ws__str(s, n, i, depth < JSON_TOKENER_DEFAULT_DEPTH - 1);
    case 't':
        return n - i >= 4 && memcmp(s + i, "true", 4) == 0 ? i + 4 : 0;
    case 'f':
        return n - i >= 5 && memcmp(s + i, "false", 5) == 0 ? i + 5 : 0;
    case 'n':
        return n - i >= 4 && memcmp(s + i, "null", 4) == 0 ? i + 4 : 0;
    case '{':
    case '[':
        break;
    default:
        return ws__num(s, n, i);
    }
    if (depth <= 0)
        return 0;
    open = s[i];
    i = ws__blank(s, n, i + 1);
    if (i < n && s[i] == (open == '{' ? '}' : ']'))
        return i + 1;
    for (;;) {
        if (open == '{') {
            if (i >= n || s[i] != '"' || !(i = ws__str(s, n, i, 1)))
                return 0;
            i = ws__blank(s, n, i);
            if (i >= n || s[i] != ':')
                return 0;
            i = ws__blank(s, n, i + 1);
        }
        if (!(i = ws__value(s, n, i, depth - 1)))
            return 0;
        i = ws__blank(s, n, i);
        if (i < n && s[i] == (open == '{' ? '}' : ']'))
            return i + 1;
        if (i >= n || s[i] != ',')
            return 0;
        i = ws__blank(s, n, i + 1);
    }
}

/* The top-level members of the object that is all of s; the count, or -1. */
static int ws__members(const char *s, size_t n, ws_member_t *m, int max)
{
    size_t i = ws__blank(s, n, 0), k;
    int count = 0;

    if (i >= n || s[i] != '{')
        return -1;
    i = ws__blank(s, n, i + 1);
    if (i < n && s[i] == '}')
        return ws__blank(s, n, i + 1) == n ? 0 : -1;
    for (;;) {
        if (count == max || i >= n || s[i] != '"' || !(k = ws__str(s, n, i, 0)))
            return -1;
        m[count].key = s + i + 1;
        m[count].klen = k - i - 2;
        i = ws__blank(s, n, k);
        if (i >= n || s[i] != ':')
            return -1;
        i = ws__blank(s, n, i + 1);
        if (!(k = ws__value(s, n, i, JSON_TOKENER_DEFAULT_DEPTH - 1)))
            return -1;
        m[count].val = s + i;
        m[count].vlen = k - i;
        count++;
        i = ws__blank(s, n, k);
        if (i < n && s[i] == '}')
            return ws__blank(s, n, i + 1) == n ? count : -1;
        if (i >= n || s[i] != ',')
            return -1;
        i = ws__blank(s, n, i + 1);
    }
}

int wire_scan_members(const char *s, size_t n, wire_member_t *m, int max)
{
    return s ? ws__members(s, n, m, max) : -1;
}

const wire_member_t *wire_scan_get(const wire_member_t *m, int count, const char *key)
{
    size_t klen = strlen(key);

    for (int i = count - 1; i >= 0; i--)
        if (m[i].klen == klen && memcmp(m[i].key, key, klen) == 0)
            return &m[i];
    return NULL;
}

int wire_scan_is_error(const char *result, size_t n)
{
    wire_member_t m[WS_MAX_MEMBERS];
    const wire_member_t *e;
    int count = wire_scan_members(result, n, m, WS_MAX_MEMBERS);

    if (count < 0)
        return -1;
    e = wire_scan_get(m, count, "isError");
    if (!e)
        return 0;
    if (e->vlen == 4 && memcmp(e->val, "true", 4) == 0)
        return 1;
    if (e->vlen == 5 && memcmp(e->val, "false", 5) == 0)
        return 0;
    return -1;                    /* another type: what json-c makes of it is the parse's */
}

static int ws__is_str(const ws_member_t *v)
{
    return v && v->vlen >= 2 && v->val[0] == '"';
}

/* A positive integer written as plain digits (what json-c holds as an int
 * that fits int64), else 0. */
static int64_t ws__posint(const ws_member_t *v)
{
    int64_t x = 0;

    if (!v || v->vlen == 0 || v->vlen > 18 || v->val[0] == '0')
        return 0;
    for (size_t i = 0; i < v->vlen; i++) {
        if (v->val[i] < '0' || v->val[i] > '9')
            return 0;
        x = x * 10 + (v->val[i] - '0');
    }
    return x;
}

/* Copies string member v (its text between the quotes) into *at, moving
 * *at on: a NUL-terminated string. NULL when v is absent or not a string. */
static const char *ws__copy(const ws_member_t *v, char **at)
{
    char *p = *at;

    if (!ws__is_str(v))
        return NULL;
    memcpy(p, v->val + 1, v->vlen - 2);
    p[v->vlen - 2] = '\0';
    *at = p + v->vlen - 1;
    return p;
}

int wire_scan_call(const char *s, size_t n, wire_req_t *out)
{
    ws_member_t m[WS_MAX_MEMBERS];
    const ws_member_t *id, *reply, *server, *tool, *rid, *tp, *args;
    const char *const op_call = "\"call\"";
    const ws_member_t *v, *op;
    json_object *a = NULL;
    char why[160], *at;
    int count;
    size_t need;

    memset(out, 0, sizeof(*out));
    if (!s || n == 0 || n > WIRE_MAX_MSG || (count = ws__members(s, n, m, WS_MAX_MEMBERS)) < 0)
        return 1;
    v = wire_scan_get(m, count, "v");
    op = wire_scan_get(m, count, "op");
    id = wire_scan_get(m, count, "id");
    reply = wire_scan_get(m, count, "reply");
    server = wire_scan_get(m, count, "server");
    tool = wire_scan_get(m, count, "tool");
    args = wire_scan_get(m, count, "args");
    rid = wire_scan_get(m, count, "rid");
    tp = wire_scan_get(m, count, "tp");
    /* only a well-formed call: anything else gets the full parse and its
     * messages */
    if (!v || v->vlen != 1 || v->val[0] != '0' + WIRE_VERSION || !op || op->vlen != 6 ||
        memcmp(op->val, op_call, 6) != 0 || !ws__is_str(id) || id->vlen != WIRE_ID_LEN + 2 ||
        !ws__is_str(reply) || reply->vlen < 3 || reply->vlen > 514 || !ws__is_str(server) ||
        server->vlen < 3 || !ws__is_str(tool) || tool->vlen < 3 ||
        (args && args->val[0] != '{') || (out->deadline = ws__posint(wire_scan_get(m, count, "deadline"))) <= 0)
        goto slow;
    memcpy(out->id, id->val + 1, WIRE_ID_LEN);
    out->id[WIRE_ID_LEN] = '\0';
    if (!wire_id_valid(out->id))
        goto slow;
    if (args) {
        /* the arguments alone, as the full parse reads them (big integers
         * keep their text) */
        if (jtext_parse(args->val, args->vlen, JSON_TOKENER_DEFAULT_DEPTH - 1, &a, why, sizeof why) != 0)
            goto slow;
    } else if (!(a = json_object_new_object())) {
        goto slow;
    }
    need = reply->vlen + server->vlen + tool->vlen + (ws__is_str(rid) ? rid->vlen : 0) +
           (ws__is_str(tp) ? tp->vlen : 0);
    if (!(out->own = malloc(need)))
        goto slow;
    at = out->own;
    out->op = WIRE_OP_CALL;
    out->reply = ws__copy(reply, &at);
    out->server = ws__copy(server, &at);
    out->tool = ws__copy(tool, &at);
    out->rid = ws__copy(rid, &at);
    if (out->rid && !reqid_valid(out->rid))
        out->rid = NULL;
    out->tp = ws__copy(tp, &at);
    out->args = a;
    out->root = a;   /* owned: what wire_req_clear puts */
    return 0;
slow:
    json_object_put(a);
    free(out->own);
    memset(out, 0, sizeof(*out));
    return 1;
}
