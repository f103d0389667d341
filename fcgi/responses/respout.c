/* respout — the response object and its event stream (respout.h). Each
 * stream writer builds its events into one capped buffer, then writes it. */
#include "fcgi/responses/respout.h"

#include "shared/jget.h"
#include "shared/rid.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char ro__headers[] = "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n";

void respout_new_id(char *out, const char *prefix)
{
    char r[25];

    rid_alnum(r, sizeof(r) - 1);
    snprintf(out, RESPOUT_ID_MAX, "%s%s", prefix, r);
}

int respout_init(respout_t *o, http_req_t *req, json_object *in, const char *model,
                 long long created, int stream)
{
    memset(o, 0, sizeof(*o));
    o->req = req;
    o->in = in;
    o->model = model;
    o->created = created;
    o->stream = stream;
    o->msg_idx = -1;
    buf_init(&o->text, CAP_AG_CONTENT);
    respout_new_id(o->id, "resp_");
    o->output = json_object_new_array();
    return o->output ? 0 : -ENOMEM;
}

void respout_clear(respout_t *o)
{
    json_object_put(o->output);
    o->output = NULL;
    json_object_put(o->final);
    o->final = NULL;
    buf_free(&o->text);
}

static int ro__set(json_object *o, const char *key, json_object *val)
{
    if (!val)
        return -ENOMEM;
    if (json_object_object_add(o, key, val) != 0) {
        json_object_put(val);
        return -ENOMEM;
    }
    return 0;
}

/* key = null */
static int ro__null(json_object *o, const char *key)
{
    return json_object_object_add(o, key, NULL) == 0 ? 0 : -ENOMEM;
}

/* Appends "event: <type>\ndata: <ev>\n\n" to b, ev getting its type and the
 * next sequence_number. Consumes ev. */
static int ro__event(respout_t *o, buf_t *b, const char *type, json_object *ev)
{
    size_t len;
    const char *js;
    int rc = -ENOMEM;

    if (!ev)
        return -ENOMEM;
    if (ro__set(ev, "type", json_object_new_string(type)) < 0 ||
        ro__set(ev, "sequence_number", json_object_new_int64(o->seq)) < 0)
        goto out;
    o->seq++;
    js = json_object_to_json_string_length(ev, JSON_C_TO_STRING_PLAIN, &len);
    if (!js || buf_printf(b, "event: %s\ndata: ", type) < 0 || buf_append(b, js, len) < 0 ||
        buf_append(b, "\n\n", 2) < 0)
        goto out;
    rc = 0;
out:
    json_object_put(ev);
    return rc;
}

/* A new {item_id?, output_index} event body. */
static json_object *ro__at(const char *item_id, int idx)
{
    json_object *e = json_object_new_object();

    if (!e || (item_id && ro__set(e, "item_id", json_object_new_string(item_id)) < 0) ||
        ro__set(e, "output_index", json_object_new_int(idx)) < 0) {
        json_object_put(e);
        return NULL;
    }
    return e;
}

/* An event {output_index, item} (added / done). */
static int ro__item_event(respout_t *o, buf_t *b, const char *type, int idx, json_object *item)
{
    json_object *e = ro__at(NULL, idx);

    if (e && ro__set(e, "item", json_object_get(item)) < 0) {
        json_object_put(e);
        return -ENOMEM;
    }
    return ro__event(o, b, type, e);
}

/* An event {item_id, output_index, key: val(consumed)}; key NULL: none. */
static int ro__at_event(respout_t *o, buf_t *b, const char *type, const char *item_id,
                        int idx, const char *key, json_object *val)
{
    json_object *e = ro__at(item_id, idx);

    if (key && e && ro__set(e, key, val) < 0) {
        json_object_put(e);
        return -ENOMEM;
    }
    if (!key)
        json_object_put(val);
    return ro__event(o, b, type, e);
}

static int ro__send(respout_t *o, buf_t *b, int flush)
{
    int rc = http_write(o->req, b->data ? b->data : "", b->len, flush);

    buf_free(b);
    return rc != 0 ? -EPIPE : 0;
}

/* Ends a writer: sends b, or frees it after a failure. */
static int ro__done(respout_t *o, buf_t *b, int rc, int flush)
{
    if (rc == 0)
        return ro__send(o, b, flush);
    buf_free(b);
    return o->req->client_gone ? -EPIPE : rc;
}

/* The usage of the Responses API from the agent's chat usage. */
static json_object *ro__usage(json_object *u)
{
    json_object *o = json_object_new_object(), *d1 = json_object_new_object(),
                *d2 = json_object_new_object();
    int64_t in = jget_int64(u, "prompt_tokens", 0), out = jget_int64(u, "completion_tokens", 0);

    if (!o || !d1 || !d2 || ro__set(d1, "cached_tokens", json_object_new_int64(0)) < 0 ||
        ro__set(d2, "reasoning_tokens", json_object_new_int64(0)) < 0 ||
        ro__set(o, "input_tokens", json_object_new_int64(in)) < 0 ||
        ro__set(o, "input_tokens_details", d1) < 0 ||
        (d1 = NULL, ro__set(o, "output_tokens", json_object_new_int64(out)) < 0) ||
        ro__set(o, "output_tokens_details", d2) < 0 ||
        (d2 = NULL, ro__set(o, "total_tokens", json_object_new_int64(
                                 jget_int64(u, "total_tokens", in + out))) < 0)) {
        json_object_put(o);
        json_object_put(d1);
        json_object_put(d2);
        return NULL;
    }
    return o;
}

/* A new message item holding `text` (status as given), with its one
 * output_text part when with_part. */
static json_object *ro__message(const char *id, const char *status, const char *text,
                                size_t len, int with_part)
{
    json_object *m = json_object_new_object(), *content = json_object_new_array(), *p;

    if (!m || !content || ro__set(m, "content", content) < 0) {
        if (!m)
            json_object_put(content);
        goto fail;
    }
    if (ro__set(m, "id", json_object_new_string(id)) < 0 ||
        ro__set(m, "type", json_object_new_string("message")) < 0 ||
        ro__set(m, "role", json_object_new_string("assistant")) < 0 ||
        ro__set(m, "status", json_object_new_string(status)) < 0)
        goto fail;
    if (!with_part)
        return m;
    if (!(p = json_object_new_object()) || json_object_array_add(content, p) != 0) {
        json_object_put(p);
        goto fail;
    }
    if (ro__set(p, "type", json_object_new_string("output_text")) < 0 ||
        ro__set(p, "annotations", json_object_new_array()) < 0 ||
        ro__set(p, "logprobs", json_object_new_array()) < 0 ||
        ro__set(p, "text", json_object_new_string_len(text, (int)len)) < 0)
        goto fail;
    return m;
fail:
    json_object_put(m);
    return NULL;
}

/* A new function_call item for one chat tool call (borrowed). */
static json_object *ro__function_call(json_object *tc)
{
    json_object *f = jget(tc, "function"), *it = json_object_new_object();
    const char *args = jget_str(f, "arguments");
    char id[RESPOUT_ID_MAX];

    respout_new_id(id, "fc_");
    if (!it || ro__set(it, "id", json_object_new_string(id)) < 0 ||
        ro__set(it, "type", json_object_new_string("function_call")) < 0 ||
        ro__set(it, "status", json_object_new_string("completed")) < 0 ||
        ro__set(it, "call_id", json_object_new_string(jget_str(tc, "id") ? jget_str(tc, "id")
                                                                         : "")) < 0 ||
        ro__set(it, "name", json_object_new_string(jget_str(f, "name") ? jget_str(f, "name")
                                                                      : "")) < 0 ||
        ro__set(it, "arguments", json_object_new_string(args ? args : "{}")) < 0) {
        json_object_put(it);
        return NULL;
    }
    return it;
}

/* The output index of the mcp_call item of `call_id`, -1 when none. Items
 * carry the model's call id only while open, under a key we remove. */
static int ro__find_call(respout_t *o, const char *call_id)
{
    size_t i, n = json_object_array_length(o->output);

    for (i = 0; i < n; i++) {
        const char *c = jget_str(json_object_array_get_idx(o->output, i), "_call_id");
        if (c && call_id && !strcmp(c, call_id))
            return (int)i;
    }
    return -1;
}

/* The text events carry content_index 0 and logprobs [] too. */
static int ro__text_event(respout_t *o, buf_t *b, const char *type, const char *mid, int idx,
                          const char *key, json_object *val)
{
    json_object *e = ro__at(mid, idx);

    if (!e || ro__set(e, "content_index", json_object_new_int(0)) < 0 ||
        (strcmp(type, "response.content_part.added") &&
         ro__set(e, "logprobs", json_object_new_array()) < 0) ||
        ro__set(e, key, val) < 0) {
        json_object_put(e);
        return -ENOMEM;
    }
    return ro__event(o, b, type, e);
}

/* Streamed: closes the open message item (output_text.done,
 * content_part.done, output_item.done) into b. */
static int ro__close_message(respout_t *o, buf_t *b)
{
    json_object *item, *part;
    char mid[RESPOUT_ID_MAX];
    int idx = o->msg_idx, rc;

    if (idx < 0)
        return 0;
    o->msg_idx = -1;
    item = json_object_array_get_idx(o->output, (size_t)idx);
    /* a copy: the open item is freed when the finished one replaces it */
    snprintf(mid, sizeof(mid), "%s", jget_str(item, "id") ? jget_str(item, "id") : "");
    if (!(part = ro__message(mid, "completed", buf_str(&o->text), o->text.len, 1)))
        return -ENOMEM;
    /* the finished item replaces the open one in place */
    if (json_object_array_put_idx(o->output, (size_t)idx, part) != 0) {
        json_object_put(part);
        return -ENOMEM;
    }
    item = part;
    part = json_object_array_get_idx(jget(item, "content"), 0);
    rc = ro__text_event(o, b, "response.output_text.done", mid, idx, "text",
                        json_object_new_string_len(buf_str(&o->text), (int)o->text.len));
    if (rc == 0) {
        json_object *e = ro__at(mid, idx);
        if (e && (ro__set(e, "content_index", json_object_new_int(0)) < 0 ||
                  ro__set(e, "logprobs", json_object_new_array()) < 0)) {
            json_object_put(e);
            e = NULL;
        }
        rc = ro__event(o, b, "response.content_part.done",
                       e && ro__set(e, "part", json_object_get(part)) == 0 ? e : NULL);
    }
    if (rc == 0)
        rc = ro__item_event(o, b, "response.output_item.done", idx, item);
    buf_reset(&o->text);
    return rc;
}

/* The response object with status; `res` may be NULL (in progress). */
static json_object *ro__response(respout_t *o, const char *status, const agent_res_t *res)
{
    static const char *const echo[] = { "instructions", "max_output_tokens", "temperature",
                                        "top_p", "previous_response_id", "user", "reasoning" };
    json_object *r = json_object_new_object(), *v, *e;
    const char *reason = NULL;
    size_t i;
    buf_t text;

    buf_init(&text, CAP_AG_CONTENT);
    if (!r || ro__set(r, "id", json_object_new_string(o->id)) < 0 ||
        ro__set(r, "object", json_object_new_string("response")) < 0 ||
        ro__set(r, "created_at", json_object_new_int64(o->created)) < 0 ||
        ro__set(r, "status", json_object_new_string(status)) < 0 ||
        ro__set(r, "model", json_object_new_string(o->model)) < 0 ||
        ro__set(r, "output", json_object_get(o->output)) < 0)
        goto fail;
    for (i = 0; i < sizeof(echo) / sizeof(echo[0]); i++)
        if (json_object_object_add(r, echo[i], json_object_get(jget(o->in, echo[i]))) != 0)
            goto fail;
    if (ro__set(r, "tools", jget_arr(o->in, "tools") ? json_object_get(
                    jget_arr(o->in, "tools")) : json_object_new_array()) < 0 ||
        ro__set(r, "tool_choice", jget(o->in, "tool_choice") ? json_object_get(
                    jget(o->in, "tool_choice")) : json_object_new_string("auto")) < 0 ||
        ro__set(r, "parallel_tool_calls", json_object_new_boolean(
                    jget_bool(o->in, "parallel_tool_calls", 1))) < 0 ||
        ro__set(r, "store", json_object_new_boolean(jget_bool(o->in, "store", 1))) < 0 ||
        ro__set(r, "metadata", jget_obj(o->in, "metadata") ? json_object_get(
                    jget_obj(o->in, "metadata")) : json_object_new_object()) < 0 ||
        ro__set(r, "truncation", json_object_new_string("disabled")) < 0)
        goto fail;
    if ((v = jget_obj(o->in, "text")) ? ro__set(r, "text", json_object_get(v)) < 0
                                       : ro__set(r, "text", json_tokener_parse(
                                                     "{\"format\":{\"type\":\"text\"}}")) < 0)
        goto fail;
    if (res && res->status == 200) {
        if (!strcmp(res->finish_reason, "length"))
            reason = "max_output_tokens";
        else if (!strcmp(res->finish_reason, "content_filter"))
            reason = "content_filter";
    }
    if (reason) {
        if (!(e = json_object_new_object()) || ro__set(r, "incomplete_details", e) < 0 ||
            ro__set(e, "reason", json_object_new_string(reason)) < 0)
            goto fail;
    } else if (ro__null(r, "incomplete_details") < 0) {
        goto fail;
    }
    if (res && res->status != 200) {
        if (!(e = json_object_new_object()) || ro__set(r, "error", e) < 0 ||
            ro__set(e, "code", json_object_new_string(res->err.code[0] ? res->err.code
                                                                       : "server_error")) < 0 ||
            ro__set(e, "message", json_object_new_string(http_err_msg(o->req, res->err.msg))) < 0)
            goto fail;
    } else if (ro__null(r, "error") < 0) {
        goto fail;
    }
    if (res && res->status == 200 ? ro__set(r, "usage", ro__usage(res->usage)) < 0
                                  : ro__null(r, "usage") < 0)
        goto fail;
    /* output_text: the text of every output_text part, as the SDKs compute it */
    for (i = 0; i < json_object_array_length(o->output); i++) {
        json_object *it = json_object_array_get_idx(o->output, i), *c = jget_arr(it, "content");
        size_t k;
        for (k = 0; c && k < json_object_array_length(c); k++) {
            json_object *t = jget(json_object_array_get_idx(c, k), "text");
            if (t && buf_append(&text, json_object_get_string(t),
                                (size_t)json_object_get_string_len(t)) < 0)
                goto fail;
        }
    }
    if (ro__set(r, "output_text", json_object_new_string_len(buf_str(&text), (int)text.len)) < 0)
        goto fail;
    buf_free(&text);
    return r;
fail:
    buf_free(&text);
    json_object_put(r);
    return NULL;
}

/* Not streamed: the message and function_call items of the final message. */
static int ro__final_items(respout_t *o, json_object *message)
{
    json_object *content = jget(message, "content"), *tcs = jget_arr(message, "tool_calls");
    const char *text = content && json_object_is_type(content, json_type_string)
                           ? json_object_get_string(content) : "";
    size_t len = text[0] ? (size_t)json_object_get_string_len(content) : 0, i;
    char mid[RESPOUT_ID_MAX];

    if (len || !tcs || !json_object_array_length(tcs)) {
        respout_new_id(mid, "msg_");
        if (json_object_array_add(o->output, ro__message(mid, "completed", text, len, 1)) != 0)
            return -ENOMEM;
    }
    for (i = 0; tcs && i < json_object_array_length(tcs); i++)
        if (json_object_array_add(o->output,
                                  ro__function_call(json_object_array_get_idx(tcs, i))) != 0)
            return -ENOMEM;
    return 0;
}

json_object *respout_response(respout_t *o, const agent_res_t *res)
{
    json_object *r;

    if (!o->stream && res->status == 200 && ro__final_items(o, res->message) < 0)
        return NULL;
    r = ro__response(o, res->status != 200 ? "failed"
                           : (!strcmp(res->finish_reason, "length") ||
                              !strcmp(res->finish_reason, "content_filter")) ? "incomplete"
                                                                              : "completed",
                     res);
    json_object_put(o->final);
    o->final = json_object_get(r);
    return r;
}

/* Headers, response.created and response.in_progress into b, once. */
static int ro__start(respout_t *o, buf_t *b)
{
    int rc;

    if (o->started)
        return 0;
    if ((rc = http_send_headers(o->req, 200, "text/event-stream", ro__headers)) != 0)
        return rc;
    o->started = 1;
    json_object *e = json_object_new_object();
    if (!e || ro__set(e, "response", ro__response(o, "in_progress", NULL)) < 0) {
        json_object_put(e);
        return -ENOMEM;
    }
    if ((rc = ro__event(o, b, "response.created", e)) < 0)
        return rc;
    e = json_object_new_object();
    if (!e || ro__set(e, "response", ro__response(o, "in_progress", NULL)) < 0) {
        json_object_put(e);
        return -ENOMEM;
    }
    return ro__event(o, b, "response.in_progress", e);
}

int respout_begin(respout_t *o)
{
    buf_t b;

    if (o->started)
        return 0;
    buf_init(&b, CAP_RESP_EVENT);
    return ro__done(o, &b, ro__start(o, &b), 1);
}

int respout_keepalive(respout_t *o)
{
    static const char comment[] = ": keep-alive\n\n";

    if (!o->started)
        return 0;
    return http_write(o->req, comment, sizeof(comment) - 1, 1) != 0 ? -EPIPE : 0;
}

int respout_flush(respout_t *o)
{
    return http_write(o->req, "", 0, 1) != 0 ? -EPIPE : 0;
}

int respout_delta(respout_t *o, const char *text, size_t len)
{
    buf_t b;
    json_object *item, *part;
    char mid[RESPOUT_ID_MAX];
    int rc;

    buf_init(&b, CAP_RESP_EVENT);
    if ((rc = ro__start(o, &b)) != 0 || !len)
        goto out;
    if (o->msg_idx < 0) {
        respout_new_id(mid, "msg_");
        rc = -ENOMEM;
        if (!(item = ro__message(mid, "in_progress", "", 0, 0)))
            goto out;
        if (json_object_array_add(o->output, item) != 0) {
            json_object_put(item);
            goto out;
        }
        o->msg_idx = (int)json_object_array_length(o->output) - 1;
        buf_reset(&o->text);
        if ((rc = ro__item_event(o, &b, "response.output_item.added", o->msg_idx, item)) < 0)
            goto out;
        part = json_tokener_parse("{\"type\":\"output_text\",\"text\":\"\",\"annotations\":[],"
                                  "\"logprobs\":[]}");
        if ((rc = ro__text_event(o, &b, "response.content_part.added", mid, o->msg_idx, "part",
                                 part)) < 0)
            goto out;
    }
    item = json_object_array_get_idx(o->output, (size_t)o->msg_idx);
    if ((rc = buf_append(&o->text, text, len)) < 0)
        goto out;
    rc = ro__text_event(o, &b, "response.output_text.delta", jget_str(item, "id"), o->msg_idx,
                        "delta", json_object_new_string_len(text, (int)len));
out:
    return ro__done(o, &b, rc, !o->defer_flush);
}

/* TOOL_START: a new mcp_call item. */
static int ro__tool_start(respout_t *o, buf_t *b, const agent_event_t *ev)
{
    json_object *it = json_object_new_object();
    char id[RESPOUT_ID_MAX];
    int idx, rc = -ENOMEM;

    respout_new_id(id, "mcp_");
    if (!it || ro__set(it, "id", json_object_new_string(id)) < 0 ||
        ro__set(it, "type", json_object_new_string("mcp_call")) < 0 ||
        ro__set(it, "server_label", json_object_new_string(ev->server)) < 0 ||
        ro__set(it, "name", json_object_new_string(ev->tool ? ev->tool : ev->name)) < 0 ||
        ro__set(it, "arguments", json_object_new_string(ev->args_json ? ev->args_json
                                                                      : "{}")) < 0 ||
        ro__set(it, "status", json_object_new_string("in_progress")) < 0 ||
        ro__null(it, "output") < 0 || ro__null(it, "error") < 0 ||
        json_object_array_add(o->output, it) != 0) {
        json_object_put(it);
        return -ENOMEM;
    }
    idx = (int)json_object_array_length(o->output) - 1;
    if (!o->stream)
        goto mark;
    if ((rc = ro__item_event(o, b, "response.output_item.added", idx, it)) < 0 ||
        (rc = ro__at_event(o, b, "response.mcp_call_arguments.delta", id, idx, "delta",
                           json_object_new_string(ev->args_json ? ev->args_json : "{}"))) < 0 ||
        (rc = ro__at_event(o, b, "response.mcp_call_arguments.done", id, idx, "arguments",
                           json_object_new_string(ev->args_json ? ev->args_json : "{}"))) < 0 ||
        (rc = ro__at_event(o, b, "response.mcp_call.in_progress", id, idx, NULL, NULL)) < 0)
        return rc;
mark:
    /* marked after the added event went out: the client never sees the mark */
    return ro__set(it, "_call_id", json_object_new_string(ev->call_id ? ev->call_id : ""));
}

/* TOOL_DONE: the mcp_call item gets its output or error. */
static int ro__tool_done(respout_t *o, buf_t *b, const agent_event_t *ev)
{
    int idx = ro__find_call(o, ev->call_id), rc;
    json_object *it;
    const char *id;

    if (idx < 0)
        return 0;
    it = json_object_array_get_idx(o->output, (size_t)idx);
    json_object_object_del(it, "_call_id");
    id = jget_str(it, "id");
    if (ro__set(it, "status", json_object_new_string(ev->is_error ? "failed" : "completed")) < 0 ||
        ro__set(it, ev->is_error ? "error" : "output",
                json_object_new_string(ev->result ? ev->result : "")) < 0)
        return -ENOMEM;
    if (!o->stream)
        return 0;
    if ((rc = ro__at_event(o, b, ev->is_error ? "response.mcp_call.failed"
                                              : "response.mcp_call.completed",
                           id, idx, NULL, NULL)) < 0)
        return rc;
    return ro__item_event(o, b, "response.output_item.done", idx, it);
}

int respout_tool_event(respout_t *o, const agent_event_t *ev)
{
    buf_t b;
    int rc = 0;

    if ((ev->kind != AGENT_EV_TOOL_START && ev->kind != AGENT_EV_TOOL_DONE) || !ev->server)
        return 0;
    buf_init(&b, CAP_RESP_EVENT);
    if (o->stream && ((rc = ro__start(o, &b)) != 0 || (rc = ro__close_message(o, &b)) != 0))
        goto out;
    rc = ev->kind == AGENT_EV_TOOL_START ? ro__tool_start(o, &b, ev) : ro__tool_done(o, &b, ev);
out:
    if (!o->stream) {
        buf_free(&b);
        return rc;
    }
    return ro__done(o, &b, rc, 1);
}

int respout_finish(respout_t *o, const agent_res_t *res)
{
    json_object *tcs = jget_arr(res->message, "tool_calls"), *e, *content;
    buf_t b;
    size_t i;
    int rc;

    buf_init(&b, CAP_RESP_EVENT);
    if ((rc = ro__start(o, &b)) != 0)
        goto out;
    /* a message whose text came whole (no delta) still gets its events */
    content = jget(res->message, "content");
    if (o->msg_idx < 0 && content && json_object_get_string_len(content) &&
        json_object_is_type(content, json_type_string) &&
        (rc = ro__done(o, &b, 0, 0)) == 0) {
        buf_init(&b, CAP_RESP_EVENT);
        rc = respout_delta(o, json_object_get_string(content),
                           (size_t)json_object_get_string_len(content));
    }
    if (rc != 0 || (rc = ro__close_message(o, &b)) != 0)
        goto out;
    for (i = 0; tcs && i < json_object_array_length(tcs); i++) {
        json_object *it = ro__function_call(json_object_array_get_idx(tcs, i)), *args;
        const char *fid = jget_str(it, "id");
        int idx;

        rc = -ENOMEM;
        if (!it || json_object_array_add(o->output, it) != 0) {
            json_object_put(it);
            goto out;
        }
        idx = (int)json_object_array_length(o->output) - 1;
        args = jget(it, "arguments");
        json_object_object_add(it, "status", json_object_new_string("in_progress"));
        if ((rc = ro__item_event(o, &b, "response.output_item.added", idx, it)) < 0)
            goto out;
        json_object_object_add(it, "status", json_object_new_string("completed"));
        if ((rc = ro__at_event(o, &b, "response.function_call_arguments.delta", fid, idx,
                               "delta", json_object_get(args))) < 0 ||
            (rc = ro__at_event(o, &b, "response.function_call_arguments.done", fid, idx,
                               "arguments", json_object_get(args))) < 0 ||
            (rc = ro__item_event(o, &b, "response.output_item.done", idx, it)) < 0)
            goto out;
    }
    rc = -ENOMEM;
    if (!(e = json_object_new_object()) || ro__set(e, "response", respout_response(o, res)) < 0) {
        json_object_put(e);
        goto out;
    }
    rc = ro__event(o, &b, !strcmp(jget_str(jget(e, "response"), "status"), "incomplete")
                              ? "response.incomplete" : "response.completed", e);
out:
    return ro__done(o, &b, rc, 1);
}

int respout_fail(respout_t *o, const agent_res_t *res)
{
    json_object *e = json_object_new_object(), *err = json_object_new_object();
    buf_t b;
    int rc = -ENOMEM;

    buf_init(&b, CAP_RESP_EVENT);
    if ((rc = ro__start(o, &b)) != 0)
        goto out;
    rc = -ENOMEM;
    /* OpenAI's error event {type, code, message, param}, with the error
     * object beside it that the openai SDKs raise as APIError (as on chat) */
    if (!e || !err ||
        ro__set(err, "message", json_object_new_string(http_err_msg(o->req, res->err.msg))) < 0 ||
        ro__set(err, "type", json_object_new_string(res->err.type)) < 0 ||
        (res->err.param[0] ? ro__set(err, "param", json_object_new_string(res->err.param))
                           : ro__null(err, "param")) < 0 ||
        (res->err.code[0] ? ro__set(err, "code", json_object_new_string(res->err.code))
                          : ro__null(err, "code")) < 0 ||
        json_object_object_add(e, "code", json_object_get(jget(err, "code"))) != 0 ||
        ro__set(e, "message", json_object_new_string(http_err_msg(o->req, res->err.msg))) < 0 ||
        json_object_object_add(e, "param", json_object_get(jget(err, "param"))) != 0)
        goto out;
    if (ro__set(e, "error", err) < 0) {
        err = NULL;
        goto out;
    }
    err = NULL;
    rc = ro__event(o, &b, "error", e);
    e = NULL;
out:
    json_object_put(err);
    json_object_put(e);
    return ro__done(o, &b, rc, 1);
}
