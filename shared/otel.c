/* otel — trace context, span records and the OTLP JSON encoding: the pure
 * half of otel.h (the exporter, configuration and sampler are
 * otel_export.c). */
#include "shared/otel.h"

#include "shared/buf.h"
#include "shared/rid.h"

#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int otel__hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;   /* upper case is invalid in traceparent */
}

/* n bytes from 2n lowercase hex digits. 0, or -EINVAL. */
static int otel__unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = otel__hexval(s[2 * i]), lo = otel__hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static int otel__zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

int otel_tp_parse(const char *s, otel_ctx_t *out)
{
    uint8_t ver;
    size_t len;

    if (!s)
        return -EINVAL;
    while (*s == ' ' || *s == '\t')
        s++;
    len = strlen(s);
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len < OTEL_TP_LEN || s[2] != '-' || s[35] != '-' || s[52] != '-')
        return -EINVAL;
    if (otel__unhex(s, &ver, 1) < 0 || ver == 0xff)
        return -EINVAL;
    /* version 00 is exactly 55 characters; a later version may append
     * fields after a '-' and is read as 00 (the spec's forward rule) */
    if (ver == 0 ? len != OTEL_TP_LEN : len > OTEL_TP_LEN && s[OTEL_TP_LEN] != '-')
        return -EINVAL;
    if (otel__unhex(s + 3, out->trace_id, 16) < 0 || otel__unhex(s + 36, out->span_id, 8) < 0 ||
        otel__unhex(s + 53, &out->flags, 1) < 0)
        return -EINVAL;
    if (otel__zero(out->trace_id, 16) || otel__zero(out->span_id, 8))
        return -EINVAL;
    if (ver > 0)
        out->flags &= 1;   /* only the flags we know go on */
    return 0;
}

void otel_hex(const uint8_t *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = '\0';
}

void otel_tp_format(const otel_ctx_t *c, char *out)
{
    memcpy(out, "00-", 3);
    otel_hex(c->trace_id, 16, out + 3);
    out[35] = '-';
    otel_hex(c->span_id, 8, out + 36);
    out[52] = '-';
    otel_hex(&c->flags, 1, out + 53);
}

long long otel_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Copies s (NUL included) into the span's text; its offset, or -1 when it
 * does not fit. */
static long otel__text(otel_span_t *sp, const char *s)
{
    size_t n = strlen(s) + 1, at = sp->text_len;

    if (n > sizeof(sp->text) - sp->text_len)
        return -1;
    memcpy(sp->text + at, s, n);
    sp->text_len += n;
    return (long)at;
}

void otel_span_start(otel_span_t *sp, const otel_ctx_t *parent, const char *name,
                     enum otel_kind kind)
{
    long at;

    /* the header only: text is written as it fills */
    memset(sp, 0, offsetof(otel_span_t, text));
    sp->text_len = 0;
    if (parent) {
        memcpy(sp->ctx.trace_id, parent->trace_id, 16);
        memcpy(sp->parent_id, parent->span_id, 8);
        sp->ctx.flags = parent->flags;
    } else {
        do
            rid_bytes(sp->ctx.trace_id, 16);
        while (otel__zero(sp->ctx.trace_id, 16));
        sp->ctx.flags = 1;
    }
    do
        rid_bytes(sp->ctx.span_id, 8);
    while (otel__zero(sp->ctx.span_id, 8));
    sp->kind = kind;
    sp->status_msg = (size_t)-1;
    at = otel__text(sp, name ? name : "span");
    sp->name = at < 0 ? 0 : (size_t)at;
    if (at < 0)
        (void)otel__text(sp, "span");
    sp->start_ns = otel_now_ns();
}

static otel_attr_t *otel__attr(otel_span_t *sp, const char *key, enum otel_atype t)
{
    otel_attr_t *a;

    if (!key || sp->nattrs >= OTEL_ATTRS)
        return NULL;
    a = &sp->attrs[sp->nattrs];
    a->key = key;
    a->type = t;
    return a;
}

void otel_span_str(otel_span_t *sp, const char *key, const char *val)
{
    otel_attr_t *a = val ? otel__attr(sp, key, OTEL_A_STR) : NULL;
    long at;

    if (!a || (at = otel__text(sp, val)) < 0)
        return;
    a->v.s = (size_t)at;
    sp->nattrs++;
}

void otel_span_int(otel_span_t *sp, const char *key, long long val)
{
    otel_attr_t *a = otel__attr(sp, key, OTEL_A_INT);

    if (!a)
        return;
    a->v.i = val;
    sp->nattrs++;
}

void otel_span_double(otel_span_t *sp, const char *key, double val)
{
    otel_attr_t *a = otel__attr(sp, key, OTEL_A_DOUBLE);

    if (!a)
        return;
    a->v.d = val;
    sp->nattrs++;
}

void otel_span_bool(otel_span_t *sp, const char *key, int val)
{
    otel_attr_t *a = otel__attr(sp, key, OTEL_A_BOOL);

    if (!a)
        return;
    a->v.b = !!val;
    sp->nattrs++;
}

void otel_span_status(otel_span_t *sp, enum otel_status st, const char *msg)
{
    long at;

    sp->status = st;
    if (st == OTEL_STATUS_ERROR && msg && sp->status_msg == (size_t)-1 &&
        (at = otel__text(sp, msg)) >= 0)
        sp->status_msg = (size_t)at;
}

/* --- OTLP JSON ------------------------------------------------------------- */

/* s as a JSON string; control bytes escaped, the rest as is (the values we
 * set are UTF-8 from the registry, the client or the model's tool names). */
static int otel__jstr(buf_t *b, const char *s)
{
    int rc = buf_puts(b, "\"");

    for (; rc == 0 && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            rc = buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            rc = buf_printf(b, "\\u%04x", c);
        else
            rc = buf_append(b, s, 1);
    }
    return rc ? rc : buf_puts(b, "\"");
}

static int otel__kv(buf_t *b, const otel_span_t *sp, const otel_attr_t *a)
{
    int rc = buf_puts(b, "{\"key\":");

    rc = rc ? rc : otel__jstr(b, a->key);
    switch (a->type) {
    case OTEL_A_STR:
        rc = rc ? rc : buf_puts(b, ",\"value\":{\"stringValue\":");
        rc = rc ? rc : otel__jstr(b, sp->text + a->v.s);
        rc = rc ? rc : buf_puts(b, "}}");
        break;
    case OTEL_A_INT:
        rc = rc ? rc : buf_printf(b, ",\"value\":{\"intValue\":\"%lld\"}}", a->v.i);
        break;
    case OTEL_A_DOUBLE:
        /* JSON has no NaN or infinity */
        rc = rc ? rc : buf_printf(b, ",\"value\":{\"doubleValue\":%.17g}}",
                                  a->v.d == a->v.d && a->v.d - a->v.d == 0 ? a->v.d : 0.0);
        break;
    default:
        rc = rc ? rc : buf_printf(b, ",\"value\":{\"boolValue\":%s}}", a->v.b ? "true" : "false");
        break;
    }
    return rc;
}

static int otel__span_json(buf_t *b, const otel_span_t *sp)
{
    char tid[33], sid[17], pid[17];
    int rc;

    otel_hex(sp->ctx.trace_id, 16, tid);
    otel_hex(sp->ctx.span_id, 8, sid);
    otel_hex(sp->parent_id, 8, pid);
    rc = buf_printf(b, "{\"traceId\":\"%s\",\"spanId\":\"%s\",", tid, sid);
    if (!rc && !otel__zero(sp->parent_id, 8))
        rc = buf_printf(b, "\"parentSpanId\":\"%s\",", pid);
    rc = rc ? rc : buf_puts(b, "\"name\":");
    rc = rc ? rc : otel__jstr(b, sp->text + sp->name);
    rc = rc ? rc : buf_printf(b, ",\"kind\":%d,\"startTimeUnixNano\":\"%lld\","
                              "\"endTimeUnixNano\":\"%lld\",\"attributes\":[",
                              (int)sp->kind, sp->start_ns, sp->end_ns);
    for (size_t i = 0; !rc && i < sp->nattrs; i++) {
        if (i)
            rc = buf_puts(b, ",");
        rc = rc ? rc : otel__kv(b, sp, &sp->attrs[i]);
    }
    rc = rc ? rc : buf_printf(b, "],\"status\":{\"code\":%d", (int)sp->status);
    if (!rc && sp->status_msg != (size_t)-1) {
        rc = buf_puts(b, ",\"message\":");
        rc = rc ? rc : otel__jstr(b, sp->text + sp->status_msg);
    }
    return rc ? rc : buf_puts(b, "}}");
}

char *otel_encode(const otel_span_t *const *spans, size_t n, const char *service)
{
    buf_t b;
    int rc;

    buf_init(&b, (size_t)64 << 20);   /* OTLP's own body limit */
    rc = buf_puts(&b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
                      "{\"key\":\"service.name\",\"value\":{\"stringValue\":");
    rc = rc ? rc : otel__jstr(&b, service ? service : "aiproxy");
    rc = rc ? rc : buf_puts(&b, "}},{\"key\":\"telemetry.sdk.language\",\"value\":"
                                "{\"stringValue\":\"c\"}},{\"key\":\"telemetry.sdk.name\","
                                "\"value\":{\"stringValue\":\"aiproxy\"}}]},"
                                "\"scopeSpans\":[{\"scope\":{\"name\":\"aiproxy\"},\"spans\":[");
    for (size_t i = 0; !rc && i < n; i++) {
        if (i)
            rc = buf_puts(&b, ",");
        rc = rc ? rc : otel__span_json(&b, spans[i]);
    }
    rc = rc ? rc : buf_puts(&b, "]}]}]}");
    if (rc) {
        buf_free(&b);
        return NULL;
    }
    return buf_detach(&b);
}
