/* auth_kcache — the process's memory of the managed keys it looked up
 * (issue 18): a request with a key seen before makes no Redis round trip
 * to learn who it is.
 *
 * An entry is tagged with the registry watcher's generation it was read at
 * (reg_trust_gen, shared/reg.h) and serves only requests whose own refresh
 * found that same generation with nothing pending. Every key or plan edit
 * of the admin API publishes on `<prefix>keys:changed` before it answers,
 * and the watcher's socket holds that message before the client (or anyone
 * it tells) can send its next request, so a revoked, rotated or re-limited
 * key is looked up afresh on its next request on every host; the watcher's
 * tick (1 s) moves the generation too, which bounds what an edit made
 * behind the API's back (redis-cli) waits. An expired key is refused from
 * memory at its expires_at. Unknown, revoked and expired keys are never
 * kept. */
#ifndef AIPROXY_AUTH_KCACHE_H
#define AIPROXY_AUTH_KCACHE_H

#include "fcgi/auth/principal.h"
#include "shared/arena.h"

#include <stddef.h>

/* The principal of the key whose SHA-256 hex is `hash`, remembered at
 * generation `gen`, as a new principal in `a` (policy owned by `a`, no
 * pregate). 0; -ENOENT when not remembered, remembered at another
 * generation, expired (expires_at reached: the lookup then says so), or gen
 * is 0; -ENOMEM. Thread-safe. */
int auth_kcache_get(unsigned long gen, const char *hash, arena_t *a, auth_principal_t **out);

/* Remembers `p` (a live managed key's principal, read at generation `gen`,
 * with the key's expires_at in unix seconds, 0 for never) under `hash`,
 * replacing what shared its slot. A no-op when gen is 0 or the entry would
 * be larger than CAP_KCACHE_ENTRY. Thread-safe. */
void auth_kcache_put(unsigned long gen, const char *hash, const auth_principal_t *p,
                     long long expires_at);

#endif
