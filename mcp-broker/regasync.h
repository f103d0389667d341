/* regasync — the registry snapshot read on an async hiredis connection, so
 * the broker's event loop never waits for Redis (a slow registry answer
 * delays only the requests that need it, never the sessions already
 * running).
 *
 * Same protocol and parsing as reg_refresh (shared/reg.h): one GET of the
 * version; when it moved, one MULTI/EXEC snapshot read; when Redis holds no
 * registry and a seed is set, the seed script (exactly one writer wins), then
 * a fresh read. Only the I/O differs. */
#ifndef AIPROXY_REGASYNC_H
#define AIPROXY_REGASYNC_H

#include <hiredis/async.h>
#include <json-c/json.h>

typedef struct regasync regasync_t;

/* Fires when a refresh has settled: rc as reg_refresh's (0; -ENOENT with the
 * empty snapshot in place; -EIO or -ENOMEM with the old snapshot kept). */
typedef void (*regasync_done_cb)(void *data, int rc);

/* A reader for key prefix `prefix` (copied); `done` and `data` are called
 * back after each refresh. NULL when out of memory or the prefix is too long. */
regasync_t *regasync_new(const char *prefix, regasync_done_cb done, void *data);

/* Only when no refresh is in flight (the broker frees it after its Redis
 * connections are gone, which settles every refresh). NULL is fine. */
void regasync_free(regasync_t *ra);

/* The registry document (JSON text, borrowed: it must outlive ra) written
 * back when Redis holds none; NULL (the default) turns that off. */
void regasync_set_seed(regasync_t *ra, const char *json);

/* Starts bringing the snapshot up to date with commands on `ac` (borrowed,
 * connected or connecting). Returns 0 and `done` fires once, later, from a
 * hiredis callback; a call while a refresh is in flight folds into it (one
 * more round is read after the current one, so the answer is at least as
 * new as this call, and one `done` answers both). Returns -EIO (and `done`
 * does not fire for this call) when ac takes no commands. */
int regasync_refresh(regasync_t *ra, redisAsyncContext *ac);

/* 1 while a refresh is in flight. */
int regasync_busy(const regasync_t *ra);

/* Lookups in the snapshot, as reg_get: borrowed until the next refresh
 * settles; NULL when absent or nothing was read yet. */
json_object *regasync_get(regasync_t *ra, const char *kind, const char *name);

/* Why the last refresh failed. */
const char *regasync_errstr(const regasync_t *ra);

#endif
