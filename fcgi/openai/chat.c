/* chat — POST /v1/chat/completions as a completion surface (core/complete.h):
 * the body is already the canonical request (chatreq validates it), the
 * answer a chat.completion or a chunk stream (core/stream.c). The runner
 * does the rest. */
#include "fcgi/core/complete.h"
#include "fcgi/core/stream.h"
#include "fcgi/core/toolev.h"
#include "fcgi/auth/auth.h"
#include "fcgi/openai/chatreq.h"
#include "fcgi/openai/openai.h"
#include "fcgi/openai/oai.h"

/* The per-request state the runner keeps for us. */
struct chat__run {
    chatreq_t cr;
    stream_t st;
};

static int chat__parse(void *run, const char *body, size_t len, complete_req_t *out,
                       aip_err_t *err)
{
    struct chat__run *c = run;
    int rc = chatreq_parse(body, len, &c->cr, err);

    if (rc == 0) {
        out->model = c->cr.model;
        out->body = c->cr.body;
        out->stream = c->cr.stream;
        out->include_usage = c->cr.include_usage;
    }
    return rc;
}

static void chat__clear(void *run)
{
    chatreq_clear(&((struct chat__run *)run)->cr);
}

static const char *chat__begin(void *run, http_req_t *req, const complete_req_t *cr,
                               long long created)
{
    struct chat__run *c = run;
    char id[OAI_ID_MAX];

    oai_new_id(id);
    stream_init(&c->st, req, cr->model, id, created, cr->include_usage);
    c->st.defer_flush = cr->stream;
    return c->st.id;
}

static int chat__delta(void *run, const char *text, size_t len)
{
    return stream_delta(&((struct chat__run *)run)->st, text, len);
}

static int chat__flush(void *run)
{
    return stream_flush(&((struct chat__run *)run)->st);
}

static int chat__started(const void *run)
{
    return ((const struct chat__run *)run)->st.started;
}

static int chat__stream_end(void *run, const agent_res_t *res)
{
    struct chat__run *c = run;

    if (res->status != 200)
        return stream_fail(&c->st, &res->err);
    return stream_finish(&c->st, res->message, res->finish_reason, res->usage);
}

static json_object *chat__answer(void *run, const complete_req_t *cr, const agent_res_t *res,
                                 long long created)
{
    struct chat__run *c = run;

    return oai_completion(c->st.id, created, cr->model, res->message, res->finish_reason,
                          res->usage);
}

static int chat__answer_text(void *run, const complete_req_t *cr, const agent_res_t *res,
                             long long created, buf_t *out)
{
    struct chat__run *c = run;

    return oai_completion_text(out, c->st.id, created, cr->model, res->message,
                               res->finish_reason, res->usage);
}

/* A tool event as a chunk with an empty delta and one extra top-level field
 * (docs/tool-events.md): every OpenAI SDK takes it for a chunk that adds
 * nothing, where a named SSE event would reach openai-node's chunk handling
 * as a chunk without choices. */
static int chat__tool_event(void *run, json_object *ev)
{
    return stream_extra(&((struct chat__run *)run)->st, TOOLEV_EVENT_KEY, ev);
}

static int chat__start(void *run)
{
    return stream_begin(&((struct chat__run *)run)->st);
}

static int chat__keepalive(void *run)
{
    return stream_keepalive(&((struct chat__run *)run)->st);
}

static const complete_surface_t chat__completion = {
    "chat", sizeof(struct chat__run), chat__parse, chat__clear, chat__begin, chat__delta,
    chat__flush, chat__started, chat__stream_end, chat__answer, chat__tool_event,
    chat__start, chat__keepalive, NULL, NULL, chat__answer_text,
};

/* The /v1 credential check, in the table's signature. */
static int chat__authorize(http_req_t *req, svc_t *svc)
{
    return auth_check(req, svc->reg);
}

const route_surface_t openai_surface = { "openai", chat__authorize, NULL, &chat__completion };
