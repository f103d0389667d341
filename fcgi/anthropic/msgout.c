/* msgout — Messages answers: builders, then the SSE writer. Each stream
 * function builds its events into a capped buffer and writes them in one go. */
#include "fcgi/anthropic/msgout.h"
#include "agent/anthvocab.h"
#include "shared/jget.h"
#include "shared/caps.h"

#include "fcgi/openai/oai.h"
#include "shared/jtext.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>


static const char msgout__headers[] =
    "Cache-Control: no-cache\r\n"
    "X-Accel-Buffering: no\r\n";

void msgout_new_id(char out[MSGOUT_ID_MAX])
{
    char oid[OAI_ID_MAX];

    /* oai_new_id's random part after its "chatcmpl-" prefix. */
    oai_new_id(oid);
    snprintf(out, MSGOUT_ID_MAX, "msg_%s", oid + 9);
}

static json_object *msgout__tool_calls(json_object *message)
{
    json_object *tc = NULL;

    if (message && json_object_object_get_ex(message, "tool_calls", &tc) &&
        json_object_is_type(tc, json_type_array) && json_object_array_length(tc) > 0)
        return tc;
    return NULL;
}

const char *msgout_stop_reason(json_object *message, const char *finish_reason)
{
    if (msgout__tool_calls(message))
        return ANTHV_BLOCK_TOOL_USE;
    return anthv_stop_reason(finish_reason);
}

json_object *msgout_usage(json_object *usage)
{
    json_object *u = json_object_new_object();

    if (!u)
        return NULL;
    json_object_object_add(u, "input_tokens",
                           json_object_new_int64(jget_int64(usage, "prompt_tokens", 0)));
    json_object_object_add(u, "output_tokens",
                           json_object_new_int64(jget_int64(usage, "completion_tokens", 0)));
    return u;
}

/* The text of the agent's message, "" when none. */
static const char *msgout__text(json_object *message, size_t *len)
{
    const char *s = jget_strn(message, "content", len);

    return s ? s : "";
}

/* One tool call -> {type: tool_use, id, name, input}. */
static json_object *msgout__tool_use(json_object *tc, int with_input)
{
    json_object *b = json_object_new_object(), *fn = NULL, *v = NULL, *input = NULL;

    if (!b)
        return NULL;
    json_object_object_get_ex(tc, "function", &fn);
    json_object_object_add(b, "type", json_object_new_string(ANTHV_BLOCK_TOOL_USE));
    json_object_object_add(b, "id", json_object_object_get_ex(tc, "id", &v)
                                        ? json_object_get(v) : json_object_new_string(""));
    json_object_object_add(b, "name", json_object_object_get_ex(fn, "name", &v)
                                          ? json_object_get(v) : json_object_new_string(""));
    if (with_input && json_object_object_get_ex(fn, "arguments", &v))
        input = json_tokener_parse(json_object_get_string(v));
    if (!json_object_is_type(input, json_type_object)) {
        json_object_put(input);
        input = json_object_new_object();
    }
    json_object_object_add(b, "input", input);
    return b;
}

json_object *msgout_message(const char *id, const char *model, json_object *message,
                            const char *finish_reason, json_object *usage)
{
    json_object *o = json_object_new_object(), *content = json_object_new_array(), *tcs, *blk;
    json_object *res = NULL;
    const char *text;
    size_t len, i, n;

    if (!o || !content)
        goto out;
    text = msgout__text(message, &len);
    if (len > 0) {
        blk = json_object_new_object();
        if (!blk || json_object_array_add(content, blk) != 0) {
            json_object_put(blk);
            goto out;
        }
        json_object_object_add(blk, "type", json_object_new_string(ANTHV_BLOCK_TEXT));
        json_object_object_add(blk, "text", json_object_new_string_len(text, (int)len));
    }
    tcs = msgout__tool_calls(message);
    n = tcs ? json_object_array_length(tcs) : 0;
    for (i = 0; i < n; i++) {
        blk = msgout__tool_use(json_object_array_get_idx(tcs, i), 1);
        if (!blk || json_object_array_add(content, blk) != 0) {
            json_object_put(blk);
            goto out;
        }
    }
    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_object_add(o, "type", json_object_new_string("message"));
    json_object_object_add(o, "role", json_object_new_string("assistant"));
    json_object_object_add(o, "model", json_object_new_string(model));
    json_object_object_add(o, "content", content);
    content = NULL;
    json_object_object_add(o, "stop_reason",
                           json_object_new_string(msgout_stop_reason(message, finish_reason)));
    json_object_object_add(o, "stop_sequence", NULL);
    json_object_object_add(o, "usage", msgout_usage(usage));
    res = o;
    o = NULL;
out:
    json_object_put(o);
    json_object_put(content);
    return res;
}

const char *msgout_error_type(int status)
{
    return anthv_error_type(status);
}

json_object *msgout_error_json(int status, const char *type, const char *message)
{
    json_object *o = json_object_new_object(), *e = json_object_new_object();

    if (!o || !e) {
        json_object_put(o);
        json_object_put(e);
        return NULL;
    }
    json_object_object_add(e, "type", json_object_new_string(type && *type ? type
                                                             : msgout_error_type(status)));
    json_object_object_add(e, "message", jtext_new_echo(message, message ? strlen(message) : 0));
    json_object_object_add(o, "type", json_object_new_string("error"));
    json_object_object_add(o, "error", e);
    return o;
}

int msgout_send_error(http_req_t *req, int status, const char *type, const char *fmt, ...)
{
    static const char fallback[] =
        "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"out of memory\"}}";
    char msg[1200];
    va_list ap;
    json_object *o;
    int rc;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    o = msgout_error_json(status, type, http_err_msg(req, msg));
    if (!o)
        return http_send(req, 500, "application/json", NULL, fallback, sizeof(fallback) - 1);
    rc = http_send_json(req, status, o, NULL);
    json_object_put(o);
    return rc;
}

/* ---- the stream ---- */

void msgout_stream_init(msgout_stream_t *s, http_req_t *req, const char *model, const char *id)
{
    memset(s, 0, sizeof(*s));
    s->req = req;
    s->model = model;
    snprintf(s->id, sizeof(s->id), "%s", id);
}

/* Appends "event: <type>\ndata: <obj>\n\n"; consumes obj (NULL: -ENOMEM). */
static int msgout__event(buf_t *b, const char *type, json_object *obj)
{
    size_t len = 0;
    const char *s;
    int rc = -ENOMEM;

    if (!obj)
        return -ENOMEM;
    json_object_object_add(obj, "type", json_object_new_string(type));
    s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN |
                                          JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (s) {
        rc = buf_printf(b, "event: %s\ndata: ", type);
        if (rc == 0)
            rc = buf_append(b, s, len);
        if (rc == 0)
            rc = buf_append(b, "\n\n", 2);
    }
    json_object_put(obj);
    return rc;
}

/* {index: i} plus key=val (consumed) when key is set. */
static json_object *msgout__indexed(int index, const char *key, json_object *val)
{
    json_object *o = json_object_new_object();

    if (!o) {
        json_object_put(val);
        return NULL;
    }
    json_object_object_add(o, "index", json_object_new_int(index));
    if (key)
        json_object_object_add(o, key, val);
    return o;
}

static json_object *msgout__pair(const char *k1, const char *v1, const char *k2,
                                 json_object *v2)
{
    json_object *o = json_object_new_object();

    if (!o) {
        json_object_put(v2);
        return NULL;
    }
    json_object_object_add(o, k1, json_object_new_string(v1));
    if (k2)
        json_object_object_add(o, k2, v2);
    return o;
}

/* Headers and message_start, once. */
static int msgout__start(msgout_stream_t *s, buf_t *b)
{
    json_object *m, *o;
    int rc;

    if (s->started)
        return 0;
    rc = http_send_headers(s->req, 200, "text/event-stream", msgout__headers);
    if (rc != 0)
        return rc;
    s->started = 1;
    m = msgout_message(s->id, s->model, NULL, NULL, NULL);
    if (!m)
        return -ENOMEM;
    json_object_object_add(m, "stop_reason", NULL);
    o = json_object_new_object();
    if (!o) {
        json_object_put(m);
        return -ENOMEM;
    }
    json_object_object_add(o, "message", m);
    return msgout__event(b, "message_start", o);
}

static int msgout__open_text(msgout_stream_t *s, buf_t *b)
{
    if (s->text_open)
        return 0;
    s->text_open = 1;
    s->nblocks++;
    return msgout__event(b, "content_block_start",
                         msgout__indexed(0, "content_block",
                                         msgout__pair("type", ANTHV_BLOCK_TEXT, "text",
                                                      json_object_new_string(""))));
}

static int msgout__send(msgout_stream_t *s, buf_t *b, int flush)
{
    int rc = http_write(s->req, b->data ? b->data : "", b->len, flush);

    buf_free(b);
    return rc;
}

int msgout_stream_begin(msgout_stream_t *s)
{
    buf_t b;
    int rc;

    if (s->started)
        return 0;
    buf_init(&b, CAP_SSE_OUT_EVENT);
    if ((rc = msgout__start(s, &b)) != 0)
        goto out;
    return msgout__send(s, &b, 1);
out:
    buf_free(&b);
    return s->req->client_gone ? -EPIPE : rc;
}

int msgout_stream_ping(msgout_stream_t *s)
{
    static const char ping[] = "event: ping\ndata: {\"type\": \"ping\"}\n\n";

    if (!s->started)
        return 0;
    return http_write(s->req, ping, sizeof(ping) - 1, 1) != 0 ? -EPIPE : 0;
}

int msgout_stream_delta(msgout_stream_t *s, const char *text, size_t len)
{
    buf_t b;
    int rc;

    buf_init(&b, CAP_SSE_OUT_EVENT);
    if ((rc = msgout__start(s, &b)) != 0)
        goto out;
    if (len > 0) {
        if ((rc = msgout__open_text(s, &b)) != 0)
            goto out;
        rc = msgout__event(&b, "content_block_delta",
                           msgout__indexed(0, "delta", msgout__pair(
                               "type", ANTHV_DELTA_TEXT, "text",
                               json_object_new_string_len(text, (int)len))));
        if (rc != 0)
            goto out;
    }
    return msgout__send(s, &b, !s->defer_flush);
out:
    buf_free(&b);
    return s->req->client_gone ? -EPIPE : rc;
}

int msgout_stream_flush(msgout_stream_t *s)
{
    if (!s->started)
        return 0;
    return http_write(s->req, "", 0, 1) != 0 ? -EPIPE : 0;
}

int msgout_stream_extra(msgout_stream_t *s, const char *type, const char *key,
                        json_object *val)
{
    json_object *o;
    buf_t b;
    int rc;

    buf_init(&b, CAP_SSE_OUT_EVENT);
    if ((rc = msgout__start(s, &b)) != 0)
        goto out;
    o = json_object_new_object();
    if (o && (json_object_object_add(o, "type", json_object_new_string(type)) != 0 ||
              json_object_object_add(o, key, json_object_get(val)) != 0)) {
        json_object_put(o);
        o = NULL;
    }
    if ((rc = msgout__event(&b, type, o)) != 0)
        goto out;
    return msgout__send(s, &b, 1);
out:
    buf_free(&b);
    return s->req->client_gone ? -EPIPE : rc;
}

/* content_block_start/delta/stop of one tool_use block at index i. */
static int msgout__tool_block(buf_t *b, int i, json_object *tc)
{
    json_object *fn = NULL, *args = NULL;
    const char *a = "{}";
    int rc;

    rc = msgout__event(b, "content_block_start",
                       msgout__indexed(i, "content_block", msgout__tool_use(tc, 0)));
    if (rc != 0)
        return rc;
    if (json_object_object_get_ex(tc, "function", &fn) &&
        json_object_object_get_ex(fn, "arguments", &args) &&
        json_object_is_type(args, json_type_string) && json_object_get_string_len(args) > 0)
        a = json_object_get_string(args);
    rc = msgout__event(b, "content_block_delta",
                       msgout__indexed(i, "delta", msgout__pair("type", ANTHV_DELTA_INPUT_JSON,
                                                                "partial_json",
                                                                json_object_new_string(a))));
    if (rc != 0)
        return rc;
    return msgout__event(b, "content_block_stop", msgout__indexed(i, NULL, NULL));
}

int msgout_stream_finish(msgout_stream_t *s, json_object *message, const char *finish_reason,
                         json_object *usage)
{
    buf_t b;
    json_object *tcs, *delta, *o;
    size_t i, n;
    int rc;

    buf_init(&b, CAP_SSE_OUT_EVENT);
    if ((rc = msgout__start(s, &b)) != 0)
        goto out;
    if (s->text_open) {
        s->text_open = 0;
        if ((rc = msgout__event(&b, "content_block_stop", msgout__indexed(0, NULL, NULL))) != 0)
            goto out;
    }
    tcs = msgout__tool_calls(message);
    n = tcs ? json_object_array_length(tcs) : 0;
    for (i = 0; i < n; i++) {
        if ((rc = msgout__tool_block(&b, s->nblocks++, json_object_array_get_idx(tcs, i))) != 0)
            goto out;
    }
    rc = -ENOMEM;
    delta = msgout__pair("stop_reason", msgout_stop_reason(message, finish_reason),
                         "stop_sequence", NULL);
    o = json_object_new_object();
    if (!delta || !o) {
        json_object_put(delta);
        json_object_put(o);
        goto out;
    }
    json_object_object_add(o, "delta", delta);
    json_object_object_add(o, "usage", msgout_usage(usage));
    if ((rc = msgout__event(&b, "message_delta", o)) != 0 ||
        (rc = msgout__event(&b, "message_stop", json_object_new_object())) != 0)
        goto out;
    return msgout__send(s, &b, 1);
out:
    buf_free(&b);
    return s->req->client_gone ? -EPIPE : rc;
}

int msgout_stream_fail(msgout_stream_t *s, int status, const char *type, const char *msg)
{
    buf_t b;
    json_object *e;
    int rc;

    buf_init(&b, CAP_SSE_OUT_EVENT);
    if ((rc = msgout__start(s, &b)) != 0)
        goto out;
    e = msgout_error_json(status, type, http_err_msg(s->req, msg ? msg : "unknown error"));
    if (e)
        json_object_object_del(e, "type");   /* msgout__event sets it */
    if ((rc = msgout__event(&b, "error", e)) != 0)
        goto out;
    return msgout__send(s, &b, 1);
out:
    buf_free(&b);
    return s->req->client_gone ? -EPIPE : rc;
}
