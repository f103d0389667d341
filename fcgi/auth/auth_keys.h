/* auth_keys — managed keys (POST /admin/keys) and plans on the /v1 side:
 * from a presented secret to the caller's principal in one Redis round trip
 * (docs/keys.md; the Redis layout is there and in shared/keypol.h). */
#ifndef AIPROXY_AUTH_KEYS_H
#define AIPROXY_AUTH_KEYS_H

#include "fcgi/auth/principal.h"
#include "shared/arena.h"

#include <hiredis/hiredis.h>
#include <stddef.h>

/* Looks up the key whose secret's SHA-256 hex is `hash` (keypol_hash of an
 * "sk-aip-" candidate) under `prefix`: key:h:<hash>
 * -> the id -> its key:<id> hash -> its plan's policy, one Lua script (EVALSHA).
 * A live key is remembered in the key cache at generation `gen` (0: not).
 * Returns 0 with *out a new principal in `a` (kind MANAGED, id, name, owner,
 * plan, the effective policy owned by `a`); -ENOENT when no key has this
 * secret; -EACCES when the key is revoked or expired (why says which);
 * -EIO when Redis cannot answer (c NULL or failing: the key cannot be
 * checked); -ENOMEM. Stored policies that are not JSON count as none. */
int auth_keys_lookup(redisContext *c, const char *prefix, unsigned long gen, const char *hash,
                     arena_t *a, auth_principal_t **out, char *why, size_t whylen);

/* The policy of plan `name` (GET <prefix>plan:<name>) into *policy, owned
 * by `a`; NULL when the plan does not exist or is not JSON (an empty plan).
 * 0, -EIO when Redis cannot answer, -ENOMEM. */
int auth_keys_plan(redisContext *c, const char *prefix, const char *name, arena_t *a,
                   json_object **policy);

/* Tells every responder of the fleet that managed keys or plans under
 * `prefix` changed (PUBLISH <prefix>keys:changed), so their key caches
 * (auth_kcache.h) look keys up afresh: call it after a key or plan write
 * succeeded and before answering. A failure is logged at warn (the caches
 * then catch up within the watcher's tick, 1 s). */
void auth_keys_announce(redisContext *c, const char *prefix);

#endif
