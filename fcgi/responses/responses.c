/* responses — the Responses surface's hooks (responses.h). */
#include "fcgi/responses/responses.h"
#include "fcgi/responses/respout.h"
#include "fcgi/responses/respreq.h"
#include "fcgi/responses/respstore.h"

#include "fcgi/auth/auth.h"
#include "fcgi/core/complete.h"
#include "shared/jget.h"

#include <errno.h>
#include <string.h>

/* The per-request state the runner keeps for us. */
struct resp__run {
    respreq_t rq;
    respout_t ro;
    svc_t *svc;
    char owner[RESPSTORE_OWNER_MAX];
    size_t lead;             /* body messages before the conversation: prompt, instructions */
};

static int resp__parse(void *run, const char *body, size_t len, complete_req_t *out,
                       aip_err_t *err)
{
    struct resp__run *r = run;
    int rc = respreq_parse(body, len, &r->rq, err);

    if (rc == 0) {
        out->model = r->rq.model;
        out->stream = r->rq.stream;
    }
    return rc;
}

/* The agent drops the assistant's system prompt when the request starts with
 * a system message of its own (chat completions' rule). Here instructions
 * come after that prompt, never instead of it: the prompt goes first. */
static int resp__own_prompt(struct resp__run *r, svc_t *svc)
{
    json_object *a = svc->reg ? reg_get(svc->reg, "assistants", r->rq.model) : NULL;
    json_object *msgs = jget_arr(r->rq.body, "messages"), *m = NULL, *all = NULL;
    size_t i;
    const char *prompt = jget_str(a, "system_prompt"),
               *first = jget_str(json_object_array_get_idx(msgs, 0), "role");

    if (!prompt || !*prompt || !first || (strcmp(first, "system") && strcmp(first, "developer")))
        return 0;
    if (!(all = json_object_new_array()) || !(m = json_object_new_object()) ||
        json_object_array_add(all, m) != 0)
        goto oom;
    if (json_object_object_add(m, "role", json_object_new_string("system")) != 0 ||
        json_object_object_add(m, "content", json_object_new_string(prompt)) != 0)
        goto oom_all;
    m = NULL;
    for (i = 0; i < json_object_array_length(msgs); i++)
        if (json_object_array_add(all, json_object_get(json_object_array_get_idx(msgs, i))) != 0)
            goto oom_all;
    /* json-c 0.16 has no array insert: the body gets the new array */
    if (json_object_object_add(r->rq.body, "messages", all) != 0)
        goto oom_all;
    r->lead++;
    return 0;
oom:
    json_object_put(m);
oom_all:
    json_object_put(all);
    return -ENOMEM;
}

/* The conversation so far (previous_response_id), then the translation. */
static int resp__prepare(void *run, http_req_t *req, svc_t *svc, complete_req_t *cr,
                         aip_err_t *err)
{
    struct resp__run *r = run;
    int rc;

    json_object *prev = NULL;

    r->svc = svc;
    respstore_owner(req, r->owner);
    if (r->rq.previous &&
        (rc = respstore_get(svc->reg, r->owner, r->rq.previous, "previous_response_id", &prev,
                            err)) != 0)
        return -EINVAL;   /* err: the 404 (or 503) to answer */
    rc = respreq_translate(&r->rq, jget_arr(prev, "messages"), err);
    json_object_put(prev);
    if (rc != 0)
        return rc;
    r->lead = (size_t)r->rq.has_instructions;
    cr->body = r->rq.body;
    return resp__own_prompt(r, svc);
}

/* store: true keeps the response, its input items and the conversation so
 * far (the body's messages after prompt and instructions, then the answer)
 * for previous_response_id. Best effort: a failure is logged, the answer
 * still goes out. */
static void resp__store(struct resp__run *r, const agent_res_t *res)
{
    json_object *msgs = jget_arr(r->rq.body, "messages"), *conv = json_object_new_array(),
                *items = respstore_input_items(jget(r->rq.in, "input"));
    size_t i, n = msgs ? json_object_array_length(msgs) : 0;

    if (!r->rq.store || res->status != 200 || !r->ro.final)
        goto out;
    if (!conv || !items)
        goto out;
    for (i = r->lead; i < n; i++)
        if (json_object_array_add(conv, json_object_get(json_object_array_get_idx(msgs, i))) != 0)
            goto out;
    if (res->message && json_object_array_add(conv, json_object_get(res->message)) != 0)
        goto out;
    respstore_put(r->svc->reg, r->owner, r->ro.final, items, conv);
out:
    json_object_put(items);
    json_object_put(conv);
}

static void resp__clear(void *run)
{
    struct resp__run *r = run;

    respout_clear(&r->ro);
    respreq_clear(&r->rq);
}

static const char *resp__begin(void *run, http_req_t *req, const complete_req_t *cr,
                               long long created)
{
    struct resp__run *r = run;

    /* ENOMEM leaves output NULL: every item add then fails as ENOMEM */
    respout_init(&r->ro, req, r->rq.in, cr->model, created, cr->stream);
    r->ro.defer_flush = cr->stream;
    return r->ro.id;
}

static int resp__delta(void *run, const char *text, size_t len)
{
    return respout_delta(&((struct resp__run *)run)->ro, text, len);
}

static int resp__flush(void *run)
{
    return respout_flush(&((struct resp__run *)run)->ro);
}

static int resp__started(const void *run)
{
    return ((const struct resp__run *)run)->ro.started;
}

static int resp__stream_end(void *run, const agent_res_t *res)
{
    struct resp__run *r = run;

    int rc;

    if (res->status != 200)
        return respout_fail(&r->ro, res);
    rc = respout_finish(&r->ro, res);
    resp__store(r, res);
    return rc;
}

static json_object *resp__answer(void *run, const complete_req_t *cr, const agent_res_t *res,
                                 long long created)
{
    struct resp__run *r = run;
    json_object *o;

    (void)cr;
    (void)created;
    if ((o = respout_response(&r->ro, res)))
        resp__store(r, res);
    return o;
}

/* aiproxy's own tool events (opt-in) have no carrier here: the loop is
 * already in the response as mcp_call items and their events. */
static int resp__tool_event(void *run, json_object *ev)
{
    (void)run;
    (void)ev;
    return 0;
}

static int resp__start(void *run)
{
    return respout_begin(&((struct resp__run *)run)->ro);
}

static int resp__keepalive(void *run)
{
    return respout_keepalive(&((struct resp__run *)run)->ro);
}

/* The loop's MCP calls become mcp_call items. */
static int resp__on_event(void *run, const agent_event_t *ev)
{
    int rc = respout_tool_event(&((struct resp__run *)run)->ro, ev);

    return rc == -EPIPE;   /* an item that cannot be built is left out, not fatal */
}

static const complete_surface_t resp__completion = {
    "responses", sizeof(struct resp__run), resp__parse, resp__clear, resp__begin,
    resp__delta, resp__flush, resp__started, resp__stream_end, resp__answer,
    resp__tool_event, resp__start, resp__keepalive, resp__prepare, resp__on_event, NULL,
};

/* The /v1 credential check, in the table's signature. */
static int resp__authorize(http_req_t *req, svc_t *svc)
{
    return auth_check(req, svc->reg);
}

const route_surface_t responses_surface = { "responses", resp__authorize, NULL,
                                            &resp__completion };
