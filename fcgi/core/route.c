/* route — matching, Allow, 404 and the index, all read from one table
 * (fcgi/routes.c): a route added there is dispatched, listed and named in
 * every 405 with nothing else to keep in sync. */
#include "fcgi/core/route.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct {
    unsigned bit;
    const char *name;
} route__methods[] = {
    { ROUTE_GET, "GET" }, { ROUTE_POST, "POST" }, { ROUTE_PUT, "PUT" },
    { ROUTE_PATCH, "PATCH" }, { ROUTE_DELETE, "DELETE" },
};

#define ROUTE__NMETHODS (sizeof(route__methods) / sizeof(route__methods[0]))

/* The bit of a method name; HEAD is GET; 0 for a method no route names
 * (only ROUTE_ANY takes it). */
static unsigned route__bit(const char *method)
{
    size_t i;

    if (strcmp(method, "HEAD") == 0)
        return ROUTE_GET;
    for (i = 0; i < ROUTE__NMETHODS; i++)
        if (strcmp(method, route__methods[i].name) == 0)
            return route__methods[i].bit;
    return 0;
}

/* Does `path` match the entry's pattern? Sets *arg and *arg_len for a "/{name}" pattern. */
static int route__path(const char *pattern, const char *path, const char **arg, size_t *arg_len)
{
    size_t plen = strlen(pattern), n;
    const char *brace;

    *arg = NULL;
    *arg_len = 0;
    if (plen >= 4 && strcmp(pattern + plen - 4, "/...") == 0) {
        n = plen - 4;
        if (strncmp(path, pattern, n) != 0 || (path[n] != '\0' && path[n] != '/'))
            return 0;
        *arg = path + n;
        *arg_len = strlen(*arg);
        return 1;
    }
    brace = strrchr(pattern, '{');
    if (brace && brace > pattern && brace[-1] == '/' && pattern[plen - 1] == '}') {
        n = (size_t)(brace - pattern);
        if (strncmp(path, pattern, n) != 0 || path[n] == '\0')
            return 0;
        *arg = path + n;
        *arg_len = strlen(*arg);
        return 1;
    }
    return strcmp(path, pattern) == 0;
}

const char *route_methods(unsigned mask, int with_head, char *buf, size_t len)
{
    size_t i, used = 0;
    int n;

    if (!len)
        return buf;
    buf[0] = '\0';
    if (mask == ROUTE_ANY) {
        snprintf(buf, len, "*");
        return buf;
    }
    for (i = 0; i < ROUTE__NMETHODS; i++) {
        if (!(mask & route__methods[i].bit))
            continue;
        n = snprintf(buf + used, len - used, "%s%s%s", used ? ", " : "", route__methods[i].name,
                     with_head && route__methods[i].bit == ROUTE_GET ? ", HEAD" : "");
        if (n < 0 || (size_t)n >= len - used) {
            buf[used] = '\0';   /* whole names only */
            break;
        }
        used += (size_t)n;
    }
    return buf;
}

int route_find(const route_def_t *table, const char *method, const char *path, route_t *out)
{
    const route_def_t *d;
    const char *arg;
    size_t arg_len;
    unsigned bit, allowed = 0;

    memset(out, 0, sizeof(*out));
    out->table = table;
    if (!table || !method || !path)
        goto not_found;
    bit = route__bit(method);
    for (d = table; d->path; d++) {
        if (!route__path(d->path, path, &arg, &arg_len))
            continue;
        if (d->methods == ROUTE_ANY || (bit & d->methods)) {
            out->def = d;
            out->arg = arg;
            out->arg_len = arg_len;
            return 0;
        }
        allowed |= d->methods;
    }
    if (allowed) {
        out->status = 405;
        route_methods(allowed, 1, out->allow, sizeof(out->allow));
        return -EINVAL;
    }
not_found:
    out->status = 404;
    return -ENOENT;
}

json_object *route_index_json(const route_def_t *table)
{
    json_object *o = json_object_new_object(), *eps = json_object_new_array(), *res = NULL;
    const route_def_t *d;
    char methods[ROUTE_ALLOW_MAX];

    if (!o || !eps)
        goto out;
    for (d = table; d && d->path; d++) {
        json_object *e = json_object_new_object();
        if (!e || json_object_array_add(eps, e) != 0) {
            json_object_put(e);
            goto out;
        }
        json_object_object_add(e, "method", json_object_new_string(
            route_methods(d->methods, 0, methods, sizeof(methods))));
        json_object_object_add(e, "path", json_object_new_string(d->path));
        json_object_object_add(e, "description", json_object_new_string(d->what ? d->what : ""));
    }
    json_object_object_add(o, "name", json_object_new_string("aiproxy"));
    json_object_object_add(o, "description", json_object_new_string(
        "OpenAI-compatible gateway: name an assistant as the model"));
    json_object_object_add(o, "endpoints", eps);
    eps = NULL;
    res = o;
    o = NULL;
out:
    json_object_put(eps);
    json_object_put(o);
    return res;
}
