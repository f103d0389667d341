/* admin_keys — /admin/keys and /admin/plans (docs/keys.md): managed API
 * keys and the plans they inherit, stored in Redis beside the registry
 * (keys: <prefix>keys, key:<id>, key:h:<sha256>; plans: <prefix>plans,
 * plan:<name>). Every write is one Lua script, so it is atomic and every
 * responder of the fleet sees it on its next request. */
#ifndef AIPROXY_ADMIN_KEYS_H
#define AIPROXY_ADMIN_KEYS_H

#include "fcgi/core/route.h"

/* 1 when `path` is /admin/keys[/...] or /admin/plans[/...], which
 * admin_keys_handle answers; else 0. Pure. */
int admin_keys_owns(const char *path);

/* Answers a request (already past the ADMIN_API_KEY check) whose path
 * admin_keys_owns: 2xx with the JSON document, or an OpenAI-shaped error
 * (400 bad body with `param`, 404 unknown key or plan, 405 with the allowed
 * methods, 409 a revoked key or a plan in use, 503 Redis down). Returns 0
 * or -EPIPE when the client went away. */
int admin_keys_handle(http_req_t *req, svc_t *svc);

/* The plans half, for admin_keys_handle (admin_plans.c): `name` is NULL for
 * /admin/plans, else the plan's name (any bytes; checked here). */
int admin_plans_handle(http_req_t *req, svc_t *svc, const char *name);

#endif
