/* accesslog — the access line, text or JSON (accesslog.h). */
#include "fcgi/core/accesslog.h"

#include "shared/jtext.h"
#include "shared/log.h"
#include "shared/utf8.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACCESSLOG_PATH_MAX 1024   /* bytes of the path a JSON line keeps */
/* cap of a JSON line's members: five strings of at most 1024 bytes, each
 * byte at most 6 when escaped, and the rest */
#define ACCESSLOG_LINE_MAX (5 * 6 * ACCESSLOG_PATH_MAX + 1024)

/* A string member, null when s is NULL; what a client sent stays valid UTF-8. */
static void accesslog__str(json_object *o, const char *k, const char *s, size_t max)
{
    size_t n;

    if (!s) {
        json_object_object_add(o, k, NULL);
        return;
    }
    n = strlen(s);
    json_object_object_add(o, k, jtext_new_echo(s, n > max ? max : n));
}

/* µs as ms with three decimals, as a JSON number written that way (json-c
 * would print a double with 17 digits). */
static json_object *accesslog__ms(long long us)
{
    char t[32];

    if (us < 0)
        us = 0;
    snprintf(t, sizeof(t), "%lld.%03lld", us / 1000, us % 1000);
    return json_object_new_double_s((double)us / 1e3, t);
}

json_object *accesslog_fields(const http_req_t *req, long long now_us)
{
    const reqinfo_t *ri = &req->info;
    json_object *o = json_object_new_object();

    if (!o)
        return NULL;
    accesslog__str(o, "request_id", ri->id[0] ? ri->id : NULL, sizeof(ri->id));
    accesslog__str(o, "method", req->method, 32);
    accesslog__str(o, "route", ri->route, ACCESSLOG_PATH_MAX);
    accesslog__str(o, "path", req->path, ACCESSLOG_PATH_MAX);
    accesslog__str(o, "assistant", ri->assistant, ACCESSLOG_PATH_MAX);
    accesslog__str(o, "key", ri->principal, ACCESSLOG_PATH_MAX);
    /* the status that went out; 499 when the client left before any did */
    json_object_object_add(o, "status", json_object_new_int(req->status ? req->status : 499));
    json_object_object_add(o, "client_gone", json_object_new_boolean(req->client_gone));
    json_object_object_add(o, "total_ms", accesslog__ms(now_us - ri->t0_us));
    json_object_object_add(o, "upstream_ms", accesslog__ms(ri->upstream_us));
    json_object_object_add(o, "tools_ms", accesslog__ms(ri->tools_us));
    json_object_object_add(o, "ttft_ms", ri->ttft_us > 0 ? accesslog__ms(ri->ttft_us) : NULL);
    json_object_object_add(o, "prompt_tokens", json_object_new_int64(ri->prompt_tokens));
    json_object_object_add(o, "completion_tokens", json_object_new_int64(ri->completion_tokens));
    json_object_object_add(o, "tool_calls", json_object_new_int64(ri->tool_calls));
    json_object_object_add(o, "tool_rounds", json_object_new_int(ri->tool_rounds));
    json_object_object_add(o, "bytes_out", json_object_new_int64((int64_t)ri->bytes_out));
    return o;
}

/* accesslog__str's member as text: ,"k":"…" or ,"k":null. */
static int accesslog__put_str(buf_t *b, const char *k, const char *s, size_t max)
{
    size_t n;
    char *clean;
    int rc;

    if ((rc = buf_puts(b, k)) < 0)
        return rc;
    if (!s)
        return buf_append(b, "null", 4);
    n = strlen(s);
    if (n > max)
        n = max;
    if (utf8_valid(s, n))
        return buf_json_str(b, s, n);
    if (!(clean = utf8_clean_dup(s, n, &n)))
        return -ENOMEM;
    rc = buf_json_str(b, clean, n);
    free(clean);
    return rc;
}

/* accesslog__ms as text. */
static int accesslog__put_ms(buf_t *b, const char *k, long long us)
{
    if (us < 0)
        us = 0;
    return buf_printf(b, "%s%lld.%03lld", k, us / 1000, us % 1000);
}

int accesslog_text(const http_req_t *req, long long now_us, buf_t *out)
{
    const reqinfo_t *ri = &req->info;
    int rc;

    /* the members and their order are accesslog_fields's (a unit test
     * compares the two texts): a JSON-format responder writes one line per
     * request, and the json-c tree of 17 members was most of its cost */
    if ((rc = accesslog__put_str(out, "{\"request_id\":", ri->id[0] ? ri->id : NULL,
                                 sizeof(ri->id))) < 0 ||
        (rc = accesslog__put_str(out, ",\"method\":", req->method, 32)) < 0 ||
        (rc = accesslog__put_str(out, ",\"route\":", ri->route, ACCESSLOG_PATH_MAX)) < 0 ||
        (rc = accesslog__put_str(out, ",\"path\":", req->path, ACCESSLOG_PATH_MAX)) < 0 ||
        (rc = accesslog__put_str(out, ",\"assistant\":", ri->assistant, ACCESSLOG_PATH_MAX)) < 0 ||
        (rc = accesslog__put_str(out, ",\"key\":", ri->principal, ACCESSLOG_PATH_MAX)) < 0 ||
        (rc = buf_printf(out, ",\"status\":%d,\"client_gone\":%s",
                         req->status ? req->status : 499,
                         req->client_gone ? "true" : "false")) < 0 ||
        (rc = accesslog__put_ms(out, ",\"total_ms\":", now_us - ri->t0_us)) < 0 ||
        (rc = accesslog__put_ms(out, ",\"upstream_ms\":", ri->upstream_us)) < 0 ||
        (rc = accesslog__put_ms(out, ",\"tools_ms\":", ri->tools_us)) < 0)
        return rc;
    if (ri->ttft_us > 0)
        rc = accesslog__put_ms(out, ",\"ttft_ms\":", ri->ttft_us);
    else
        rc = buf_puts(out, ",\"ttft_ms\":null");
    if (rc < 0)
        return rc;
    return buf_printf(out, ",\"prompt_tokens\":%lld,\"completion_tokens\":%lld,"
                      "\"tool_calls\":%u,\"tool_rounds\":%d,\"bytes_out\":%zu}",
                      ri->prompt_tokens, ri->completion_tokens, ri->tool_calls,
                      ri->tool_rounds, ri->bytes_out);
}

void accesslog_write(const http_req_t *req)
{
    buf_t b;

    if (!log_enabled(LOG_LVL_INFO))
        return;
    if (!log_json()) {
        /* tenths of a ms in integers: %.1f of a double was a third of the line's cost */
        long long t = (reqinfo_now_us() - req->info.t0_us + 50) / 100;
        if (t < 0)
            t = 0;
        log_held(LOG_LVL_INFO, "%s %s %d %lld.%lldms%s", req->method, req->path,
                 req->client_gone ? 499 : req->status, t / 10, t % 10,
                 req->client_gone ? " (client gone)" : "");
        return;
    }
    buf_init(&b, ACCESSLOG_LINE_MAX);
    (void)buf_reserve(&b, 512);
    if (accesslog_text(req, reqinfo_now_us(), &b) == 0)
        log_fields_held(LOG_LVL_INFO, "access", buf_str(&b));
    buf_free(&b);
}
