/* admin_route — /admin paths to actions (a parser: no I/O, no allocation). */
#ifndef AIPROXY_ADMIN_ROUTE_H
#define AIPROXY_ADMIN_ROUTE_H

#include "shared/caps.h"

#include <stddef.h>

#define ADMIN_NAME_MAX CAP_ADMIN_NAME

typedef enum admin_target {
    ADMIN_T_NONE = 0,   /* unknown path: 404 */
    ADMIN_T_CONFIG,     /* /admin/config                 GET */
    ADMIN_T_LIST,       /* /admin/{kind}                  GET */
    ADMIN_T_ITEM,       /* /admin/{kind}/{name}           GET PUT DELETE */
    ADMIN_T_TOOLS,      /* /admin/mcp/{name}/tools        GET */
    ADMIN_T_ASSISTANT_TOOLS, /* /admin/assistants/{name}/tools GET */
    ADMIN_T_USAGE,      /* /admin/usage                  GET (fcgi/usage) */
} admin_target_t;

typedef struct admin_route {
    admin_target_t target;
    const char *kind;           /* registry kind: "assistants", "backends", "mcp_servers"; static */
    char name[ADMIN_NAME_MAX + 1];
    const char *allow;          /* the methods this target answers, for 405; static */
} admin_route_t;

/* Parses `path` (no query string). Returns 0 with *out filled, -ENOENT for a
 * path that is not an admin resource, -EINVAL for a name that is not
 * cfg_name_valid ([A-Za-z0-9][A-Za-z0-9._-]{0,63}: no '/', no '%', never "."
 * or ".."; the path is taken raw, percent escapes are not decoded), the same
 * rule config files follow. */
int admin_route_parse(const char *path, admin_route_t *out);

/* 1 when `method` is one `r` answers. */
int admin_route_allows(const admin_route_t *r, const char *method);

#endif
