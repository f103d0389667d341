/* messages — POST /v1/messages, Anthropic's Messages API as a completion
 * surface (core/complete.h) on the same runner and agent loop as
 * /v1/chat/completions: msgreq translates the request to the canonical
 * OpenAI body, msgout translates the answer (a message or an SSE stream)
 * back. Every error here is in Anthropic's shape
 * {"type":"error","error":{"type","message"}}. */
#include "fcgi/core/complete.h"
#include "fcgi/core/toolev.h"
#include "fcgi/auth/auth.h"
#include "fcgi/anthropic/messages.h"
#include "fcgi/anthropic/msgout.h"
#include "fcgi/anthropic/msgreq.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The /v1 credential check with an Anthropic-shaped 401. Returns 0 when the
 * request may go on, -EACCES when answered. */
int messages_auth(http_req_t *req, svc_t *svc)
{
    char why[256];
    int rc = auth_verify(req, svc->reg, why, sizeof(why));

    if (rc == 0)
        return 0;
    if (rc == -EAGAIN)
        http_add_header(req, "Retry-After", "1");
    msgout_send_error(req, rc == -EINVAL ? 400 : rc == -EAGAIN ? 503 : 401, NULL, "%s", why);
    return -EACCES;
}

/* Every error of the surface in Anthropic's vocabulary: OpenAI's code
 * "overloaded" is its overloaded_error, the rest go by status
 * (msgout_error_type). Anthropic's error has no param: the field at fault
 * leads the message ("messages[1].role: ..."), as the API itself says it. */
static int messages__send_error(http_req_t *req, const aip_err_t *e, const char *headers)
{
    const char *type = strcmp(e->code, "overloaded") == 0 ? "overloaded_error" : NULL;
    char msg[AIP_ERR_PARAM_MAX + AIP_ERR_MSG_MAX + 2];
    json_object *o;
    int rc;

    snprintf(msg, sizeof(msg), "%s%s%s", e->param, e->param[0] ? ": " : "", e->msg);
    if (!(o = msgout_error_json(e->status, type, http_err_msg(req, msg))))
        return msgout_send_error(req, 500, NULL, "out of memory");
    rc = http_send_json(req, e->status, o, headers);
    json_object_put(o);
    return rc;
}

/* The per-request state the runner keeps for us. */
struct messages__run {
    msgreq_t mr;
    msgout_stream_t st;
};

static int messages__parse(void *run, const char *body, size_t len, complete_req_t *out,
                           aip_err_t *err)
{
    struct messages__run *m = run;
    int rc = msgreq_parse(body, len, &m->mr, err);

    if (rc == 0) {
        out->model = m->mr.model;
        out->body = m->mr.body;
        out->stream = m->mr.stream;
    }
    return rc;
}

static void messages__clear(void *run)
{
    msgreq_clear(&((struct messages__run *)run)->mr);
}

static const char *messages__begin(void *run, http_req_t *req, const complete_req_t *cr,
                                   long long created)
{
    struct messages__run *m = run;
    char id[MSGOUT_ID_MAX];

    (void)created;
    msgout_new_id(id);
    msgout_stream_init(&m->st, req, cr->model, id);
    m->st.defer_flush = cr->stream;
    return m->st.id;
}

static int messages__delta(void *run, const char *text, size_t len)
{
    return msgout_stream_delta(&((struct messages__run *)run)->st, text, len);
}

static int messages__flush(void *run)
{
    return msgout_stream_flush(&((struct messages__run *)run)->st);
}

static int messages__started(const void *run)
{
    return ((const struct messages__run *)run)->st.started;
}

static int messages__stream_end(void *run, const agent_res_t *res)
{
    struct messages__run *m = run;

    if (res->status != 200)
        return msgout_stream_fail(&m->st, res->err.status,
                                  strcmp(res->err.code, "overloaded") == 0 ? "overloaded_error"
                                                                           : NULL,
                                  res->err.msg);
    return msgout_stream_finish(&m->st, res->message, res->finish_reason, res->usage);
}

static json_object *messages__answer(void *run, const complete_req_t *cr,
                                     const agent_res_t *res, long long created)
{
    struct messages__run *m = run;

    (void)created;
    return msgout_message(m->st.id, cr->model, res->message, res->finish_reason, res->usage);
}

/* A tool event as a named SSE event of our own (docs/tool-events.md): the
 * Anthropic SDKs hand unknown event types to raw readers and their
 * MessageStream ignores them, as Anthropic asks clients to for new types. */
static int messages__tool_event(void *run, json_object *ev)
{
    return msgout_stream_extra(&((struct messages__run *)run)->st, TOOLEV_EVENT_KEY,
                               TOOLEV_EVENT_KEY, ev);
}

static int messages__start(void *run)
{
    return msgout_stream_begin(&((struct messages__run *)run)->st);
}

static int messages__keepalive(void *run)
{
    return msgout_stream_ping(&((struct messages__run *)run)->st);
}

static const complete_surface_t messages__completion = {
    "messages", sizeof(struct messages__run), messages__parse, messages__clear,
    messages__begin, messages__delta, messages__flush, messages__started,
    messages__stream_end, messages__answer, messages__tool_event, messages__start,
    messages__keepalive, NULL, NULL, NULL,
};

const route_surface_t messages_surface = { "anthropic", messages_auth, messages__send_error,
                                           &messages__completion };
