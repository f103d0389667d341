/* admin_route — see admin_route.h. */
#include "fcgi/admin/admin_route.h"

#include "shared/cfg.h"

#include <errno.h>
#include <string.h>

static const struct {
    const char *seg;
    const char *kind;
} admin_route__kinds[] = {
    { "assistants", "assistants" },
    { "backends", "backends" },
    { "mcp", "mcp_servers" },
};

static int admin_route__name(const char *s, size_t len, admin_route_t *out)
{
    if (len == 0 || len > ADMIN_NAME_MAX)
        return -EINVAL;
    memcpy(out->name, s, len);
    out->name[len] = '\0';
    /* the path is raw (REQUEST_URI): "..", "a/b", "%2F" and "%2E%2E" all
     * arrive as they were sent, and none of them is a name */
    return cfg_name_valid(out->name) ? 0 : -EINVAL;
}

int admin_route_parse(const char *path, admin_route_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!path || strncmp(path, "/admin/", 7) != 0)
        return -ENOENT;
    const char *rest = path + 7;
    if (strcmp(rest, "config") == 0 || strcmp(rest, "config/") == 0) {
        out->target = ADMIN_T_CONFIG;
        out->allow = "GET";
        return 0;
    }
    if (strcmp(rest, "usage") == 0) {
        out->target = ADMIN_T_USAGE;
        out->allow = "GET";
        return 0;
    }
    for (size_t i = 0; i < sizeof(admin_route__kinds) / sizeof(admin_route__kinds[0]); i++) {
        size_t sl = strlen(admin_route__kinds[i].seg);
        if (strncmp(rest, admin_route__kinds[i].seg, sl) != 0)
            continue;
        const char *tail = rest + sl;
        if (*tail != '\0' && *tail != '/')
            continue;
        out->kind = admin_route__kinds[i].kind;
        if (*tail == '\0' || strcmp(tail, "/") == 0) {
            out->target = ADMIN_T_LIST;
            out->allow = "GET";
            return 0;
        }
        const char *name = tail + 1;
        size_t len = strlen(name);
        if (strcmp(out->kind, "assistants") == 0) {
            /* only "{name}/tools"; any other slash stays a bad name (422) */
            const char *slash = strchr(name, '/');
            if (slash && strcmp(slash, "/tools") == 0) {
                out->target = ADMIN_T_ASSISTANT_TOOLS;
                out->allow = "GET";
                return admin_route__name(name, (size_t)(slash - name), out);
            }
        }
        if (strcmp(out->kind, "mcp_servers") == 0) {
            const char *slash = strchr(name, '/');
            if (slash) {
                if (strcmp(slash, "/tools") != 0)
                    return -ENOENT;
                out->target = ADMIN_T_TOOLS;
                out->allow = "GET";
                return admin_route__name(name, (size_t)(slash - name), out);
            }
        }
        out->target = ADMIN_T_ITEM;
        out->allow = "GET, PUT, DELETE";
        return admin_route__name(name, len, out);
    }
    return -ENOENT;
}

int admin_route_allows(const admin_route_t *r, const char *method)
{
    if (!method || !r->allow)
        return 0;
    if (r->target == ADMIN_T_ITEM)
        return strcmp(method, "GET") == 0 || strcmp(method, "PUT") == 0 ||
               strcmp(method, "DELETE") == 0;
    return strcmp(method, "GET") == 0;
}
