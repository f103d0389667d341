/* reg — the live registry in Redis: assistants, backends, MCP servers, settings.
 *
 * One reg_t per thread. Its Redis connections are borrowed from a pool
 * (shared/rpool.h: the process's, or a private one of one connection) for
 * each command and given back at once. Readers call
 * reg_refresh() before each request: one GET of the version key; when it moved,
 * the whole document is re-read in one MULTI/EXEC so a reader never sees half
 * an edit. Writers (seed, admin API) change the document atomically, bump the
 * version, and PUBLISH the change on the `<prefix>reg:changed` channel.
 * Keys and channels are listed in docs/registry.md. A dead connection makes
 * writes fail with EPIPE only if the process ignores SIGPIPE (every aiproxy
 * daemon must: hiredis writes with plain write(2)). */
#ifndef AIPROXY_REG_H
#define AIPROXY_REG_H

#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <stddef.h>

typedef struct reg reg_t;

/* The registry's key and channel names under one prefix (docs/registry.md). */
typedef struct reg_keys {
    char version[160], assistants[160], backends[160], mcp_servers[160], settings[160];
    char changed[160];           /* the change channel */
    char keys_changed[160];      /* managed keys and plans changed (docs/keys.md) */
} reg_keys_t;

/* Fills k for `prefix`. 0, or -EINVAL when the prefix is 128 bytes or more. */
int reg_keys_init(reg_keys_t *k, const char *prefix);

/* Connects to `url` (see rconn.h) using key prefix `prefix`, on a private
 * pool of one connection (kept open until reg_close). Does not read the
 * registry yet. Returns 0 and *out, or -ECONNREFUSED with err naming the URL. */
int reg_open(reg_t **out, const char *url, const char *prefix, char *err, size_t errlen);

/* reg_open on `pool` (borrowed, shared with other threads and modules: the
 * process's rpool_for(url)); connects nothing until the first command.
 * 0 and *out, or -ENOMEM (pool NULL included) / -EINVAL with err. */
struct rpool;
int reg_open_pool(reg_t **out, const char *url, const char *prefix, struct rpool *pool,
                  char *err, size_t errlen);

void reg_close(reg_t *r);

/* Writes `doc` (a registry document from cfg) into Redis when Redis holds no
 * registry yet, or always when `reseed` is set. Atomic (a Lua script). *seeded
 * tells which happened. Returns 0 or a negative code (reg_errstr says why). */
int reg_seed(reg_t *r, json_object *doc, int reseed, int *seeded);

/* The registry document to write back when Redis turns out to hold none
 * (Redis restarted empty, or the keys were flushed): `json` is the JSON text of
 * a cfg document, borrowed (it must outlive r; NULL turns healing off). The
 * write is reg_seed without reseed, so when many threads or hosts notice at
 * once exactly one of them seeds (the Lua guard) and the others read what it
 * wrote. The one that seeds logs it at warn. */
void reg_set_seed(reg_t *r, const char *json);

/* Makes the snapshot current: 0 when it is (re-read or unchanged), -ENOENT when
 * Redis holds no registry and there is no seed to heal it with (the snapshot
 * is then the empty registry, version 0, so an admin write creates it),
 * -ECONNREFUSED / -EIO on Redis trouble (the old snapshot stays usable; a lost
 * connection is re-opened on a later call, at most one attempt per 500 ms, so
 * calls fail fast while Redis is down). */
int reg_refresh(reg_t *r);

/* With a watcher (regwatch.h, one per process), reg_refresh makes no
 * round trip while the watcher's generation has not moved since the last
 * good refresh and no change message waits unread; otherwise (and always
 * without one) it is reg_refresh_now. `w` is borrowed (NULL: none). */
struct regwatch;
void reg_set_watch(reg_t *r, struct regwatch *w);

/* reg_refresh ignoring the watcher: one GET of the version, always (the
 * admin API, which must never act on a stale snapshot, and CGI). */
int reg_refresh_now(reg_t *r);

/* The watcher's generation when r's last refresh (reg_refresh) found it
 * unmoved and no change message waiting unread, else 0 (no watcher, the
 * generation moved, a message pending, Redis trouble, or reg_refresh_now).
 * Non-zero means: nothing published on the change channels (registry,
 * keys: `keys_changed`) reached this process between a reading made at that
 * generation and the request being served, so a memory tagged with it (the
 * managed-key cache, fcgi/auth) may be trusted. */
unsigned long reg_trust_gen(const reg_t *r);

/* Lookups in the current snapshot. Borrowed: valid until the next
 * reg_refresh. NULL when absent. `kind` is "assistants", "backends",
 * "mcp_servers". */
json_object *reg_get(reg_t *r, const char *kind, const char *name);
json_object *reg_all(reg_t *r, const char *kind);  /* the whole name->object map */
json_object *reg_settings(reg_t *r);
json_object *reg_doc(reg_t *r);                    /* the whole document */
long long reg_version(reg_t *r);

/* Sets kind/name to `obj` (already validated by cfg_check_*; not consumed) or
 * deletes it; kind "settings" (name ignored, put only) replaces the settings; atomic, bumps the version, publishes. reg_del returns -ENOENT
 * when absent. `expect_version` > 0 makes the write fail with -EAGAIN if the
 * registry moved since that version (optimistic concurrency for checks done
 * by the caller against the snapshot). */
int reg_put(reg_t *r, const char *kind, const char *name, json_object *obj,
            long long expect_version);
int reg_del(reg_t *r, const char *kind, const char *name, long long expect_version);

/* A Redis connection for other modules' keys (auth, limits, usage, admin),
 * borrowed from r's pool and held by r until reg_release: call reg_release
 * as soon as the command (or short pipeline) is answered, never hold it
 * across an upstream call, a tool wait or idleness (other threads wait for
 * it). Calling again before reg_release gives the same connection. NULL when
 * Redis cannot be reached or every pooled connection stayed busy past the
 * pool's bound (answer 503 redis_unavailable); reg_errstr says which. r NULL
 * gives NULL. Every reply of what was sent must be read before reg_release. */
redisContext *reg_redis(reg_t *r);

/* Gives the connection reg_redis lent back to the pool (a no-op when r holds
 * none, or r is NULL). A connection left with an error or unread replies is
 * closed by the pool instead of reused. */
void reg_release(reg_t *r);

/* reg_release for a connection the caller knows is unusable (a reply lost,
 * READONLY after a failover): the pool closes it. */
void reg_release_broken(reg_t *r);
const char *reg_prefix(const reg_t *r);

/* The pipelined connection beside r's pool (rpool_mux). NULL on ENOMEM. */
struct rmux;
struct rmux *reg_mux(reg_t *r);

/* Why the last call failed. */
const char *reg_errstr(const reg_t *r);

/* What `r` has done since reg_open, for metrics: commands sent and answered
 * (a pipelined MULTI..EXEC counts once), failures (connect or I/O), and
 * whole documents read because the version moved. */
typedef struct reg_stats {
    unsigned long long round_trips, errors, reloads;
} reg_stats_t;
void reg_stats(const reg_t *r, reg_stats_t *out);

/* --- The registry protocol without I/O ---------------------------------------
 * What reg_refresh and reg_seed send and how they read the answers, for a
 * caller with its own connection (the broker reads the registry on its async
 * connection, so its event loop never waits for Redis). Replies are borrowed;
 * err (errlen bytes) says why on failure. */

/* The reply to GET <k->version>: 1 and *v, 0 when the key is absent (no
 * registry), -EIO when it is not a number or an error. */
int reg_parse_version(const redisReply *rep, const reg_keys_t *k, long long *v, char *err,
                      size_t errlen);

/* A snapshot read is MULTI, the REG_SNAPSHOT_CMDS commands of
 * reg_snapshot_cmd (i = 0 .. REG_SNAPSHOT_CMDS-1; argv borrows from k), EXEC. */
#define REG_SNAPSHOT_CMDS 5
void reg_snapshot_cmd(const reg_keys_t *k, int i, int *argc, const char *argv[2]);

/* The EXEC reply of a snapshot read -> *doc (new, the caller owns it: the
 * registry document as reg_doc shows it) and *version. 0; -ENOENT when Redis
 * holds no registry; -EIO when the reply is not a snapshot; -ENOMEM. Entries
 * that are not JSON objects are skipped with a warning. */
int reg_parse_snapshot(const redisReply *exec, const reg_keys_t *k, json_object **doc,
                       long long *version, char *err, size_t errlen);

/* The empty registry (the snapshot when Redis holds none): new, or NULL. */
json_object *reg_empty_doc(void);

/* The seed script (see reg_seed) as an argv: argv/lens borrow from k, from
 * doc (which must outlive the command's sending, unchanged) and from the
 * struct itself. reg_seed_cmd_clear frees it (also after a failed build). */
typedef struct reg_seed_cmd {
    int argc;
    const char **argv;
    size_t *lens;
    char *tail, *settings_json;
    char counts[3][24];
} reg_seed_cmd_t;
int reg_seed_cmd_build(reg_seed_cmd_t *cmd, const reg_keys_t *k, json_object *doc, int reseed);
void reg_seed_cmd_clear(reg_seed_cmd_t *cmd);

/* The reply of a registry script (seed, put, del): {status, version}. 0 and
 * *status (may be NULL; 1 = written, 0 = a registry existed already for the
 * seed), or -EIO. */
int reg_parse_script_reply(const redisReply *rep, long long *status, char *err, size_t errlen);

#endif
