/* route — the routing table. Exact paths and one prefix family each; a path
 * that exists under another method is a 405 with Allow, never a 404. HEAD is
 * GET without the body (RFC 9110 9.3.2): it matches every GET route, and
 * http.c sends the headers only. */
#include "fcgi/core/route.h"

#include <errno.h>
#include <string.h>

struct route__entry {
    const char *method;
    const char *path;
    route_id_t id;
    int needs_auth;
};

static const struct route__entry route__table[] = {
    { "GET",  "/",                    ROUTE_INDEX,  0 },
    { "GET",  "/health",              ROUTE_HEALTH, 0 },
    { "GET",  "/v1/models",           ROUTE_MODELS, 1 },
    { "POST", "/v1/chat/completions", ROUTE_CHAT,   1 },
    { "POST", "/v1/messages",         ROUTE_MESSAGES, 1 },
};

static const route_doc_t route__docs[] = {
    { "GET",  "/",                    "this index of endpoints" },
    { "GET",  "/health",              "liveness and Redis reachability" },
    { "GET",  "/v1/models",           "the assistants, as OpenAI models" },
    { "GET",  "/v1/models/{id}",      "one assistant" },
    { "POST", "/v1/chat/completions", "chat completion through an assistant (stream or not)" },
    { "POST", "/v1/messages",         "the same, in Anthropic's Messages API format" },
    { "*",    "/admin/...",           "registry administration (ADMIN_API_KEY)" },
    { NULL, NULL, NULL },
};

static const char route__models_prefix[] = "/v1/models/";

/* The Allow header value for a route of `method`: a GET route takes HEAD too. */
static const char *route__allow(const char *method)
{
    return strcmp(method, "GET") == 0 ? "GET, HEAD" : method;
}

const route_doc_t *route_index(void)
{
    return route__docs;
}

int route_find(const char *method, const char *path, route_t *out)
{
    size_t i;
    int path_known = 0;
    const char *allow = NULL;

    memset(out, 0, sizeof(*out));
    if (!method || !path)
        goto not_found;
    if (strcmp(method, "HEAD") == 0)
        method = "GET";
    if (strcmp(path, "/admin") == 0 || strncmp(path, "/admin/", 7) == 0) {
        out->id = ROUTE_ADMIN;
        return 0;
    }
    for (i = 0; i < sizeof(route__table) / sizeof(route__table[0]); i++) {
        if (strcmp(path, route__table[i].path) != 0)
            continue;
        path_known = 1;
        allow = route__allow(route__table[i].method);
        if (strcmp(method, route__table[i].method) == 0) {
            out->id = route__table[i].id;
            out->needs_auth = route__table[i].needs_auth;
            return 0;
        }
    }
    if (!path_known && strncmp(path, route__models_prefix, sizeof(route__models_prefix) - 1) == 0 &&
        path[sizeof(route__models_prefix) - 1] != '\0') {
        path_known = 1;
        allow = route__allow("GET");
        if (strcmp(method, "GET") == 0) {
            out->id = ROUTE_MODEL;
            out->needs_auth = 1;
            out->arg = path + sizeof(route__models_prefix) - 1;
            out->arg_len = strlen(out->arg);
            return 0;
        }
    }
    if (path_known) {
        out->status = 405;
        out->allow = allow;
        out->needs_auth = strncmp(path, "/v1/", 4) == 0;
        return -EINVAL;
    }
not_found:
    out->status = 404;
    return -ENOENT;
}
