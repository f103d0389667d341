/* admin_keydoc — a managed key's documents for the admin API, without I/O:
 * a POST or PATCH body checked and turned into the HSET field/value pairs
 * of its <prefix>key:<id> hash, and that hash (as HGETALL answers it) turned
 * into the JSON an admin sees, never the secret or its hash (docs/keys.md). */
#ifndef AIPROXY_ADMIN_KEYDOC_H
#define AIPROXY_ADMIN_KEYDOC_H

#include "shared/arena.h"

#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <stddef.h>

/* A key's name and owner: labels for people, not identifiers. */
#define ADMIN_KEYDOC_LABEL_MAX 256
/* argv entries admin_keydoc_fields may add: five fields, each a pair. */
#define ADMIN_KEYDOC_ARGS 10

/* The fields `body` (borrowed) sets — name, owner, plan, expires_at (unix
 * seconds or RFC 3339, in the future; null: never), policy (keypol_check)
 * — checked, appended to argv from argv[*n] as field/value pairs (strings
 * in `a`; argv must have room for ADMIN_KEYDOC_ARGS more). `create`: name is
 * required. 0; -EINVAL with err and *param (the field at fault, e.g.
 * "policy.rpm"; static or in `a`); -ENOMEM. */
int admin_keydoc_fields(json_object *body, int create, arena_t *a, const char **argv, int *n,
                        char *err, size_t errlen, const char **param);

/* Field `name` of a HGETALL reply `h` (borrowed), or NULL. */
const char *admin_keydoc_field(const redisReply *h, const char *name);

/* Key `id`'s view from its HGETALL reply: {id, object: "api_key", name,
 * owner, plan, display, created_at, expires_at, revoked_at, revoked,
 * policy} (empty strings and zero times as null); with_effective adds
 * effective_policy, merging `plan_policy` (borrowed, may be NULL). New, or
 * NULL on ENOMEM. */
json_object *admin_keydoc_view(const char *id, const redisReply *h, int with_effective,
                               json_object *plan_policy);

#endif
