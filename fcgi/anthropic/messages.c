/* messages — POST /v1/messages, Anthropic's Messages API on the same agent
 * loop as /v1/chat/completions: msgreq translates the request to the
 * canonical OpenAI body, the agent runs, msgout translates the answer (a
 * message or an SSE stream) back. Every error here is in Anthropic's shape
 * {"type":"error","error":{"type","message"}}. */
#include "agent/agent.h"
#include "fcgi/auth/auth.h"
#include "fcgi/anthropic/messages.h"
#include "fcgi/anthropic/msgout.h"
#include "fcgi/anthropic/msgreq.h"

#include "shared/log.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

struct messages__ctx {
    http_req_t *req;
    msgout_stream_t st;
};

static int messages__on_delta(void *ud, const char *text, size_t len)
{
    struct messages__ctx *c = ud;

    return msgout_stream_delta(&c->st, text, len) != 0;
}

static int messages__on_flush(void *ud)
{
    struct messages__ctx *c = ud;

    return msgout_stream_flush(&c->st) != 0;
}

/* agent callback: is the client still there? */
static int messages__alive(void *ud)
{
    struct messages__ctx *c = ud;

    return http_client_alive(c->req);
}

/* The /v1 credential check with an Anthropic-shaped 401. Returns 0 when the
 * request may go on, -EACCES when answered. */
int messages_auth(http_req_t *req, svc_t *svc)
{
    char why[256];
    int rc = auth_verify(req, svc->reg, why, sizeof(why));

    if (rc == 0)
        return 0;
    msgout_send_error(req, rc == -EINVAL ? 400 : 401, NULL, "%s", why);
    return -EACCES;
}

/* The core's errors in Anthropic's vocabulary: OpenAI's code "overloaded"
 * is its overloaded_error, the rest go by status (msgout_error_type). */
static int messages__send_error(http_req_t *req, const aip_err_t *e, const char *headers)
{
    const char *type = strcmp(e->code, "overloaded") == 0 ? "overloaded_error" : NULL;
    json_object *o = msgout_error_json(e->status, type, e->msg);
    int rc;

    if (!o)
        return msgout_send_error(req, 500, NULL, "out of memory");
    rc = http_send_json(req, e->status, o, headers);
    json_object_put(o);
    return rc;
}

const route_surface_t messages_surface = { "anthropic", messages_auth, messages__send_error };

static int messages__answer(http_req_t *req, struct messages__ctx *c, const msgreq_t *mr,
                            agent_res_t *res)
{
    json_object *o;
    int rc;

    if (res->client_gone || req->client_gone) {
        req->client_gone = 1;
        return -EPIPE;
    }
    if (res->status != 200 && (!mr->stream || !c->st.started))
        return msgout_send_error(req, res->err.status, NULL, "%s", res->err.msg);
    if (mr->stream) {
        if (res->status != 200) {
            log_warn("messages %s: error after the stream started: %s", c->st.id, res->err.msg);
            return msgout_stream_fail(&c->st, res->err.status, NULL, res->err.msg);
        }
        return msgout_stream_finish(&c->st, res->message, res->finish_reason, res->usage);
    }
    o = msgout_message(c->st.id, mr->model, res->message, res->finish_reason, res->usage);
    if (!o)
        return msgout_send_error(req, 500, NULL, "out of memory");
    rc = http_send_json(req, 200, o, NULL);
    json_object_put(o);
    return rc;
}

int messages_handle(http_req_t *req, svc_t *svc)
{
    msgreq_t mr;
    aip_err_t err;
    agent_req_t areq;
    agent_res_t res;
    struct messages__ctx ctx;
    json_object *assistant, *backend = NULL, *bname = NULL;
    char id[MSGOUT_ID_MAX];
    int rc;

    memset(&res, 0, sizeof(res));
    rc = msgreq_parse(req->body, req->body_len, &mr, &err);
    if (rc == -EINVAL)
        return msgout_send_error(req, 400, NULL, "%s%s%s", err.param, err.param[0] ? ": " : "",
                                 err.msg);
    if (rc != 0)
        return msgout_send_error(req, 500, NULL, "out of memory reading the request");
    assistant = reg_get(svc->reg, "assistants", mr.model);
    if (!assistant) {
        rc = msgout_send_error(req, 404, NULL, "model: the model '%s' does not exist: no "
                               "assistant has that name. GET /v1/models lists the assistants.",
                               mr.model);
        goto out;
    }
    if (json_object_object_get_ex(assistant, "backend", &bname))
        backend = reg_get(svc->reg, "backends", json_object_get_string(bname));
    if (!backend) {
        rc = msgout_send_error(req, 500, NULL, "assistant '%s' names backend '%s', which the "
                               "registry does not hold: fix the registry (admin API or config)",
                               mr.model, bname ? json_object_get_string(bname) : "");
        goto out;
    }
    msgout_new_id(id);
    memset(&ctx, 0, sizeof(ctx));
    ctx.req = req;
    msgout_stream_init(&ctx.st, req, mr.model, id);
    ctx.st.defer_flush = mr.stream;
    memset(&areq, 0, sizeof(areq));
    areq.assistant_name = mr.model;
    areq.assistant = assistant;
    areq.backend = backend;
    areq.mcp_servers = reg_all(svc->reg, "mcp_servers");
    areq.body = mr.body;
    areq.stream = mr.stream;
    areq.on_delta = mr.stream ? messages__on_delta : NULL;
    areq.on_flush = mr.stream ? messages__on_flush : NULL;
    areq.alive = messages__alive;
    areq.ud = &ctx;
    agent_run(svc->agent, &areq, &res);
    rc = messages__answer(req, &ctx, &mr, &res);
out:
    agent_res_clear(&res);
    msgreq_clear(&mr);
    return rc;
}
