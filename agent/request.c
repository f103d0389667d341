#include "agent/request.h"
#include "shared/jget.h"
#include "shared/toolsel.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Fields the client may set that override the assistant's defaults or are
 * passed on as they are. Anything else the client sends is not forwarded:
 * the upstream request is ours, and unknown fields break strict upstreams. */
static const char *const rq__client_fields[] = {
    "temperature", "top_p", "max_tokens", "stop", "seed", "presence_penalty",
    "frequency_penalty", "response_format", "user", "logit_bias", "parallel_tool_calls",
    "max_completion_tokens", "reasoning_effort", "n", "tool_choice", NULL,
};

#define RQ__NCLIENT (sizeof(rq__client_fields) / sizeof(rq__client_fields[0]))

/* found[i] = the body's non-null value of rq__client_fields[i], in one walk
 * over the body's members (a chat request has two or three) rather than a
 * hash lookup per entry of the table, most of them absent. */
static void rq__client_values(json_object *body, json_object **found)
{
    if (!body || !json_object_is_type(body, json_type_object))
        return;
    json_object_object_foreach(body, key, val) {
        if (!val)
            continue;
        for (size_t i = 0; rq__client_fields[i]; i++) {
            if (key[0] == rq__client_fields[i][0] && strcmp(key, rq__client_fields[i]) == 0) {
                found[i] = val;
                break;
            }
        }
    }
}

static const char *const rq__assistant_fields[] = { "temperature", "top_p", "max_tokens", NULL };

/* Sets o[key] = v (v owned; NULL: memory ran out). Every key but
 * rq__set_copy's is a string literal or a static table's entry: json-c keeps
 * the pointer instead of a strdup per field of every upstream request. */
static int rq__set_as(json_object *o, const char *key, json_object *v, unsigned opts)
{
    if (!v)
        return -ENOMEM;
    if (json_object_object_add_ex(o, key, v, opts) != 0) {
        json_object_put(v);
        return -ENOMEM;
    }
    return 0;
}

static int rq__set(json_object *o, const char *key, json_object *v)
{
    return rq__set_as(o, key, v, JSON_C_OBJECT_KEY_IS_CONSTANT);
}

/* rq__set for a key that lives no longer than its source (a registry
 * object's own keys): json-c copies it. */
static int rq__set_copy(json_object *o, const char *key, json_object *v)
{
    return rq__set_as(o, key, v, 0);
}

static int rq__messages(json_object *assistant, json_object *body, json_object *req,
                        aip_err_t *e)
{
    json_object *in = jget(body, "messages"), *out = NULL, *first, *role, *sys = NULL, *sp;
    const char *prompt = NULL, *r;
    size_t n;
    int rc = -ENOMEM;

    if (!in || !json_object_is_type(in, json_type_array)) {
        aip_err_set(e, 400, "invalid_request_error", NULL, "messages: must be an array");
        aip_err_param(e, "messages");
        rc = -EINVAL;
        goto out;
    }
    n = json_object_array_length(in);
    if (!(out = json_object_new_array_ext((int)n + 1)))
        goto out;
    if ((sp = jget(assistant, "system_prompt")) && json_object_is_type(sp, json_type_string))
        prompt = json_object_get_string(sp);
    if (prompt && *prompt) {
        first = n ? json_object_array_get_idx(in, 0) : NULL;
        role = jget(first, "role");
        r = role ? json_object_get_string(role) : "";
        if (strcmp(r, "system") != 0 && strcmp(r, "developer") != 0) {
            if (!(sys = json_object_new_object()) ||
                rq__set(sys, "role", json_object_new_string("system")) < 0 ||
                rq__set(sys, "content", json_object_new_string(prompt)) < 0 ||
                json_object_array_add(out, sys) != 0)
                goto out;
            sys = NULL;
        }
    }
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(in, i);
        if (json_object_array_add(out, json_object_get(m)) != 0) {
            json_object_put(m);
            goto out;
        }
    }
    rc = rq__set(req, "messages", out);
    out = NULL;
out:
    json_object_put(sys);
    json_object_put(out);
    return rc;
}

/* The tools of catalog `cat` its key's policy lets through (a new array;
 * the caller puts it), or NULL when the catalog has no key policy (or memory
 * ran out: the whole catalog then counts, as it did before policies). */
static json_object *rq__key_offers(const rq_catalog_t *cat)
{
    json_object *out;
    size_t n;

    if (!cat->policy || !json_object_is_type(cat->tools, json_type_array) ||
        !(out = json_object_new_array()))
        return NULL;
    n = json_object_array_length(cat->tools);
    for (size_t i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(cat->tools, i), *nm = NULL;
        if (json_object_object_get_ex(t, "name", &nm) &&
            tsel_why(cat->policy, cat->server, json_object_get_string(nm)) == TSEL_OFFERED)
            json_object_array_add(out, json_object_get(t));
    }
    return out;
}

/* The tool cap (shared/toolsel.h): the assistant's own tools past it are
 * its operator's to fix (502 too_many_tools: a catalog grew, or the cap was
 * lowered, since the assistant was checked); the client's tools that do not
 * fit beside them are the client's (400, param tools). */
static int rq__cap(const char *name, json_object *assistant, const rq_catalog_t *cats,
                   size_t ncats, size_t nclient, aip_err_t *e)
{
    tsel_tally_t tally;
    long cap = tsel_cap(assistant);
    char msg[AIP_ERR_MSG_MAX];

    tsel_tally_init(&tally);
    for (size_t c = 0; c < ncats; c++) {
        json_object *offered = rq__key_offers(&cats[c]);
        tsel_tally_add(&tally, assistant, cats[c].server, offered ? offered : cats[c].tools);
        json_object_put(offered);
    }
    if (tally.total > (size_t)cap) {
        tsel_over_msg(&tally, name, 0, cap, msg, sizeof(msg));
        aip_err_set(e, 502, "api_error", "too_many_tools", "%s", msg);
        return -E2BIG;
    }
    if (tally.total + nclient > (size_t)cap) {
        tsel_over_msg(&tally, name, nclient, cap, msg, sizeof(msg));
        aip_err_set(e, 400, "invalid_request_error", "too_many_tools", "%s", msg);
        aip_err_param(e, "tools");
        return -E2BIG;
    }
    return 0;
}

/* Appends our function tools (those the assistant's tools.allow/deny let
 * through), then the client's. */
static int rq__tools(const char *aname, json_object *assistant, json_object *body,
                     const rq_catalog_t *cats, size_t ncats, tn_map_t *map, json_object *req,
                     aip_err_t *e)
{
    json_object *client = jget(body, "tools"), *tools = NULL, *t = NULL, *fn = NULL;
    size_t nclient = 0;
    int rc = -ENOMEM;

    if (client) {
        if (!json_object_is_type(client, json_type_array)) {
            aip_err_set(e, 400, "invalid_request_error", NULL, "tools: must be an array");
            aip_err_param(e, "tools");
            rc = -EINVAL;
            goto out;
        }
        nclient = json_object_array_length(client);
    }
    if ((rc = rq__cap(aname, assistant, cats, ncats, nclient, e)) < 0)
        goto out;
    rc = -ENOMEM;
    if (client) {
        for (size_t i = 0; i < nclient; i++) {
            json_object *name = jget(jget(json_object_array_get_idx(client, i), "function"),
                                        "name");
            if (name && (rc = tn_reserve(map, json_object_get_string(name))) < 0)
                goto out;
        }
    }
    if (!(tools = json_object_new_array()))
        goto out;
    /* every name first: an offered name depends on which others collide */
    for (size_t c = 0; c < ncats; c++) {
        size_t nt;
        if (!cats[c].tools || !json_object_is_type(cats[c].tools, json_type_array))
            continue;
        nt = json_object_array_length(cats[c].tools);
        for (size_t i = 0; i < nt; i++) {
            json_object *mt = json_object_array_get_idx(cats[c].tools, i), *v;
            const char *tname;
            v = jget(mt, "name");
            tname = v ? json_object_get_string(v) : "";
            if (tsel_why_tool(assistant, cats[c].server, mt) != TSEL_OFFERED)
                continue;   /* not on the assistant's allow-list, denied, or a task */
            if (cats[c].policy && tsel_why(cats[c].policy, cats[c].server, tname) != TSEL_OFFERED)
                continue;   /* the caller's key may not use it */
            rc = tn_add(map, cats[c].server, tname, mt);
            if (rc == -EINVAL || rc == -EEXIST)
                continue;   /* nameless: cannot be called; listed twice: offered once */
            if (rc < 0)
                goto out;
        }
    }
    if ((rc = tn_seal(map)) < 0)
        goto out;
    rc = -ENOMEM;
    for (size_t k = 0; k < tn_ours(map); k++) {
        json_object *mt, *v;
        const char *offered;
        void *ud;
        tn_get(map, k, &offered, NULL, NULL, &ud);
        mt = ud;
        if (!(t = json_object_new_object()) || !(fn = json_object_new_object()))
            goto out;
        if (rq__set(fn, "name", json_object_new_string(offered)) < 0)
            goto out;
        /* the title is for people; the model gets it only when there is no
         * description (docs/agent.md) */
        v = jget(mt, "description");
        if ((!v || !*json_object_get_string(v)) && (v = jget(mt, "title")) &&
            !json_object_is_type(v, json_type_string))
            v = NULL;
        if (v && rq__set(fn, "description", json_object_get(v)) < 0)
            goto out;
        v = jget(mt, "inputSchema");
        if (v && json_object_is_type(v, json_type_object)) {
            if (rq__set(fn, "parameters", json_object_get(v)) < 0)
                goto out;
        } else if (rq__set(fn, "parameters",
                           json_tokener_parse("{\"type\":\"object\",\"properties\":{}}")) < 0) {
            goto out;
        }
        if (rq__set(t, "type", json_object_new_string("function")) < 0)
            goto out;
        rc = rq__set(t, "function", fn);
        fn = NULL;
        if (rc < 0 || (rc = -ENOMEM, json_object_array_add(tools, t) != 0))
            goto out;
        t = NULL;
    }
    for (size_t i = 0; i < nclient; i++) {
        json_object *ct = json_object_array_get_idx(client, i);
        if (json_object_array_add(tools, json_object_get(ct)) != 0) {
            json_object_put(ct);
            goto out;
        }
    }
    rc = 0;
    if (json_object_array_length(tools) > 0) {
        rc = rq__set(req, "tools", tools);
        tools = NULL;
    }
out:
    json_object_put(fn);
    json_object_put(t);
    json_object_put(tools);
    return rc;
}

int rq_build(const char *name, json_object *assistant, json_object *body,
             const rq_catalog_t *cats, size_t ncats, tn_map_t *map, int stream,
             json_object **out, aip_err_t *e)
{
    json_object *req = NULL, *v, *opts = NULL, *extra, *client[RQ__NCLIENT] = { 0 };
    int rc = -ENOMEM;

    *out = NULL;
    if (!(req = json_object_new_object()))
        goto out;
    v = jget(assistant, "model");
    if (!v || !json_object_is_type(v, json_type_string) || !*json_object_get_string(v)) {
        aip_err_set(e, 500, "api_error", "assistant_misconfigured",
                    "assistant '%s': assistant model: missing", name ? name : "");
        rc = -EINVAL;
        goto out;
    }
    if ((rc = rq__set(req, "model", json_object_get(v))) < 0)
        goto out;
    if ((rc = rq__messages(assistant, body, req, e)) < 0)
        goto out;
    for (const char *const *f = rq__assistant_fields; *f; f++) {
        /* max_completion_tokens is the newer spelling: with both set,
         * OpenAI refuses the request, so the client's one wins alone. */
        if (strcmp(*f, "max_tokens") == 0 && jget(body, "max_completion_tokens"))
            continue;
        if ((v = jget(assistant, *f)) && (rc = rq__set(req, *f, json_object_get(v))) < 0)
            goto out;
    }
    rq__client_values(body, client);
    for (size_t i = 0; rq__client_fields[i]; i++)
        if (client[i] && (rc = rq__set(req, rq__client_fields[i], json_object_get(client[i]))) < 0)
            goto out;
    if ((rc = rq__tools(name, assistant, body, cats, ncats, map, req, e)) < 0)
        goto out;
    if (!jget(req, "tools")) {
        json_object_object_del(req, "tool_choice");
        json_object_object_del(req, "parallel_tool_calls");
    }
    extra = jget(assistant, "extra_body");
    if (extra && json_object_is_type(extra, json_type_object)) {
        json_object_object_foreach(extra, key, val) {
            if ((rc = rq__set_copy(req, key, json_object_get(val))) < 0)
                goto out;
        }
    }
    json_object_object_del(req, "stream");
    json_object_object_del(req, "stream_options");
    if (stream) {
        rc = -ENOMEM;
        if (rq__set(req, "stream", json_object_new_boolean(1)) < 0 ||
            !(opts = json_object_new_object()) ||
            rq__set(opts, "include_usage", json_object_new_boolean(1)) < 0)
            goto out;
        rc = rq__set(req, "stream_options", opts);
        opts = NULL;
        if (rc < 0)
            goto out;
    }
    *out = req;
    req = NULL;
    rc = 0;
out:
    if (rc == -ENOMEM)
        aip_err_oom(e);
    json_object_put(opts);
    json_object_put(req);
    return rc;
}

void rq_drop_tools(json_object *req)
{
    json_object_object_del(req, "tools");
    json_object_object_del(req, "tool_choice");
    json_object_object_del(req, "parallel_tool_calls");
}
