#include "agent/toolround.h"
#include "agent/agent.h"   /* agent_event_t, the events a round emits */
#include "agent/sampling.h"
#include "shared/jtext.h"
#include "shared/jget.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tr_history_init(tr_history_t *h)
{
    h->prev[0] = h->prev[1] = NULL;
}

void tr_history_clear(tr_history_t *h)
{
    json_object_put(h->prev[0]);
    json_object_put(h->prev[1]);
    h->prev[0] = h->prev[1] = NULL;
}

static const char *tr__name(json_object *call)
{
    const char *s = json_object_get_string(jget(jget(call, "function"), "name"));
    return s ? s : "";
}

static const char *tr__args(json_object *call)
{
    const char *s = json_object_get_string(jget(jget(call, "function"), "arguments"));
    return s ? s : "";
}

static int tr__is_client(const tn_map_t *map, const char *name)
{
    const char *sv, *tl;
    return tn_taken(map, name) && tn_lookup(map, name, &sv, &tl) < 0;
}

int tr_wants_client(const tn_map_t *map, json_object *calls)
{
    size_t n = json_object_array_length(calls);

    for (size_t i = 0; i < n; i++)
        if (tr__is_client(map, tr__name(json_object_array_get_idx(calls, i))))
            return 1;
    return 0;
}

json_object *tr_client_calls(const tn_map_t *map, json_object *calls)
{
    json_object *out = json_object_new_array();
    size_t n = json_object_array_length(calls);

    for (size_t i = 0; out && i < n; i++) {
        json_object *c = json_object_array_get_idx(calls, i);
        if (tr__is_client(map, tr__name(c)) && json_object_array_add(out, json_object_get(c))) {
            json_object_put(c);
            json_object_put(out);
            return NULL;
        }
    }
    return out;
}

static int tr__in(json_object *arr, const char *s)
{
    size_t n = arr ? json_object_array_length(arr) : 0;

    for (size_t i = 0; i < n; i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(arr, i)), s) == 0)
            return 1;
    return 0;
}

/* Records this round's calls; 1 when one of them was in both previous rounds. */
static int tr__repeat(tr_history_t *h, json_object *calls)
{
    json_object *cur = json_object_new_array();
    size_t n = json_object_array_length(calls);
    int rep = 0;

    if (!cur)
        return 0;
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(calls, i);
        size_t ln = strlen(tr__name(c)) + strlen(tr__args(c)) + 2;
        char *sig = malloc(ln);
        if (!sig)
            break;
        snprintf(sig, ln, "%s\n%s", tr__name(c), tr__args(c));
        if (tr__in(h->prev[0], sig) && tr__in(h->prev[1], sig))
            rep = 1;
        json_object_array_add(cur, json_object_new_string(sig));
        free(sig);
    }
    json_object_put(h->prev[1]);
    h->prev[1] = h->prev[0];
    h->prev[0] = cur;
    return rep;
}

static char *tr__errtext(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *tr__errtext(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

/* Checks a call before it goes to the broker; a reason text (malloc'd) when
 * it must not, NULL when it may (or on ENOMEM, with *nomem set). */
static char *tr__check(const tn_map_t *map, json_object *c, const char **server,
                       const char **tool, int *nomem)
{
    const char *name = tr__name(c), *args = tr__args(c);
    json_object *parsed = NULL;
    char *why = NULL, jerr[160];
    int rc;

    *nomem = 0;
    if (tn_lookup(map, name, server, tool) < 0) {
        why = tr__errtext("[tool error] unknown tool '%s': call one of the tools offered", name);
        goto out;
    }
    /* read as the call will read them (mcpc: jtext_parse) */
    rc = jtext_parse(args, strlen(args), JSON_TOKENER_DEFAULT_DEPTH, &parsed, jerr, sizeof jerr);
    if (rc == -ENOMEM)
        *nomem = 1;
    else if (rc < 0)
        why = tr__errtext("[tool error] invalid JSON arguments for tool '%s': %s", name, jerr);
    else if (!json_object_is_type(parsed, json_type_object))
        why = tr__errtext("[tool error] arguments for tool '%s' must be a JSON object", name);
    json_object_put(parsed);
out:
    return why;
}

/* A tool message's content: the result's parts when it carries images the
 * upstream may see, else its text. NULL on ENOMEM. */
static json_object *tr__content(const mcpc_call_t *mc, const char *text, size_t image_cap)
{
    json_object *parts = NULL;
    int nomem = 0;

    if (mc->result && image_cap && (parts = mcpc_parts(mc->result, image_cap, &nomem)))
        return parts;
    return nomem ? NULL : json_object_new_string(text);
}

static int tr__append(json_object *req, be_turn_t *turn, mcpc_call_t *mc, char **texts,
                      size_t n, size_t image_cap)
{
    json_object *msgs = jget(req, "messages"), *m = NULL, *content;
    int rc = -ENOMEM;

    if (!(m = json_object_new_object()))
        goto out;
    json_object_object_add(m, "role", json_object_new_string("assistant"));
    json_object_object_add(m, "content", turn->content.len
                                             ? json_object_new_string(buf_str(&turn->content))
                                             : NULL);
    json_object_object_add(m, "tool_calls", json_object_get(turn->tool_calls));
    if (json_object_array_add(msgs, m) != 0)
        goto out;
    m = NULL;
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(turn->tool_calls, i);
        const char *text = texts[i] ? texts[i] : mc[i].text ? mc[i].text : "[tool error] no result";
        if (!(m = json_object_new_object()))
            goto out;
        json_object_object_add(m, "role", json_object_new_string("tool"));
        json_object_object_add(m, "tool_call_id", json_object_get(jget(c, "id")));
        if (!(content = tr__content(&mc[i], text, texts[i] ? 0 : image_cap)))
            goto out;
        json_object_object_add(m, "content", content);
        if (json_object_array_add(msgs, m) != 0)
            goto out;
        m = NULL;
    }
    rc = 0;
out:
    json_object_put(m);
    return rc;
}

/* The round as the event hooks see it: call i of the turn is batch entry
 * pos[i] (or answered here), with its server and tool. */
typedef struct tr_evctx {
    const tr_hooks_t *h;
    json_object *calls;      /* turn->tool_calls */
    int round;
    const char **server, **tool;
    size_t *idx;             /* batch entry -> call */
    mcpc_call_t *batch;
} tr_evctx_t;

/* Fills the event's call fields for call i. */
static void tr__ev_call(const tr_evctx_t *x, size_t i, agent_ev_kind_t kind, agent_event_t *ev)
{
    json_object *c = json_object_array_get_idx(x->calls, i);

    memset(ev, 0, sizeof(*ev));
    ev->kind = kind;
    ev->round = x->round;
    ev->call_id = json_object_get_string(jget(c, "id"));
    ev->name = tr__name(c);
    ev->server = x->server[i];
    ev->tool = x->tool[i];
    ev->total = -1;
}

static int tr__emit(const tr_evctx_t *x, const agent_event_t *ev)
{
    return x->h && x->h->on_event ? x->h->on_event(x->h->ud, ev) : 0;
}

/* A tool's MCP server asks for a completion: the assistant's own backend
 * answers (agent/sampling.c), or it is refused. */
static int tr__sampling(void *ud, size_t index, json_object *params, long long left_ms,
                        json_object **result, char *err, size_t errlen)
{
    const tr_evctx_t *x = ud;

    (void)index;
    if (!x->h || !x->h->sampling) {
        snprintf(err, errlen, "sampling/createMessage refused: not served for this request");
        return -ENOTSUP;
    }
    return smp_answer(x->h->sampling, params, left_ms, result, err, errlen);
}

static int tr__alive(void *ud)
{
    const tr_evctx_t *x = ud;

    return x->h && x->h->alive ? x->h->alive(x->h->ud) : 1;
}

static int tr__progress(void *ud, const mcpc_progress_t *p)
{
    const tr_evctx_t *x = ud;
    agent_event_t ev;

    tr__ev_call(x, x->idx[p->index], AGENT_EV_TOOL_PROGRESS, &ev);
    ev.progress = p->progress;
    ev.total = p->total;
    ev.message = p->message;
    return tr__emit(x, &ev);
}

static int tr__done(void *ud, size_t index, long long ms)
{
    const tr_evctx_t *x = ud;
    agent_event_t ev;

    tr__ev_call(x, x->idx[index], AGENT_EV_TOOL_DONE, &ev);
    ev.is_error = x->batch[index].is_error;
    ev.outcome = x->batch[index].outcome;
    ev.ms = ms;
    ev.result = x->batch[index].text;
    return tr__emit(x, &ev);
}

/* TOOL_START for every call (the caller may give each a traceparent in
 * tps[i]), then TOOL_DONE for those answered here. */
static int tr__announce(const tr_evctx_t *x, json_object *calls, char **texts, size_t n,
                        char (*tps)[AGENT_TRACEPARENT_SIZE])
{
    agent_event_t ev;

    for (size_t i = 0; i < n; i++) {
        tr__ev_call(x, i, AGENT_EV_TOOL_START, &ev);
        ev.args_json = tr__args(json_object_array_get_idx(calls, i));
        ev.traceparent = tps[i];
        if (tr__emit(x, &ev) != 0)
            return -ECONNABORTED;
    }
    for (size_t i = 0; i < n; i++) {
        if (!texts[i])
            continue;
        tr__ev_call(x, i, AGENT_EV_TOOL_DONE, &ev);
        ev.is_error = 1;
        ev.outcome = AGENT_TOOL_ERROR;
        ev.result = texts[i];
        if (tr__emit(x, &ev) != 0)
            return -ECONNABORTED;
    }
    return 0;
}

int tr_run(mcpc_t *mcpc, const tn_map_t *map, json_object *req, be_turn_t *turn, int round,
           int timeout_ms, const tr_hooks_t *hooks, tr_history_t *hist, aip_err_t *e)
{
    size_t n = json_object_array_length(turn->tool_calls), k = 0, m = n ? n : 1;
    mcpc_call_t *mc = calloc(m, sizeof(*mc)), *batch = calloc(m, sizeof(*batch));
    size_t *idx = calloc(m, sizeof(*idx));
    char **texts = calloc(m, sizeof(*texts));
    const char **servers = calloc(m, sizeof(*servers)), **tools = calloc(m, sizeof(*tools));
    char (*tps)[AGENT_TRACEPARENT_SIZE] = calloc(m, sizeof(*tps));
    tr_evctx_t x = { hooks, turn->tool_calls, round, servers, tools, idx, batch };
    int rc = -ENOMEM, nomem;

    if (!mc || !batch || !idx || !texts || !servers || !tools || !tps)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(turn->tool_calls, i), *id = jget(c, "id");
        const char *server = NULL, *tool = NULL;
        if (!id || !*json_object_get_string(id)) {
            char gen[48];
            snprintf(gen, sizeof(gen), "call_%d_%zu", round, i);
            json_object_object_add(c, "id", json_object_new_string(gen));
        }
        texts[i] = tr__check(map, c, &server, &tool, &nomem);
        if (nomem)
            goto nomem;
        servers[i] = server;
        tools[i] = tool;
        if (texts[i])
            continue;
        batch[k].server = server;
        batch[k].tool = tool;
        batch[k].args_json = tr__args(c);
        batch[k].request_id = hooks ? hooks->request_id : NULL;
        idx[k++] = i;
    }
    if (tr__announce(&x, turn->tool_calls, texts, n, tps) < 0) {
        aip_err_client_gone(e);
        rc = -ECONNABORTED;
        goto out;
    }
    for (size_t j = 0; j < k; j++)
        batch[j].traceparent = tps[idx[j]];
    if (k) {
        mcpc_hooks_t mh = { .alive = tr__alive, .ud = &x, .on_sampling = tr__sampling };
        if (hooks && hooks->on_event) {
            mh.on_progress = tr__progress;
            mh.on_done = tr__done;
        }
        rc = mcpc_call_many(mcpc, batch, k, timeout_ms, &mh, e);
        if (rc < 0)
            goto out;
        for (size_t j = 0; j < k; j++) {
            mc[idx[j]].text = batch[j].text;
            mc[idx[j]].result = batch[j].result;
            batch[j].text = NULL;
            batch[j].result = NULL;
        }
    }
    if (tr__append(req, turn, mc, texts, n, hooks ? hooks->image_cap : 0) < 0)
        goto nomem;
    rc = tr__repeat(hist, turn->tool_calls) ? TR_REPEATED : 0;
    goto out;
nomem:
    rc = aip_err_oom(e);
out:
    if (batch)
        mcpc_calls_clear(batch, k);
    if (mc)
        mcpc_calls_clear(mc, n);
    for (size_t i = 0; texts && i < n; i++)
        free(texts[i]);
    free(servers);
    free(tools);
    free(tps);
    free(texts);
    free(idx);
    free(batch);
    free(mc);
    return rc;
}
