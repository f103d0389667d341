/* stream — the SSE chunk writer. Each function builds its events into a small
 * capped buffer, then writes and flushes them in one go. */
#include "fcgi/core/stream.h"
#include "shared/caps.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>


static const char stream__headers[] =
    "Cache-Control: no-cache\r\n"
    "X-Accel-Buffering: no\r\n";

void stream_init(stream_t *s, http_req_t *req, const char *model, const char *id,
                 long long created, int include_usage)
{
    memset(s, 0, sizeof(*s));
    s->req = req;
    s->model = model;
    snprintf(s->id, sizeof(s->id), "%s", id);
    s->created = created;
    s->include_usage = include_usage;
}

/* Appends one chunk built by oai_chunk (delta consumed). */
static int stream__chunk(stream_t *s, buf_t *b, json_object *delta, const char *finish)
{
    json_object *c = oai_chunk(s->id, s->created, s->model, delta, finish, s->include_usage);
    int rc;

    if (!c)
        return -ENOMEM;
    rc = oai_sse_event(b, c);
    json_object_put(c);
    return rc;
}

/* One content chunk, the bytes oai_chunk + oai_sse_event would write for a
 * {"content": text} delta, written straight into `b`: a stream sends one
 * per upstream piece, and building and printing a json-c tree for each cost
 * a dozen allocations per piece. */
static int stream__content(stream_t *s, buf_t *b, const char *text, size_t len)
{
    int rc;

    /* the frame and the piece (unescaped) in one allocation; when that
     * passes the cap, the appends below say whether the chunk fits */
    (void)buf_reserve(b, 224 + strlen(s->model) + len);
    rc = buf_puts(b, "data: {\"id\":");
    if (rc == 0)
        rc = buf_json_str(b, s->id, strlen(s->id));
    if (rc == 0)
        rc = buf_printf(b, ",\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":",
                        s->created);
    if (rc == 0)
        rc = buf_json_str(b, s->model, strlen(s->model));
    if (rc == 0)
        rc = buf_puts(b, ",\"choices\":[{\"index\":0,\"delta\":{\"content\":");
    if (rc == 0)
        rc = buf_json_str(b, text, len);
    if (rc == 0)
        rc = buf_puts(b, s->include_usage
                             ? "},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
                             : "},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
    return rc;
}

/* Headers plus the first chunk, once. */
static int stream__start(stream_t *s, buf_t *b)
{
    json_object *delta;
    int rc;

    if (s->started)
        return 0;
    rc = http_send_headers(s->req, 200, "text/event-stream", stream__headers);
    if (rc != 0)
        return rc;
    s->started = 1;
    delta = json_object_new_object();
    if (!delta)
        return -ENOMEM;
    json_object_object_add(delta, "role", json_object_new_string("assistant"));
    json_object_object_add(delta, "content", json_object_new_string(""));
    return stream__chunk(s, b, delta, NULL);
}

static int stream__send(stream_t *s, buf_t *b, int flush)
{
    int rc = http_write(s->req, b->data ? b->data : "", b->len, flush);

    buf_free(b);
    return rc;
}

int stream_begin(stream_t *s)
{
    buf_t b;
    int rc;

    if (s->started)
        return 0;
    buf_init(&b, CAP_SSE_OUT_EVENT);
    rc = stream__start(s, &b);
    if (rc != 0)
        goto out;
    return stream__send(s, &b, 1);
out:
    buf_free(&b);
    return s->req->client_gone ? -EPIPE : rc;
}

int stream_keepalive(stream_t *s)
{
    static const char comment[] = ": keep-alive\n\n";

    if (!s->started)
        return 0;
    return http_write(s->req, comment, sizeof(comment) - 1, 1) != 0 ? -EPIPE : 0;
}

int stream_delta(stream_t *s, const char *text, size_t len)
{
    buf_t b;
    int rc;

    buf_init(&b, CAP_SSE_OUT_EVENT);
    rc = stream__start(s, &b);
    if (rc != 0)
        goto out;
    if (len > 0 && (rc = stream__content(s, &b, text, len)) != 0)
        goto out;
    return stream__send(s, &b, !s->defer_flush);
out:
    buf_free(&b);
    return s->req->client_gone ? -EPIPE : rc;
}

int stream_extra(stream_t *s, const char *key, json_object *val)
{
    json_object *c = NULL;
    buf_t b;
    int rc;

    buf_init(&b, CAP_SSE_OUT_EVENT);
    if ((rc = stream__start(s, &b)) != 0)
        goto out;
    rc = -ENOMEM;
    c = oai_chunk(s->id, s->created, s->model, NULL, NULL, s->include_usage);
    if (!c || json_object_object_add(c, key, json_object_get(val)) != 0 ||
        (rc = oai_sse_event(&b, c)) != 0)
        goto out;
    json_object_put(c);
    return stream__send(s, &b, 1);
out:
    json_object_put(c);
    buf_free(&b);
    return s->req->client_gone ? -EPIPE : rc;
}

static int stream__end(stream_t *s, buf_t *b, const char *finish, json_object *usage)
{
    int rc = stream__chunk(s, b, NULL, finish);

    if (rc == 0 && s->include_usage) {
        json_object *u = oai_usage_chunk(s->id, s->created, s->model, usage);
        rc = u ? oai_sse_event(b, u) : -ENOMEM;
        json_object_put(u);
    }
    if (rc == 0)
        rc = buf_puts(b, "data: [DONE]\n\n");
    return rc;
}

int stream_flush(stream_t *s)
{
    if (!s->started)
        return 0;
    return http_write(s->req, "", 0, 1) != 0 ? -EPIPE : 0;
}

int stream_finish(stream_t *s, json_object *message, const char *finish_reason,
                  json_object *usage)
{
    buf_t b;
    json_object *tc;
    int rc;

    buf_init(&b, CAP_SSE_OUT_EVENT);
    rc = stream__start(s, &b);
    if (rc != 0)
        goto out;
    tc = oai_tool_calls_delta(message);
    if (tc) {
        rc = stream__chunk(s, &b, tc, NULL);
        if (rc != 0)
            goto out;
    }
    rc = stream__end(s, &b, oai_finish_reason(message, finish_reason), usage);
    if (rc != 0)
        goto out;
    return stream__send(s, &b, 1);
out:
    buf_free(&b);
    return s->req->client_gone ? -EPIPE : rc;
}

int stream_fail(stream_t *s, const aip_err_t *e)
{
    buf_t b;
    json_object *o;
    int rc;

    buf_init(&b, CAP_SSE_OUT_EVENT);
    rc = stream__start(s, &b);
    if (rc != 0)
        goto out;
    o = http_error_json(e->status, e->type[0] ? e->type : NULL, e->code, e->param,
                        http_err_msg(s->req, e->msg[0] ? e->msg : "unknown error"));
    if (!o) {
        rc = -ENOMEM;
        goto out;
    }
    rc = oai_sse_event(&b, o);
    json_object_put(o);
    if (rc != 0)
        goto out;
    return stream__send(s, &b, 1);
out:
    buf_free(&b);
    return s->req->client_gone ? -EPIPE : rc;
}
