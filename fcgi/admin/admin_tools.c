/* admin_tools — see admin_tools.h. */
#include "fcgi/admin/admin_tools.h"

#include "agent/toolname.h"
#include "shared/mono.h"
#include "shared/jget.h"
#include "shared/rpool.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The catalog of `server` into *tools (new), waiting at most its timeout and
 * what is left until `deadline`. 0, or a negative code with *e why. */
static int admin_tools__catalog(mcpc_t *c, json_object *servers, const char *server,
                                int ask_broker, long long deadline, json_object **tools,
                                aip_err_t *e)
{
    json_object *t = jget(jget(servers, server), "timeout");
    long long left = deadline - mono_ms(), own = t ? json_object_get_int64(t) : 60;

    if (own <= 0 || own > 3600)
        own = 60;
    own *= 1000;
    if (left > own)
        left = own;
    if (left <= 0) {
        *tools = NULL;
        return aip_err_set(e, 504, "api_error", "mcp_timeout",
                           "no time left to list the tools of MCP server '%s'", server);
    }
    return mcpc_tools_ex(c, server, (int)left, ask_broker, tools, e);
}

int admin_tools_check(mcpc_t *c, json_object *servers, const char *name, json_object *assistant,
                      int ask_broker, int budget_ms, char *msg, size_t msglen)
{
    json_object *names = jget(assistant, "mcp_servers");
    long long deadline = mono_ms() + budget_ms;
    long cap = tsel_cap(assistant);
    tsel_tally_t tally;
    size_t n;
    int rc = 0;

    msg[0] = '\0';
    if (!tsel_uses_mcp(assistant))
        return 0;
    tsel_tally_init(&tally);
    n = json_object_array_length(names);
    for (size_t i = 0; i < n; i++) {
        const char *server = json_object_get_string(json_object_array_get_idx(names, i));
        json_object *tools = NULL;
        aip_err_t e;
        if (admin_tools__catalog(c, servers, server, ask_broker, deadline, &tools, &e) < 0) {
            snprintf(msg, msglen, "the tools of assistant '%s' were not counted: MCP server "
                     "'%s': %s", name, server, e.msg);
            return -EAGAIN;
        }
        tsel_tally_add(&tally, assistant, server, tools);
        json_object_put(tools);
    }
    if (tally.total > (size_t)cap) {
        tsel_over_msg(&tally, name, 0, cap, msg, msglen);
        rc = -E2BIG;
    }
    return rc;
}

/* One entry of the listing's data, not offered yet (admin_tools_list marks
 * the offered ones once every name is known). NULL on ENOMEM. */
static json_object *admin_tools__entry(const char *server, const char *tool,
                                       const char *filtered_by, const char *reason)
{
    json_object *o = json_object_new_object();

    if (!o)
        return NULL;
    json_object_object_add(o, "name", NULL);
    json_object_object_add(o, "server", json_object_new_string(server));
    json_object_object_add(o, "tool", json_object_new_string(tool));
    json_object_object_add(o, "offered", json_object_new_boolean(0));
    if (filtered_by)
        json_object_object_add(o, "filtered_by", json_object_new_string(filtered_by));
    if (reason)
        json_object_object_add(o, "reason", json_object_new_string(reason));
    return o;
}

/* Adds the entries of one server's catalog; the tools the assistant offers
 * go into map, each with its entry. */
static int admin_tools__server(json_object *data, tn_map_t *map, json_object *assistant,
                               int uses, const char *server, json_object *tools)
{
    size_t n = json_object_is_type(tools, json_type_array) ? json_object_array_length(tools) : 0;

    for (size_t i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(tools, i), *v = jget(t, "name"), *e;
        const char *tool = v ? json_object_get_string(v) : NULL;
        const char *why = NULL, *reason = NULL;
        int w, rc = 0;
        if (!tool || !*tool)
            continue;   /* never offered: the request builder skips nameless tools */
        w = tsel_why_tool(assistant, server, t);
        if (!uses) {
            why = "max_tool_iterations";
        } else if (w == TSEL_TASK_REQUIRED) {
            why = "execution.taskSupport";
            reason = tsel_unofferable(t);
        } else if (w == TSEL_DENIED) {
            why = "tools.deny";
        } else if (w == TSEL_NOT_ALLOWED) {
            why = "tools.allow";
        }
        if (!(e = admin_tools__entry(server, tool, why, reason)) ||
            json_object_array_add(data, e) != 0) {
            json_object_put(e);
            return -ENOMEM;
        }
        if (!why && (rc = tn_add(map, server, tool, e)) == -EEXIST)
            json_object_object_add(e, "filtered_by", json_object_new_string("duplicate"));
        else if (rc < 0)
            return -ENOMEM;
    }
    return 0;
}

json_object *admin_tools_list(mcpc_t *c, json_object *servers, const char *name,
                              json_object *assistant, int budget_ms)
{
    json_object *names = jget(assistant, "mcp_servers"), *out = json_object_new_object();
    json_object *data = json_object_new_array(), *unav = json_object_new_array();
    long long deadline = mono_ms() + budget_ms;
    long cap = tsel_cap(assistant);
    tn_map_t *map = tn_new();
    size_t n = json_object_is_type(names, json_type_array) ? json_object_array_length(names) : 0;
    size_t count = 0;
    int uses = tsel_uses_mcp(assistant);

    if (!out || !data || !unav || !map)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        const char *server = json_object_get_string(json_object_array_get_idx(names, i));
        json_object *tools = NULL, *u;
        aip_err_t e;
        int rc;
        if (admin_tools__catalog(c, servers, server, 1, deadline, &tools, &e) < 0) {
            if (!(u = json_object_new_object()) || json_object_array_add(unav, u) != 0) {
                json_object_put(u);
                goto fail;
            }
            json_object_object_add(u, "server", json_object_new_string(server));
            json_object_object_add(u, "error", json_object_new_string(e.msg));
            continue;
        }
        rc = admin_tools__server(data, map, assistant, uses, server, tools);
        json_object_put(tools);
        if (rc < 0)
            goto fail;
    }
    if (tn_seal(map) < 0)
        goto fail;
    for (count = 0; count < tn_ours(map); count++) {
        const char *offered;
        void *e;
        tn_get(map, count, &offered, NULL, NULL, &e);
        json_object_object_add(e, "name", json_object_new_string(offered));
        json_object_object_add(e, "offered", json_object_new_boolean(1));
    }
    json_object_object_add(out, "object", json_object_new_string("list"));
    json_object_object_add(out, "assistant", json_object_new_string(name));
    json_object_object_add(out, "max_tools", json_object_new_int64(cap));
    json_object_object_add(out, "count", json_object_new_int64((int64_t)count));
    json_object_object_add(out, "over_cap", json_object_new_boolean(count > (size_t)cap));
    json_object_object_add(out, "data", data);
    json_object_object_add(out, "unavailable", unav);
    tn_free(map);
    return out;
fail:
    tn_free(map);
    json_object_put(unav);
    json_object_put(data);
    json_object_put(out);
    return NULL;
}

void admin_tools_mark(json_object *tools)
{
    size_t n = json_object_is_type(tools, json_type_array) ? json_object_array_length(tools) : 0;

    for (size_t i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(tools, i);
        const char *why = tsel_unofferable(t);
        if (why && json_object_is_type(t, json_type_object))
            json_object_object_add(t, "not_offered", json_object_new_string(why));
    }
}

int admin_tools_check_doc(json_object *doc, const char *file, const char *redis_url,
                          const char *prefix, int ask_broker, FILE *notes, char *err,
                          size_t errlen)
{
    json_object *as = jget(doc, "assistants"), *servers = jget(doc, "mcp_servers");
    char msg[AIP_ERR_MSG_MAX];
    mcpc_t *c = NULL;
    int rc = 0;

    err[0] = '\0';
    if (!as || !json_object_is_type(as, json_type_object))
        return 0;
    json_object_object_foreach(as, name, a) {
        int r;
        if (!tsel_uses_mcp(a))
            continue;
        if (!c && !(c = mcpc_new(redis_url, prefix))) {
            rc = -ENOMEM;
            snprintf(err, errlen, "%s: out of memory checking the tool counts", file);
            goto out;
        }
        r = admin_tools_check(c, servers, name, a, ask_broker, ADMIN_TOOLS_BUDGET_MS, msg,
                              sizeof(msg));
        if (r == -E2BIG) {
            snprintf(err, errlen, "%s: assistants.%s: %s", file, name, msg);
            rc = r;
            goto out;
        }
        if (r < 0 && notes)
            fprintf(notes, "note: %s (checked when a request is built)\n", msg);
    }
out:
    /* at start-up, in the master: it keeps no Redis connection open while
     * its workers serve (they have their own pools) */
    if (c)
        rpool_close_idle(rpool_for(redis_url));
    mcpc_free(c);
    return rc;
}
