/* agent — the tool loop. See docs/agent.md for the semantics; in short:
 * offer the assistant's MCP tools, call the upstream, run the calls it asks
 * for (concurrently, through the broker), append them to the conversation and
 * call again, until it answers or the round cap forces an answer. */
#include "agent/agent.h"
#include "shared/jget.h"
#include "shared/caps.h"

#include "agent/mcpc.h"
#include "agent/mixed.h"
#include "agent/request.h"
#include "agent/sampling.h"
#include "agent/toolname.h"
#include "agent/toolround.h"
#include "agent/upstream.h"
#include "shared/sat.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AG_DEFAULT_ROUNDS    8

struct agent {
    up_t *up;
    mcpc_t *mcpc;
};

agent_t *agent_new(const char *redis_url, const char *prefix)
{
    agent_t *ag = calloc(1, sizeof(*ag));

    if (!ag)
        return NULL;
    ag->up = up_new();
    ag->mcpc = mcpc_new(redis_url, prefix);
    if (!ag->up || !ag->mcpc) {
        agent_free(ag);
        return NULL;
    }
    return ag;
}

void agent_free(agent_t *ag)
{
    if (!ag)
        return;
    up_free(ag->up);
    mcpc_free(ag->mcpc);
    free(ag);
}

struct mcpc *agent_broker(agent_t *ag)
{
    return ag->mcpc;
}

void agent_res_clear(agent_res_t *res)
{
    if (!res)
        return;
    json_object_put(res->message);
    json_object_put(res->usage);
    res->message = NULL;
    res->usage = NULL;
}

/* tool_images: the assistant's, else its backend's, else by kind (Anthropic
 * takes images in tool results; OpenAI-compatible servers vary, so off). The
 * byte cap per image for tr_hooks_t, 0 for text only. */
static size_t ag__image_cap(const agent_req_t *req)
{
    json_object *v = jget(req->assistant, "tool_images");
    const char *kind;

    if (!v || !json_object_is_type(v, json_type_boolean))
        v = jget(req->backend, "tool_images");
    if (v && json_object_is_type(v, json_type_boolean))
        return json_object_get_boolean(v) ? CAP_MCPC_IMAGE : 0;
    kind = jget_str(req->backend, "kind");
    return kind && strcmp(kind, "anthropic") == 0 ? CAP_MCPC_IMAGE : 0;
}

/* Milliseconds a call on these servers may take: the largest configured
 * server timeout (seconds), 60 s when none says. */
static int ag__timeout_ms(const agent_req_t *req, json_object *names)
{
    size_t n = names ? json_object_array_length(names) : 0;
    long best = 0;

    for (size_t i = 0; i < n; i++) {
        const char *name = json_object_get_string(json_object_array_get_idx(names, i));
        json_object *t = jget(jget(req->mcp_servers, name), "timeout");
        long s = t ? (long)json_object_get_int64(t) : 0;
        if (s > best)
            best = s;
    }
    if (best <= 0)
        best = 60;
    if (best > 3600)
        best = 3600;
    return (int)(best * 1000);
}

/* Fetches every server's catalog; a failure leaves mcpc's error in res. */
static int ag__catalogs(agent_t *ag, json_object *names, int timeout_ms, json_object *policy,
                        rq_catalog_t *cats, agent_res_t *res)
{
    size_t n = json_object_array_length(names);

    for (size_t i = 0; i < n; i++) {
        const char *name = json_object_get_string(json_object_array_get_idx(names, i));
        int rc;
        cats[i].server = name;
        cats[i].policy = policy;
        rc = mcpc_tools(ag->mcpc, name, timeout_ms, &cats[i].tools, &res->err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int ag__usage(agent_res_t *res, long prompt, long completion)
{
    json_object *u = json_object_new_object();

    if (!u)
        return -ENOMEM;
    json_object_object_add(u, "prompt_tokens", json_object_new_int64(prompt));
    json_object_object_add(u, "completion_tokens", json_object_new_int64(completion));
    json_object_object_add(u, "total_tokens", json_object_new_int64(sat_add_i64(prompt, completion)));
    res->usage = u;
    return 0;
}

/* The final assistant message; `calls` (stolen, may be NULL) are tool calls
 * the client must run. */
/* The text of successive turns is joined with a blank line between them
 * ("Let me check.\n\nIt is 5."), streamed and not alike, so the two answers
 * agree and turns do not run into each other. The stream side: the agent's
 * own on_delta in front of the caller's, sending the separator before the
 * first piece of a turn when an earlier turn already sent text. */
#define AG_TURN_SEP "\n\n"
typedef struct ag_sep {
    const agent_req_t *req;
    int had_text;     /* an earlier turn sent text */
    int turn_text;    /* this turn has sent text */
} ag_sep_t;

static int ag__sep_delta(void *ud, const char *text, size_t len)
{
    ag_sep_t *s = ud;

    if (len && !s->turn_text) {
        s->turn_text = 1;
        if (s->had_text) {
            int rc = s->req->on_delta(s->req->ud, AG_TURN_SEP, sizeof(AG_TURN_SEP) - 1);
            if (rc != 0)
                return rc;
        }
    }
    return s->req->on_delta(s->req->ud, text, len);
}

static int ag__sep_flush(void *ud)
{
    ag_sep_t *s = ud;

    return s->req->on_flush ? s->req->on_flush(s->req->ud) : 0;
}

static int ag__sep_alive(void *ud)
{
    ag_sep_t *s = ud;

    return s->req->alive ? s->req->alive(s->req->ud) : 1;
}

static int ag__sep_watch(void *ud)
{
    ag_sep_t *s = ud;

    return s->req->watch ? s->req->watch(s->req->ud) : -1;
}

static int ag__message(agent_res_t *res, const buf_t *content, json_object *calls)
{
    json_object *m = json_object_new_object();

    if (!m) {
        json_object_put(calls);
        return -ENOMEM;
    }
    json_object_object_add(m, "role", json_object_new_string("assistant"));
    if (calls && !content->len)
        json_object_object_add(m, "content", NULL);
    else
        json_object_object_add(m, "content", json_object_new_string_len(buf_str(content),
                                                                         (int)content->len));
    if (calls)
        json_object_object_add(m, "tool_calls", calls);
    res->message = m;
    return 0;
}

static long long ag__now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A turn event to the caller (TURN_START, or TURN_DONE with `turn`'s
 * usage). Non-zero: the client is gone. */
static int ag__turn_event(const agent_req_t *req, agent_ev_kind_t kind, const agent_res_t *res,
                          const be_turn_t *turn, int status, long long us, char *tp)
{
    agent_event_t ev;
    json_object *m = jget(req->assistant, "model");

    if (!req->on_event)
        return 0;
    memset(&ev, 0, sizeof(ev));
    ev.kind = kind;
    ev.round = res->upstream_turns;
    ev.status = status;
    ev.us = us;
    ev.model = m ? json_object_get_string(m) : NULL;
    ev.traceparent = tp;
    ev.finish_reason = turn ? turn->finish_reason : NULL;
    if (turn && turn->has_usage) {
        ev.prompt_tokens = turn->prompt_tokens;
        ev.completion_tokens = turn->completion_tokens;
    }
    return req->on_event(req->ud, &ev);
}

int agent_run(agent_t *ag, const agent_req_t *req, agent_res_t *res)
{
    json_object *names, *upreq = NULL, *v, *restored = NULL;
    rq_catalog_t *cats = NULL;
    tn_map_t *map = NULL;
    tr_history_t hist;
    const be_ops_t *be;
    const char *kind;
    size_t ncats = 0;
    long max_rounds = AG_DEFAULT_ROUNDS, prompt = 0, completion = 0;
    int ours, offer, has_usage = 0, timeout_ms, rc = -EIO;
    buf_t content;
    be_turn_t turn;
    up_call_t call;
    ag_sep_t sep = {0};
    char tp[AGENT_TRACEPARENT_SIZE] = "";
    smp_ctx_t smp = { ag->up, NULL, NULL, req->backend, req->assistant, req->assistant_name,
                      req->alive, req->ud, req->request_id };   /* sampling by the backend */
    tr_hooks_t trh = { req->alive, req->on_event, req->ud, ag__image_cap(req), &smp,
                       req->request_id };

    memset(res, 0, sizeof(*res));
    res->status = 500;
    buf_init(&content, CAP_AG_CONTENT);
    be_turn_init(&turn, CAP_AG_TURN_CONTENT);
    tr_history_init(&hist);
    kind = json_object_get_string(jget(req->backend, "kind"));
    if (!(be = be_lookup(kind))) {
        aip_err_set(&res->err, 500, "api_error", "backend_unsupported",
                    "backend kind '%s' of assistant '%s' is not supported", kind ? kind : "",
                    req->assistant_name);
        goto out;
    }
    if (!(map = tn_new()))
        goto nomem;
    if ((v = jget(req->assistant, "max_tool_iterations")))
        max_rounds = (long)json_object_get_int64(v);
    names = jget(req->assistant, "mcp_servers");
    timeout_ms = ag__timeout_ms(req, names);
    if (names && json_object_is_type(names, json_type_array) && max_rounds > 0 &&
        (ncats = json_object_array_length(names)) > 0) {
        if (!(cats = calloc(ncats, sizeof(*cats))))
            goto nomem;
        if ((rc = ag__catalogs(ag, names, timeout_ms, req->tool_policy, cats, res)) < 0)
            goto out;
    }
    /* a follow-up to a mixed turn: its stored MCP round goes back in */
    if (ncats && (rc = mx_restore(ag->mcpc, req->assistant_name, req->body, &restored,
                                  &res->err)) < 0)
        goto out;
    if ((rc = rq_build(req->assistant_name, req->assistant, restored ? restored : req->body,
                       cats, ncats, map, req->stream, &upreq, &res->err)) < 0)
        goto out;
    if (req->on_event) {
        agent_event_t ev = {.kind = AGENT_EV_READY};
        if (req->on_event(req->ud, &ev) != 0) {
            aip_err_client_gone(&res->err);
            rc = -ECONNABORTED;
            goto out;
        }
    }
    ours = offer = tn_ours(map) > 0;
    memset(&call, 0, sizeof(call));
    call.be = be;
    call.backend_name = json_object_get_string(jget(req->assistant, "backend"));
    smp.be = be;
    smp.backend_name = call.backend_name;
    call.backend = req->backend;
    call.req = upreq;
    call.stream = req->stream;
    sep.req = req;
    call.on_delta = req->on_delta ? ag__sep_delta : NULL;
    call.on_flush = req->on_flush ? ag__sep_flush : NULL;
    call.alive = req->alive ? ag__sep_alive : NULL;
    call.watch = req->watch ? ag__sep_watch : NULL;
    call.ud = &sep;
    call.request_id = req->request_id;
    call.traceparent = tp;
    call.tracestate = req->tracestate;
    for (;;) {
        int r;
        long long t0;
        be_turn_clear(&turn);
        be_turn_init(&turn, CAP_AG_TURN_CONTENT);
        tp[0] = '\0';
        if (ag__turn_event(req, AGENT_EV_TURN_START, res, NULL, 0, 0, tp) != 0) {
            aip_err_client_gone(&res->err);
            rc = -ECONNABORTED;
            goto out;
        }
        t0 = ag__now_us();
        r = up_turn(ag->up, &call, &turn, &res->err);
        res->upstream_us += ag__now_us() - t0;
        (void)ag__turn_event(req, AGENT_EV_TURN_DONE, res, &turn, r < 0 ? res->err.status : 200,
                             ag__now_us() - t0, NULL);
        res->upstream_turns++;
        if (turn.has_usage) {
            has_usage = 1;
            /* counts come from the upstream: a hostile one must not overflow */
            prompt = sat_add_i64(prompt, turn.prompt_tokens);
            completion = sat_add_i64(completion, turn.completion_tokens);
            res->prompt_tokens = prompt;
            res->completion_tokens = completion;
        }
        if ((rc = r) < 0)
            goto out;
        sep.had_text |= sep.turn_text;
        sep.turn_text = 0;
        if ((content.len && turn.content.len &&
             buf_append(&content, AG_TURN_SEP, sizeof(AG_TURN_SEP) - 1) < 0) ||
            buf_append(&content, turn.content.data ? turn.content.data : "", turn.content.len) < 0) {
            rc = aip_err_set(&res->err, 502, "api_error", "upstream_bad_response",
                             "the assistant's answer passed %u bytes", CAP_AG_CONTENT);
            goto out;
        }
        if (!turn.tool_calls || !json_object_array_length(turn.tool_calls))
            break;
        if (!ours || tr_wants_client(map, turn.tool_calls)) {
            /* client tools (or a pure pass-through assistant): the client runs
             * them; ours of a mixed turn run now and are kept for its return */
            json_object *calls;
            if (ours && offer && mx_is_mixed(map, turn.tool_calls)) {
                r = mx_run(ag->mcpc, map, req->assistant_name, &turn, res->tool_rounds,
                           timeout_ms, mx_ttl(), &trh, &hist, &res->err);
                if (r < 0) {
                    rc = r;
                    goto out;
                }
                res->tool_rounds++;
            }
            calls = ours ? tr_client_calls(map, turn.tool_calls)
                         : json_object_get(turn.tool_calls);
            if (!calls || ag__message(res, &content, calls) < 0)
                goto nomem;
            snprintf(res->finish_reason, sizeof(res->finish_reason), "tool_calls");
            goto done;
        }
        if (!offer)
            break;  /* tools were withdrawn: calls made anyway are not run */
        if (req->alive && !req->alive(req->ud)) {
            aip_err_client_gone(&res->err);
            rc = -ECONNABORTED;
            goto out;
        }
        r = tr_run(ag->mcpc, map, upreq, &turn, res->tool_rounds, timeout_ms, &trh, &hist,
                   &res->err);
        if (r < 0) {
            rc = r;
            goto out;
        }
        res->tool_rounds++;
        if (res->tool_rounds >= max_rounds || r == TR_REPEATED) {
            /* the next turn offers no tools, so the model must answer */
            rq_drop_tools(upreq);
            offer = 0;
        }
    }
    if (ag__message(res, &content, NULL) < 0)
        goto nomem;
    snprintf(res->finish_reason, sizeof(res->finish_reason), "%s",
             !turn.finish_reason[0] || strcmp(turn.finish_reason, "tool_calls") == 0
                 ? "stop" : turn.finish_reason);
done:
    if (has_usage && ag__usage(res, prompt, completion) < 0)
        goto nomem;
    res->status = 200;
    rc = 0;
    goto out;
nomem:
    rc = aip_err_oom(&res->err);
out:
    if (rc < 0) {
        json_object_put(res->message);
        res->message = NULL;
        if (!aip_err_is_set(&res->err))   /* every path sets it; never answer 0 */
            aip_err_set(&res->err, 500, "api_error", NULL, "the agent failed");
        res->status = res->err.status;
        res->client_gone = rc == -ECONNABORTED;
    }
    tr_history_clear(&hist);
    be_turn_clear(&turn);
    buf_free(&content);
    for (size_t i = 0; i < ncats; i++)
        json_object_put(cats[i].tools);
    free(cats);
    json_object_put(upreq);
    json_object_put(restored);
    tn_free(map);
    return rc;
}
