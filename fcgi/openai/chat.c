/* chat — POST /v1/chat/completions: validate, find the assistant and its
 * backend, run the agent loop, and answer as a chat.completion or as a
 * chunk stream. */
#include "agent/agent.h"
#include "fcgi/auth/auth.h"
#include "fcgi/openai/chatreq.h"
#include "fcgi/openai/openai.h"
#include "fcgi/openai/oai.h"
#include "fcgi/core/stream.h"

#include "shared/log.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct chat__ctx {
    http_req_t *req;
    stream_t st;
};

/* agent callback: a content piece for the stream. */
static int chat__on_delta(void *ud, const char *text, size_t len)
{
    struct chat__ctx *c = ud;

    return stream_delta(&c->st, text, len) != 0;
}

/* agent callback: the pieces of one upstream read are written; push them. */
static int chat__on_flush(void *ud)
{
    struct chat__ctx *c = ud;

    return stream_flush(&c->st) != 0;
}

/* agent callback: is the client still there? */
static int chat__alive(void *ud)
{
    struct chat__ctx *c = ud;

    return http_client_alive(c->req);
}

static int chat__answer(http_req_t *req, struct chat__ctx *c, const chatreq_t *cr,
                        agent_res_t *res, const char *model, long long created)
{
    json_object *o;
    int rc;

    if (res->client_gone || req->client_gone) {
        req->client_gone = 1;
        return -EPIPE;
    }
    if (res->status != 200 && (!cr->stream || !c->st.started))
        return http_send_err(req, &res->err);
    if (cr->stream) {
        if (res->status != 200) {
            log_warn("chat %s: error after the stream started: %s", c->st.id, res->err.msg);
            return stream_fail(&c->st, res->err.msg, res->usage);
        }
        return stream_finish(&c->st, res->message, res->finish_reason, res->usage);
    }
    o = oai_completion(c->st.id, created, model, res->message, res->finish_reason, res->usage);
    if (!o)
        return http_send_error(req, 500, NULL, NULL, NULL, "out of memory");
    rc = http_send_json(req, 200, o, NULL);
    json_object_put(o);
    return rc;
}

/* The /v1 credential check, in the table's signature. */
static int chat__authorize(http_req_t *req, svc_t *svc)
{
    return auth_check(req, svc->reg);
}

const route_surface_t openai_surface = { "openai", chat__authorize, NULL };

int chat_handle(http_req_t *req, svc_t *svc)
{
    chatreq_t cr;
    aip_err_t err;
    agent_req_t areq;
    agent_res_t res;
    struct chat__ctx ctx;
    json_object *assistant, *backend = NULL, *bname = NULL;
    char id[OAI_ID_MAX];
    long long created = (long long)time(NULL);
    int rc;

    memset(&res, 0, sizeof(res));
    rc = chatreq_parse(req->body, req->body_len, &cr, &err);
    if (rc == -EINVAL)
        return http_send_err(req, &err);
    if (rc != 0)
        return http_send_error(req, 500, NULL, NULL, NULL, "out of memory reading the request");
    assistant = reg_get(svc->reg, "assistants", cr.model);
    if (!assistant) {
        rc = http_send_error(req, 404, "invalid_request_error", "model_not_found", "model",
                             "The model '%s' does not exist: no assistant has that name. "
                             "GET /v1/models lists the assistants.", cr.model);
        goto out;
    }
    if (json_object_object_get_ex(assistant, "backend", &bname))
        backend = reg_get(svc->reg, "backends", json_object_get_string(bname));
    if (!backend) {
        rc = http_send_error(req, 500, "api_error", "backend_not_found", NULL,
                             "assistant '%s' names backend '%s', which the registry does not "
                             "hold: fix the registry (admin API or config)", cr.model,
                             bname ? json_object_get_string(bname) : "");
        goto out;
    }
    oai_new_id(id);
    memset(&ctx, 0, sizeof(ctx));
    ctx.req = req;
    stream_init(&ctx.st, req, cr.model, id, created, cr.include_usage);
    memset(&areq, 0, sizeof(areq));
    areq.assistant_name = cr.model;
    areq.assistant = assistant;
    areq.backend = backend;
    areq.mcp_servers = reg_all(svc->reg, "mcp_servers");
    areq.body = cr.body;
    areq.stream = cr.stream;
    areq.on_delta = cr.stream ? chat__on_delta : NULL;
    areq.on_flush = cr.stream ? chat__on_flush : NULL;
    ctx.st.defer_flush = cr.stream;
    areq.alive = chat__alive;
    areq.ud = &ctx;
    agent_run(svc->agent, &areq, &res);
    rc = chat__answer(req, &ctx, &cr, &res, cr.model, created);
out:
    agent_res_clear(&res);
    chatreq_clear(&cr);
    return rc;
}
