/* toolsel — see toolsel.h. */
#include "shared/toolsel.h"
#include "shared/caps.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long tsel_global_cap(void)
{
    static int warned;
    const char *e = getenv(TSEL_CAP_ENV);
    char *end = NULL;
    long v;

    if (!e || !*e)
        return TSEL_CAP_DEFAULT;
    errno = 0;
    v = strtol(e, &end, 10);
    if (errno || end == e || *end || v < 1 || v > CAP_TOOLS_SETTING) {
        /* a benign race: at worst two threads both warn */
        if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
            fprintf(stderr, "aiproxy: %s=%s: want a whole number 1..%d; using %d\n",
                    TSEL_CAP_ENV, e, CAP_TOOLS_SETTING, TSEL_CAP_DEFAULT);
        return TSEL_CAP_DEFAULT;
    }
    return v;
}

long tsel_cap(json_object *assistant)
{
    json_object *v = NULL;

    if (json_object_object_get_ex(assistant, "max_tools", &v) &&
        (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))) {
        int64_t n = json_object_get_int64(v);
        if (n >= 1)
            return n > CAP_TOOLS_SETTING ? CAP_TOOLS_SETTING : (long)n;
    }
    return tsel_global_cap();
}

/* 1 when one string of `globs` (an array; anything else matches nothing)
 * matches `name`. */
static int tsel__match(json_object *globs, const char *name)
{
    size_t n = json_object_is_type(globs, json_type_array) ? json_object_array_length(globs) : 0;

    for (size_t i = 0; i < n; i++) {
        json_object *g = json_object_array_get_idx(globs, i);
        if (json_object_is_type(g, json_type_string) &&
            fnmatch(json_object_get_string(g), name, 0) == 0)
            return 1;
    }
    return 0;
}

int tsel_allowed(json_object *assistant, const char *server, const char *tool)
{
    return tsel_why(assistant, server, tool) == TSEL_OFFERED;
}

int tsel_why(json_object *assistant, const char *server, const char *tool)
{
    json_object *sel = NULL, *allow = NULL, *deny = NULL;
    char small[256], *name = small, *big = NULL;
    size_t need;
    int why = TSEL_NOT_ALLOWED;

    if (!json_object_object_get_ex(assistant, "tools", &sel) ||
        !json_object_is_type(sel, json_type_object))
        return TSEL_OFFERED;
    json_object_object_get_ex(sel, "allow", &allow);
    json_object_object_get_ex(sel, "deny", &deny);
    if (!allow && !deny)
        return TSEL_OFFERED;
    server = server ? server : "";
    tool = tool ? tool : "";
    need = strlen(server) + 2 + strlen(tool) + 1;
    if (need > sizeof(small)) {
        /* MCP tool names are not capped by the protocol: match the whole name */
        if (!(big = malloc(need)))
            goto out;   /* cannot tell: not offered, which only hides a tool */
        name = big;
    }
    snprintf(name, need, "%s__%s", server, tool);
    if (tsel__match(deny, name))
        why = TSEL_DENIED;
    else if (!allow || tsel__match(allow, name))
        why = TSEL_OFFERED;
out:
    free(big);
    return why;
}

const char *tsel_unofferable(json_object *tool)
{
    json_object *ex = NULL, *ts = NULL;

    if (json_object_object_get_ex(tool, "execution", &ex) &&
        json_object_object_get_ex(ex, "taskSupport", &ts) &&
        json_object_is_type(ts, json_type_string) &&
        strcmp(json_object_get_string(ts), "required") == 0)
        return "execution.taskSupport is \"required\": the tool runs only as an MCP task, "
               "which aiproxy does not run";
    return NULL;
}

int tsel_why_tool(json_object *assistant, const char *server, json_object *tool)
{
    json_object *name = NULL;

    if (tsel_unofferable(tool))
        return TSEL_TASK_REQUIRED;
    json_object_object_get_ex(tool, "name", &name);
    return tsel_why(assistant, server, name ? json_object_get_string(name) : "");
}

int tsel_uses_mcp(json_object *assistant)
{
    json_object *v = NULL;

    if (json_object_object_get_ex(assistant, "max_tool_iterations", &v) && v &&
        json_object_get_int64(v) <= 0)
        return 0;
    return json_object_object_get_ex(assistant, "mcp_servers", &v) &&
           json_object_is_type(v, json_type_array) && json_object_array_length(v) > 0;
}

void tsel_tally_init(tsel_tally_t *t)
{
    memset(t, 0, sizeof(*t));
}

size_t tsel_tally_add(tsel_tally_t *t, json_object *assistant, const char *server,
                      json_object *tools)
{
    size_t n = json_object_is_type(tools, json_type_array) ? json_object_array_length(tools) : 0;
    size_t k = 0, used = strlen(t->detail);
    int w;

    for (size_t i = 0; i < n; i++) {
        json_object *name = NULL, *tool = json_object_array_get_idx(tools, i);
        const char *s;
        json_object_object_get_ex(tool, "name", &name);
        /* as the request builder reads it; nameless tools are not offered */
        s = name ? json_object_get_string(name) : NULL;
        if (s && *s && tsel_why_tool(assistant, server, tool) == TSEL_OFFERED)
            k++;
    }
    t->total += k;
    if (used + 1 < sizeof(t->detail)) {
        w = snprintf(t->detail + used, sizeof(t->detail) - used, "%s%s: %zu", used ? ", " : "",
                     server ? server : "", k);
        if (w < 0 || (size_t)w >= sizeof(t->detail) - used)
            memcpy(t->detail + sizeof(t->detail) - 4, "...", 4);
    }
    return k;
}

void tsel_over_msg(const tsel_tally_t *t, const char *name, size_t client, long cap, char *out,
                   size_t outlen)
{
    if (client)
        snprintf(out, outlen,
                 "assistant '%s' offers %zu tools (%zu from MCP servers: %s; %zu sent by the "
                 "client), more than the %ld tools it may offer: send at most %zu tools, or "
                 "narrow the assistant's tools with a tool allow-list (tools.allow)",
                 name ? name : "", t->total + client, t->total, t->detail, client, cap,
                 (size_t)cap > t->total ? (size_t)cap - t->total : 0);
    else
        snprintf(out, outlen,
                 "assistant '%s' offers %zu tools (%s), more than the %ld it may offer "
                 "(max_tools, else %s, default %d): give it a tool allow-list (tools.allow: "
                 "globs over <server>__<tool> names) or a deny-list (tools.deny)",
                 name ? name : "", t->total, t->detail, cap, TSEL_CAP_ENV, TSEL_CAP_DEFAULT);
}
