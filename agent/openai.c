/* be_openai — the OpenAI chat completions dialect (also spoken by vLLM,
 * llama.cpp, Ollama, OpenRouter, ...). The canonical request is already in
 * this dialect, so build only serialises; parse and the stream parser turn
 * answers into a be_turn_t. No I/O here. */
#include "agent/backend.h"
#include "agent/oa_answer.h"
#include "shared/jget.h"
#include "shared/jtok.h"
#include "shared/caps.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 when a message is a tool result carrying image_url parts (the canonical
 * "tool result with images", docs/agent.md). */
static int oa__tool_has_images(json_object *m)
{
    json_object *c = jget(m, "content");
    const char *role = jget_str(m, "role");

    if (!role || strcmp(role, "tool") != 0 || !c || !json_object_is_type(c, json_type_array))
        return 0;
    for (size_t i = 0; i < json_object_array_length(c); i++) {
        const char *t = jget_str(json_object_array_get_idx(c, i), "type");
        if (t && strcmp(t, "image_url") == 0)
            return 1;
    }
    return 0;
}

/* A tool message with images as OpenAI takes it: the text parts joined, each
 * image a marker; its image parts go to `imgs` after a text part naming the
 * call. 0 or -ENOMEM. */
static int oa__split_tool(json_object *m, json_object *out, json_object *imgs)
{
    json_object *c = jget(m, "content"), *tm = NULL, *p = NULL;
    const char *id = jget_str(m, "tool_call_id");
    buf_t text, line;
    size_t nimg = 0;
    int rc = -ENOMEM;

    /* a client's own tool messages may be this form too: the body's cap */
    buf_init(&text, CAP_UP_REQ_BODY);
    buf_init(&line, CAP_UP_REQ_BODY);
    for (size_t i = 0; i < json_object_array_length(c); i++) {
        json_object *part = json_object_array_get_idx(c, i);
        const char *t = jget_str(part, "type");
        if (text.len && buf_puts(&text, "\n"))
            goto out;
        if (t && strcmp(t, "image_url") == 0) {
            if (!nimg++) {
                if (buf_printf(&line, "The images returned by tool call %s:", id ? id : "") ||
                    !(p = json_object_new_object()))
                    goto out;
                json_object_object_add(p, "type", json_object_new_string("text"));
                json_object_object_add(p, "text", json_object_new_string(buf_str(&line)));
                if (json_object_array_add(imgs, p))
                    goto out;
                p = NULL;
            }
            if (buf_printf(&text, "[image %zu: in the next user message]", nimg) ||
                json_object_array_add(imgs, json_object_get(part)))
                goto out;
        } else if (jget_str(part, "text") && buf_puts(&text, jget_str(part, "text"))) {
            goto out;
        }
    }
    if (!(tm = json_object_new_object()))
        goto out;
    json_object_object_add(tm, "role", json_object_new_string("tool"));
    json_object_object_add(tm, "tool_call_id", json_object_get(jget(m, "tool_call_id")));
    json_object_object_add(tm, "content", json_object_new_string_len(text.data ? text.data : "",
                                                                     (int)text.len));
    if (json_object_array_add(out, tm))
        goto out;
    tm = NULL;
    rc = 0;
out:
    json_object_put(p);
    json_object_put(tm);
    buf_free(&text);
    buf_free(&line);
    return rc;
}

/* Ends a run of tool messages: their images as one user message. */
static int oa__flush_images(json_object *out, json_object **imgs)
{
    json_object *u;

    if (!*imgs || !json_object_array_length(*imgs))
        return 0;
    if (!(u = json_object_new_object()))
        return -ENOMEM;
    json_object_object_add(u, "role", json_object_new_string("user"));
    json_object_object_add(u, "content", *imgs);
    *imgs = json_object_new_array();
    if (json_object_array_add(out, u)) {
        json_object_put(u);
        return -ENOMEM;
    }
    return *imgs ? 0 : -ENOMEM;
}

/* Chat completions' tool messages carry text only: a copy of `req` where
 * every tool result with images is text, and after each run of tool messages
 * a user message holds their images (data URLs), each call's led by a text
 * part naming its tool_call_id. *out is NULL when there is nothing to change.
 * 0 or -ENOMEM. */
static int oa__tool_images(json_object *req, json_object **out)
{
    json_object *msgs = jget(req, "messages"), *nm = NULL, *copy = NULL, *imgs = NULL;
    size_t n = msgs && json_object_is_type(msgs, json_type_array) ? json_object_array_length(msgs) : 0;
    int rc = 0, any = 0;

    *out = NULL;
    for (size_t i = 0; i < n && !any; i++)
        any = oa__tool_has_images(json_object_array_get_idx(msgs, i));
    if (!any)
        goto out;
    rc = -ENOMEM;
    if (!(copy = json_object_new_object()) || !(nm = json_object_new_array()) ||
        !(imgs = json_object_new_array()))
        goto out;
    json_object_object_foreach(req, k, v) {
        if (strcmp(k, "messages") != 0)
            json_object_object_add(copy, k, json_object_get(v));
    }
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        const char *role = jget_str(m, "role");
        if ((!role || strcmp(role, "tool") != 0) && oa__flush_images(nm, &imgs))
            goto out;
        if (oa__tool_has_images(m) ? oa__split_tool(m, nm, imgs)
                                   : json_object_array_add(nm, json_object_get(m)))
            goto out;
    }
    if (oa__flush_images(nm, &imgs))
        goto out;
    json_object_object_add(copy, "messages", nm);
    nm = NULL;
    *out = copy;
    copy = NULL;
    rc = 0;
out:
    json_object_put(imgs);
    json_object_put(nm);
    json_object_put(copy);
    return rc;
}

static int oa__build(json_object *backend, json_object *req, int stream, buf_t *url,
                     struct curl_slist **headers, buf_t *body, char *err, size_t errlen)
{
    const char *base = jget_str(backend, "base_url"), *key = jget_str(backend, "api_key"), *s;
    json_object *dh = jget(backend, "default_headers"), *split = NULL;
    struct curl_slist *h = NULL, *nh;
    size_t blen;
    buf_t line;
    int rc = -EINVAL;

    buf_init(&line, CAP_UP_HEADER);
    (void)stream; /* the canonical request already carries "stream" */
    if (!base || !*base) {
        snprintf(err, errlen, "backend base_url: missing");
        goto out;
    }
    blen = strlen(base);
    while (blen && base[blen - 1] == '/')
        blen--;
    rc = -ENOMEM;
    if (buf_append(url, base, blen) < 0 || buf_puts(url, "/chat/completions") < 0)
        goto out;
    if (oa__tool_images(req, &split) < 0)
        goto out;
    s = json_object_to_json_string_ext(split ? split : req,
                                       JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!s || buf_puts(body, s) < 0)
        goto out;
    /* "Expect:" stops curl from waiting for 100-continue on big bodies. */
    if (!(nh = curl_slist_append(h, "Content-Type: application/json")))
        goto out;
    h = nh;
    if (!(nh = curl_slist_append(h, "Expect:")))
        goto out;
    h = nh;
    if (key && *key) {
        buf_reset(&line);
        if (buf_printf(&line, "Authorization: Bearer %s", key) < 0 ||
            !(nh = curl_slist_append(h, buf_str(&line))))
            goto out;
        h = nh;
    }
    if (dh && json_object_is_type(dh, json_type_object)) {
        json_object_object_foreach(dh, name, val) {
            buf_reset(&line);
            if (buf_printf(&line, "%s: %s", name, json_object_get_string(val)) < 0 ||
                !(nh = curl_slist_append(h, buf_str(&line))))
                goto out;
            h = nh;
        }
    }
    *headers = h;
    h = NULL;
    rc = 0;
out:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory building the upstream request");
    buf_free(&line);
    json_object_put(split);
    curl_slist_free_all(h);
    return rc;
}

static void oa__usage(json_object *usage, be_turn_t *turn)
{
    if (!usage || !json_object_is_type(usage, json_type_object))
        return;
    turn->prompt_tokens = json_object_get_int64(jget(usage, "prompt_tokens"));
    turn->completion_tokens = json_object_get_int64(jget(usage, "completion_tokens"));
    turn->has_usage = 1;
}

static void oa__finish(json_object *fr, be_turn_t *turn)
{
    if (fr && json_object_is_type(fr, json_type_string))
        snprintf(turn->finish_reason, sizeof(turn->finish_reason), "%s",
                 json_object_get_string(fr));
}

/* One tool call in canonical form; arguments always a string. */
static json_object *oa__call(const char *id, const char *name, const char *args)
{
    json_object *c = json_object_new_object(), *fn = json_object_new_object();

    if (!c || !fn)
        goto fail;
    json_object_object_add(c, "id", json_object_new_string(id ? id : ""));
    json_object_object_add(c, "type", json_object_new_string("function"));
    json_object_object_add(fn, "name", json_object_new_string(name ? name : ""));
    json_object_object_add(fn, "arguments", json_object_new_string(args && *args ? args : "{}"));
    json_object_object_add(c, "function", fn);
    return c;
fail:
    json_object_put(c);
    json_object_put(fn);
    return NULL;
}

static int oa__parse(const char *body, size_t len, be_turn_t *turn, char *err, size_t errlen)
{
    json_tokener *tok;
    json_object *root = NULL, *choice, *msg, *calls, *v;
    const char *text;
    int rc = -EPROTO;

    /* the common answer (text, no tool calls) without a json-c tree: it was
     * the largest parse of a pass-through request; the rest, and anything
     * it doubts, as before */
    if (oa_answer_read(body, len, turn) == 0)
        return 0;
    tok = jtok_get(JSON_TOKENER_DEFAULT_DEPTH, 0);
    if (!tok) {
        rc = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    root = json_tokener_parse_ex(tok, body, (int)len);
    if (!root || json_tokener_get_error(tok) != json_tokener_success) {
        snprintf(err, errlen, "upstream answered with something that is not JSON: %.120s", body);
        goto out;
    }
    v = jget(root, "choices");
    if (!v || !json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0) {
        const char *em = jget_str(jget(root, "error"), "message");
        if (em)
            snprintf(err, errlen, "upstream error: %s", em);
        else
            snprintf(err, errlen, "upstream answer has no choices: %.120s", body);
        goto out;
    }
    choice = json_object_array_get_idx(v, 0);
    msg = jget(choice, "message");
    if (!msg || !json_object_is_type(msg, json_type_object)) {
        snprintf(err, errlen, "upstream answer has no choices[0].message");
        goto out;
    }
    if ((text = jget_str(msg, "content")) && buf_puts(&turn->content, text) < 0) {
        snprintf(err, errlen, "upstream answer content too large");
        goto out;
    }
    calls = jget(msg, "tool_calls");
    if (calls && json_object_is_type(calls, json_type_array) && json_object_array_length(calls)) {
        size_t n = json_object_array_length(calls);
        if (!(turn->tool_calls = json_object_new_array()))
            goto out;
        for (size_t i = 0; i < n; i++) {
            json_object *c = json_object_array_get_idx(calls, i), *fn = jget(c, "function");
            json_object *args = jget(fn, "arguments"), *nc;
            const char *as = !args ? "{}"
                             : json_object_is_type(args, json_type_string)
                                 ? json_object_get_string(args)
                                 : json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN);
            if (!(nc = oa__call(jget_str(c, "id"), jget_str(fn, "name"), as)) ||
                json_object_array_add(turn->tool_calls, nc) != 0) {
                json_object_put(nc);
                snprintf(err, errlen, "out of memory");
                goto out;
            }
        }
    }
    oa__finish(jget(choice, "finish_reason"), turn);
    oa__usage(jget(root, "usage"), turn);
    rc = 0;
out:
    json_object_put(root);
    jtok_put(tok, len);
    return rc;
}

/* ---- streaming ---- */

typedef struct oa_call_acc {
    buf_t id, name, args;
} oa_call_acc_t;

typedef struct oa_stream {
    be_turn_t *turn;
    be_sink_t sink;
    json_tokener *tok;
    oa_call_acc_t calls[CAP_OA_STREAM_CALLS];
    size_t ncalls;      /* highest index seen + 1 */
    int dirty;          /* calls changed since turn->tool_calls was written */
} oa_stream_t;

static void *oa__stream_new(be_turn_t *turn, const be_sink_t *sink)
{
    oa_stream_t *st = calloc(1, sizeof(*st));

    if (!st)
        return NULL;
    if (!(st->tok = json_tokener_new())) {
        free(st);
        return NULL;
    }
    st->turn = turn;
    st->sink = *sink;
    for (size_t i = 0; i < CAP_OA_STREAM_CALLS; i++) {
        buf_init(&st->calls[i].id, CAP_OA_STREAM_CALL_ID);
        buf_init(&st->calls[i].name, CAP_OA_STREAM_CALL_NAME);
        buf_init(&st->calls[i].args, CAP_OA_STREAM_ARGS);
    }
    return st;
}

/* Writes the accumulated calls into the turn (done at the end of the turn,
 * so argument pieces are concatenated in O(n), not re-copied per piece). */
static int oa__flush(oa_stream_t *st)
{
    json_object *arr = NULL, *c;

    if (!st->dirty)
        return 0;
    if (!(arr = json_object_new_array()))
        return -ENOMEM;
    for (size_t i = 0; i < st->ncalls; i++) {
        oa_call_acc_t *a = &st->calls[i];
        if (!a->name.len && !a->id.len && !a->args.len)
            continue;   /* a gap in the indexes */
        if (!(c = oa__call(buf_str(&a->id), buf_str(&a->name), buf_str(&a->args))) ||
            json_object_array_add(arr, c) != 0) {
            json_object_put(c);
            json_object_put(arr);
            return -ENOMEM;
        }
    }
    if (st->turn->tool_calls)
        json_object_put(st->turn->tool_calls);
    st->turn->tool_calls = json_object_array_length(arr) ? arr : NULL;
    if (!st->turn->tool_calls)
        json_object_put(arr);
    st->dirty = 0;
    return 0;
}

static int oa__delta_calls(oa_stream_t *st, json_object *calls, char *err, size_t errlen)
{
    size_t n = json_object_array_length(calls);

    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(calls, i), *fn = jget(c, "function");
        json_object *iv = jget(c, "index");
        long idx = iv ? (long)json_object_get_int64(iv) : (long)i;
        const char *s;
        oa_call_acc_t *a;

        if (idx < 0 || idx >= CAP_OA_STREAM_CALLS) {
            snprintf(err, errlen, "upstream stream has a tool call index out of range (%ld)", idx);
            return -EPROTO;
        }
        a = &st->calls[idx];
        if ((s = jget_str(c, "id")) && !a->id.len && buf_puts(&a->id, s) < 0)
            goto big;
        if ((s = jget_str(fn, "name")) && buf_puts(&a->name, s) < 0)
            goto big;
        if ((s = jget_str(fn, "arguments")) && buf_puts(&a->args, s) < 0)
            goto big;
        if ((size_t)idx + 1 > st->ncalls)
            st->ncalls = (size_t)idx + 1;
        st->dirty = 1;
    }
    return 0;
big:
    snprintf(err, errlen, "upstream tool call too large");
    return -EPROTO;
}

static int oa__stream_event(void *vst, const char *event, const char *data, size_t len,
                            int *status, char *err, size_t errlen)
{
    oa_stream_t *st = vst;
    json_object *root = NULL, *v, *choice, *delta;
    const char *text;
    int rc = -EPROTO;

    (void)event;
    while (len && (*data == ' ' || *data == '\t' || *data == '\n')) {
        data++;
        len--;
    }
    if (len == 0) {
        rc = 0;
        goto out;
    }
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        rc = oa__flush(st) < 0 ? -ENOMEM : 1;
        goto out;
    }
    json_tokener_reset(st->tok);
    root = json_tokener_parse_ex(st->tok, data, (int)len);
    if (!root || json_tokener_get_error(st->tok) != json_tokener_success) {
        snprintf(err, errlen, "upstream sent invalid JSON in its stream: %.120s", data);
        goto out;
    }
    if ((v = jget(root, "error"))) {
        json_object *code = jget(v, "code");
        const char *m = jget_str(v, "message");
        if ((!m || !*m) && json_object_is_type(v, json_type_string))
            m = json_object_get_string(v);
        if (!m || !*m)      /* {"error":""} too: the client gets a message, never "" */
            m = "upstream stream reported an error";
        snprintf(err, errlen, "%s", m);
        *status = 502;
        if (code && json_object_is_type(code, json_type_int) &&
            json_object_get_int(code) >= 400 && json_object_get_int(code) < 600)
            *status = json_object_get_int(code);
        rc = -EREMOTEIO;
        goto out;
    }
    oa__usage(jget(root, "usage"), st->turn);
    v = jget(root, "choices");
    rc = 0;
    if (!v || !json_object_is_type(v, json_type_array) || !json_object_array_length(v))
        goto out;
    choice = json_object_array_get_idx(v, 0);
    /* with n > 1 the other choices stream too: the loop follows choice 0 */
    if (jget(choice, "index") && json_object_get_int(jget(choice, "index")) != 0)
        goto out;
    delta = jget(choice, "delta");
    if ((text = jget_str(delta, "content")) && *text) {
        size_t tl = strlen(text);
        if (buf_append(&st->turn->content, text, tl) < 0) {
            snprintf(err, errlen, "upstream answer content too large");
            rc = -EPROTO;
            goto out;
        }
        if (st->sink.content && st->sink.content(st->sink.ud, text, tl) != 0) {
            rc = -ECANCELED;
            goto out;
        }
    }
    v = jget(delta, "tool_calls");
    if (v && json_object_is_type(v, json_type_array) &&
        (rc = oa__delta_calls(st, v, err, errlen)) < 0)
        goto out;
    if ((v = jget(choice, "finish_reason")) && json_object_is_type(v, json_type_string)) {
        oa__finish(v, st->turn);
        if (oa__flush(st) < 0)
            rc = -ENOMEM;
    }
out:
    json_object_put(root);
    return rc;
}

static int oa__stream_end(void *vst, char *err, size_t errlen)
{
    oa_stream_t *st = vst;

    if (st->turn->finish_reason[0])
        return 0;
    snprintf(err, errlen, "the upstream stream ended before the answer was complete "
             "(no finish_reason and no [DONE]): the answer is cut");
    return -EPROTO;
}

static void oa__stream_free(void *vst)
{
    oa_stream_t *st = vst;

    if (!st)
        return;
    oa__flush(st);  /* a stream that ended without [DONE] still yields its calls */
    for (size_t i = 0; i < CAP_OA_STREAM_CALLS; i++) {
        buf_free(&st->calls[i].id);
        buf_free(&st->calls[i].name);
        buf_free(&st->calls[i].args);
    }
    json_tokener_free(st->tok);
    free(st);
}

static const char *oa__type_for(int status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    default:  return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

static void oa__error(int status, const char *body, size_t len, int *status_out, char *type,
                      size_t typelen, char *msg, size_t msglen)
{
    json_object *root = NULL, *e;
    const char *m = NULL, *t = NULL;

    *status_out = status;
    if (body && len)
        root = json_tokener_parse(body);
    e = jget(root, "error");
    if (e && json_object_is_type(e, json_type_object)) {
        m = jget_str(e, "message");
        t = jget_str(e, "type");
    } else if (e && json_object_is_type(e, json_type_string)) {
        m = json_object_get_string(e);
    } else if (root) {
        m = jget_str(root, "message");
        if (!m)
            m = jget_str(root, "detail");
    }
    snprintf(type, typelen, "%s", t && *t ? t : oa__type_for(status));
    if (m && *m)
        snprintf(msg, msglen, "%s", m);
    else
        snprintf(msg, msglen, "upstream answered HTTP %d: %.200s", status, body ? body : "");
    json_object_put(root);
}

const be_ops_t be_openai = {
    .kind = "openai",
    .build = oa__build,
    .parse = oa__parse,
    .stream_new = oa__stream_new,
    .stream_event = oa__stream_event,
    .stream_end = oa__stream_end,
    .stream_free = oa__stream_free,
    .error = oa__error,
};
