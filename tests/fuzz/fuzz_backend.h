/* fuzz_backend — one driver for an LLM backend's parsers (agent/backend.h),
 * included by fuzz_openai.c and fuzz_anthropic.c with their be_ops_t.
 *
 * Input: byte 0 picks the mode, byte 1 a limit, the rest is what the upstream
 * sent:
 *   mode 0  parse() on a whole response body;
 *   mode 1  the body as an SSE stream, each event to stream_event() as
 *           upstream.c feeds them (the content cap from byte 1);
 *   mode 2  the same, with a sink that stops after byte 1 pieces;
 *   mode 3  error() on an error body with a status from byte 1.
 * Checks: every return is one the contract lists, an error names itself, the
 * content the sink saw is the turn's content, and the tool calls in the turn
 * have the canonical shape. */
#ifndef AIPROXY_FUZZ_BACKEND_H
#define AIPROXY_FUZZ_BACKEND_H

#include "agent/backend.h"
#include "shared/buf.h"
#include "shared/sse.h"
#include "tests/fuzz/fuzz_split.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct fb_run {
    const be_ops_t *be;
    void *st;
    buf_t seen;          /* what the sink received */
    long stop_after;     /* pieces before the sink stops, -1 never */
    int done, failed;
    char err[256];
} fb_run_t;

static int fb__sink(void *ud, const char *text, size_t len)
{
    fb_run_t *r = ud;

    if (r->stop_after == 0)
        return 1;
    if (r->stop_after > 0)
        r->stop_after--;
    if (buf_append(&r->seen, text, len) < 0)
        abort();
    return 0;
}

static void fb__turn_ok(const be_turn_t *t)
{
    size_t i, n;

    if (memchr(t->finish_reason, '\0', sizeof t->finish_reason) == NULL)
        abort();
    if (t->content.data && t->content.data[t->content.len] != '\0')
        abort();
    if (!t->tool_calls)
        return;
    if (!json_object_is_type(t->tool_calls, json_type_array))
        abort();
    n = json_object_array_length(t->tool_calls);
    for (i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(t->tool_calls, i), *fn = NULL, *v = NULL;
        if (!json_object_is_type(c, json_type_object) ||
            !json_object_object_get_ex(c, "function", &fn) ||
            !json_object_is_type(fn, json_type_object) ||
            !json_object_object_get_ex(fn, "arguments", &v) || !json_object_is_type(v, json_type_string) ||
            !json_object_object_get_ex(fn, "name", &v) || !json_object_is_type(v, json_type_string))
            abort();
    }
}

static int fb__event(void *ud, const char *event, const char *data, size_t len, const char *id)
{
    fb_run_t *r = ud;
    int status = 0, rc;

    r->err[0] = '\0';
    rc = r->be->stream_event(r->st, event, data, len, &status, r->err, sizeof r->err);
    switch (rc) {
    case 0:
        return 0;
    case 1:
        r->done = 1;
        return 1;
    case -EPROTO:
        if (!r->err[0])
            abort();
        break;
    case -EREMOTEIO:
        if (!r->err[0] || status < 400 || status > 599)
            abort();
        break;
    case -ECANCELED:
        break;
    default:
        abort();
    }
    r->failed = rc;
    return 1;
}

static void fb__stream(const be_ops_t *be, const char *body, size_t n, size_t cap, long stop_after)
{
    fb_run_t r;
    be_turn_t turn;
    be_sink_t sink = {fb__sink, &r};
    sse_parser_t *p;

    memset(&r, 0, sizeof r);
    r.be = be;
    r.stop_after = stop_after;
    buf_init(&r.seen, 64u << 20);
    be_turn_init(&turn, cap);
    r.st = be->stream_new(&turn, &sink);
    p = sse_new(1u << 20, fb__event, &r);
    if (!r.st || !p)
        abort();
    sse_feed(p, body, n);
    sse_feed(p, "\n\n", 2);         /* the end of the body ends the last event */
    be->stream_free(r.st);          /* may still write the calls into the turn */
    fb__turn_ok(&turn);
    /* the sink saw exactly the content the turn holds, unless it stopped or
     * the cap cut the stream */
    if (!r.failed && (r.seen.len != turn.content.len ||
                      (r.seen.len && memcmp(r.seen.data, turn.content.data, r.seen.len))))
        abort();
    sse_free(p);
    be_turn_clear(&turn);
    buf_free(&r.seen);
}

static void fb__parse(const be_ops_t *be, const char *body, size_t n, size_t cap)
{
    be_turn_t turn;
    char err[256] = "";
    int rc;

    be_turn_init(&turn, cap);
    rc = be->parse(body, n, &turn, err, sizeof err);
    if (rc != 0 && (rc != -EPROTO || !err[0]))
        abort();
    fb__turn_ok(&turn);
    be_turn_clear(&turn);
}

static void fb__error(const be_ops_t *be, const char *body, size_t n, int status)
{
    char type[64], msg[512];
    int out = 0;

    memset(type, 0x5a, sizeof type);
    memset(msg, 0x5a, sizeof msg);
    be->error(status, body, n, &out, type, sizeof type, msg, sizeof msg);
    if (!memchr(type, '\0', sizeof type) || !memchr(msg, '\0', sizeof msg) || !type[0] || !msg[0] ||
        out < 400 || out > 599)
        abort();
}

static int fb_run(const be_ops_t *be, const uint8_t *data, size_t size)
{
    static const size_t caps[] = {0, 16, 4096, 1u << 20};
    char *body;
    size_t n;

    if (size < 2)
        return 0;
    n = size - 2;
    body = fuzz_strndup(data + 2, n);     /* upstream.c hands over a NUL-terminated body */
    switch (data[0] & 3) {
    case 0:
        fb__parse(be, body, n, caps[data[1] & 3]);
        break;
    case 1:
        fb__stream(be, body, n, caps[data[1] & 3], -1);
        break;
    case 2:
        fb__stream(be, body, n, 1u << 20, data[1] & 7);
        break;
    default:
        fb__error(be, body, n, 400 + data[1] % 200);
        break;
    }
    free(body);
    return 0;
}

#endif
