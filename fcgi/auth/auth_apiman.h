/* auth_apiman — the Apiman gateway_probe provider: ask the Apiman gateway
 * whether it honours a key, and share the answer through Redis.
 *
 * Cache: <prefix>auth:apiman:<sha256 hex of key> = "1" (accepted) or "0"
 * (rejected), expiring after cache_ttl seconds; the raw key is never stored.
 * Only definite answers (2xx, 401, 403) are cached: a gateway that is down or
 * answering 5xx rejects this request (fail closed) without poisoning the cache. */
#ifndef AIPROXY_AUTH_APIMAN_H
#define AIPROXY_AUTH_APIMAN_H

#include "fcgi/auth/auth_conf.h"
#include "shared/reg.h"

#include <hiredis/hiredis.h>
#include <stddef.h>

/* The probe URL {gateway_url}/{probe_api}[/{probe_path}] with single slashes
 * at the joins, into out. Returns 0 or -ENOSPC. Pure. */
int auth_apiman_url(const auth_conf_t *conf, char *out, size_t outlen);

/* The cache key for `key` into out (prefix + "auth:apiman:" + 64 hex). Returns
 * 0 or -ENOSPC. Pure. */
int auth_apiman_cache_key(const char *prefix, const char *key, size_t len, char *out,
                          size_t outlen);

/* 1 when the gateway accepts `key`, else 0 (rejected, gateway failure, key
 * with control characters). `rc` may be NULL (no cache: Redis down); a Redis
 * error is ignored and the probe runs uncached. Blocks at most
 * conf->timeout_ms on the gateway plus the Redis command timeouts. */
int auth_apiman_check(const auth_conf_t *conf, const char *key, size_t len, reg_t *reg);

#endif
