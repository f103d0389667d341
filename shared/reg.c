/* reg — the registry in Redis: snapshot reads and atomic Lua writes.
 *
 * Keys (P = prefix): P"reg:version" (integer, bumped by every write),
 * P"reg:assistants" / P"reg:backends" / P"reg:mcp_servers" (hashes name ->
 * JSON), P"reg:settings" (JSON string); channel P"reg:changed" carries
 * {"version":N,"kind":K,"name":X,"op":"put|del|seed"} after each write.
 * docs/registry.md is the reference. */
#include "shared/reg.h"
#include "shared/log.h"
#include "shared/rconn.h"
#include "shared/regwatch.h"
#include "shared/rpool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct reg {
    redisContext *c;         /* borrowed from pool while a command runs or a caller holds it */
    rpool_t *pool;           /* where connections come from (owned when own_pool) */
    int own_pool;
    char prefix[128];
    reg_keys_t k;
    char *get_version_cmd;   /* "GET <version key>" pre-formatted: the hot path */
    int get_version_len;
    json_object *doc;        /* current snapshot, NULL until the first refresh */
    long long version;
    const char *seed;        /* borrowed JSON text of the document to heal with, or NULL */
    char err[512];
    reg_stats_t st;          /* for metrics (reg_stats) */
    regwatch_t *watch;       /* borrowed: the process's change watcher, or NULL */
    unsigned long seen_gen;  /* its generation at the last good refresh */
    int fresh;               /* the last refresh succeeded: seen_gen can be trusted */
    unsigned long trust_gen; /* reg_trust_gen: seen_gen when the last refresh found
                                nothing moved nor pending, else 0 */
};

/* Seed: write everything unless a registry exists (ARGV[1] = "1" forces). */
static const char REG_SEED_LUA[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 and ARGV[1] ~= '1' then\n"
    "  return {0, tonumber(redis.call('GET', KEYS[1]))}\n"
    "end\n"
    "redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])\n"
    "local i = 8\n"
    "for k = 2, 4 do\n"
    "  for j = 1, tonumber(ARGV[k + 3]) do\n"
    "    redis.call('HSET', KEYS[k], ARGV[i], ARGV[i + 1]); i = i + 2\n"
    "  end\n"
    "end\n"
    "redis.call('SET', KEYS[5], ARGV[3])\n"
    "local v = redis.call('INCR', KEYS[1])\n"
    "redis.call('PUBLISH', ARGV[2], '{\"version\":' .. v .. ',' .. ARGV[4])\n"
    "return {1, v}\n";

/* Put/del: KEYS[1] version, KEYS[2] hash or settings key. ARGV: expect,
 * channel, name, json ("" for del), "hash"|"string", message tail. */
static const char REG_WRITE_LUA[] =
    "local cur = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "local expect = tonumber(ARGV[1])\n"
    "if expect > 0 and cur ~= expect then return {-1, cur} end\n"
    "if ARGV[4] == '' then\n"
    "  if redis.call('HDEL', KEYS[2], ARGV[3]) == 0 then return {-2, cur} end\n"
    "elseif ARGV[5] == 'hash' then\n"
    "  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])\n"
    "else\n"
    "  redis.call('SET', KEYS[2], ARGV[4])\n"
    "end\n"
    "local v = redis.call('INCR', KEYS[1])\n"
    "redis.call('PUBLISH', ARGV[2], '{\"version\":' .. v .. ',' .. ARGV[6])\n"
    "return {1, v}\n";

static void reg__seterr(reg_t *r, const char *fmt, const char *a, const char *b)
{
    snprintf(r->err, sizeof r->err, fmt, a ? a : "", b ? b : "");
}

/* Gives the connection back broken: the pool closes it. */
static void reg__drop(reg_t *r)
{
    rpool_put(r->pool, r->c, 1);
    r->c = NULL;
}

/* Borrows a connection from the pool unless r holds one already. While
 * Redis is down the pool fails borrows fast (rpool.h), so callers serving
 * from the last snapshot do not each pay a connect. */
static int reg__connect(reg_t *r)
{
    char err[512];

    if (r->c)
        return 0;
    r->c = rpool_get(r->pool, err, sizeof err);
    if (!r->c) {
        snprintf(r->err, sizeof r->err, "%s", err);
        r->st.errors++;
        return -ECONNREFUSED;
    }
    return 0;
}

void reg_release(reg_t *r)
{
    if (!r || !r->c)
        return;
    rpool_put(r->pool, r->c, 0);
    r->c = NULL;
}

/* A command failed at the connection level: forget the connection so the
 * next call opens a new one. */
static int reg__io_fail(reg_t *r, const char *what)
{
    reg__seterr(r, "Redis %s failed: %s", what, r->c && r->c->errstr[0] ? r->c->errstr : "no reply");
    r->st.errors++;
    reg__drop(r);
    return -EIO;
}

/* A reply saying the connection no longer reaches a usable master (READONLY
 * after a failover, LOADING, MASTERDOWN): dropped like a lost connection, so
 * the next attempt reconnects and, with Sentinel, finds the new master. */
static int reg__lost(reg_t *r, const char *what, const redisReply *rep)
{
    reg__seterr(r, "Redis %s failed: %s (reconnecting)", what, rep->str);
    reg__drop(r);
    return -EIO;
}

/* reg_open and reg_open_pool: `pool` NULL makes a private pool of one. */
static int reg__open(reg_t **out, const char *url, const char *prefix, rpool_t *pool,
                     char *err, size_t errlen)
{
    reg_t *r = NULL;
    int rc = 0;

    *out = NULL;
    r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    if (!prefix)
        prefix = rconn_prefix();
    if (!url)
        url = rconn_url();
    if (strlen(url) >= 1024 || strlen(prefix) >= sizeof r->prefix) {
        snprintf(err, errlen, "Redis URL or key prefix too long");
        rc = -EINVAL;
        goto out;
    }
    snprintf(r->prefix, sizeof r->prefix, "%s", prefix);
    reg_keys_init(&r->k, prefix);
    r->get_version_len = redisFormatCommand(&r->get_version_cmd, "GET %s", r->k.version);
    r->pool = pool;
    if (!r->pool) {
        r->pool = rpool_new(url, 1, 0, NULL);
        r->own_pool = 1;
    }
    if (r->get_version_len < 0 || !r->pool) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    if (r->own_pool) {
        if (reg__connect(r) < 0) {
            snprintf(err, errlen, "%s", r->err);
            rc = -ECONNREFUSED;
            goto out;
        }
        reg_release(r);
    }
    *out = r;
    r = NULL;
out:
    reg_close(r);
    return rc;
}

int reg_open(reg_t **out, const char *url, const char *prefix, char *err, size_t errlen)
{
    return reg__open(out, url, prefix, NULL, err, errlen);
}

int reg_open_pool(reg_t **out, const char *url, const char *prefix, rpool_t *pool, char *err,
                  size_t errlen)
{
    if (!pool) {
        snprintf(err, errlen, "out of memory");
        *out = NULL;
        return -ENOMEM;
    }
    return reg__open(out, url, prefix, pool, err, errlen);
}

void reg_close(reg_t *r)
{
    if (!r)
        return;
    reg_release(r);
    if (r->own_pool)
        rpool_free(r->pool);
    free(r->get_version_cmd);
    json_object_put(r->doc);
    free(r);
}

/* One GET of the version on the current connection. 1 = have it, 0 = key
 * absent, <0 = failure (connection dropped). */
static int reg__get_version(reg_t *r, long long *v)
{
    void *vp = NULL;
    int rc;

    r->st.round_trips++;
    if (redisAppendFormattedCommand(r->c, r->get_version_cmd, (size_t)r->get_version_len) !=
            REDIS_OK ||
        redisGetReply(r->c, &vp) != REDIS_OK)
        return reg__io_fail(r, "GET version");
    if (rconn_reply_lost(vp)) {
        rc = reg__lost(r, "GET version", vp);
        freeReplyObject(vp);
        return rc;
    }
    rc = reg_parse_version(vp, &r->k, v, r->err, sizeof r->err);
    freeReplyObject(vp);
    return rc;
}

int reg_keys_init(reg_keys_t *k, const char *prefix)
{
    if (strlen(prefix) >= 128)
        return -EINVAL;
    snprintf(k->version, sizeof k->version, "%sreg:version", prefix);
    snprintf(k->assistants, sizeof k->assistants, "%sreg:assistants", prefix);
    snprintf(k->backends, sizeof k->backends, "%sreg:backends", prefix);
    snprintf(k->mcp_servers, sizeof k->mcp_servers, "%sreg:mcp_servers", prefix);
    snprintf(k->settings, sizeof k->settings, "%sreg:settings", prefix);
    snprintf(k->changed, sizeof k->changed, "%sreg:changed", prefix);
    snprintf(k->keys_changed, sizeof k->keys_changed, "%skeys:changed", prefix);
    return 0;
}

static int reg__missing(const reg_keys_t *k, char *err, size_t errlen)
{
    snprintf(err, errlen, "Redis holds no registry (key %s is missing): seed it from a config file",
             k->version);
    return -ENOENT;
}

int reg_parse_version(const redisReply *rep, const reg_keys_t *k, long long *v, char *err,
                      size_t errlen)
{
    char *end;

    if (rep->type == REDIS_REPLY_NIL)
        return 0;
    if (rep->type == REDIS_REPLY_STRING) {
        errno = 0;
        *v = strtoll(rep->str, &end, 10);
        if (!errno && !*end)
            return 1;
        snprintf(err, errlen, "Redis key %s holds '%s', not a version number", k->version, rep->str);
        return -EIO;
    }
    snprintf(err, errlen, "Redis GET %s: %s", k->version,
             rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    return -EIO;
}

void reg_snapshot_cmd(const reg_keys_t *k, int i, int *argc, const char *argv[2])
{
    static const char *const verbs[REG_SNAPSHOT_CMDS] = {"GET", "HGETALL", "HGETALL", "HGETALL", "GET"};
    const char *keys[REG_SNAPSHOT_CMDS] = {k->version, k->assistants, k->backends, k->mcp_servers,
                                           k->settings};

    *argc = 2;
    argv[0] = verbs[i];
    argv[1] = keys[i];
}

/* hash reply (name, json, ...) -> object; unparsable entries are skipped with
 * a warning rather than taking the whole registry down. */
static json_object *reg__hash(redisReply *h, const char *kind)
{
    json_object *map = json_object_new_object();
    size_t i;

    if (!map || h->type != REDIS_REPLY_ARRAY)
        return map;
    for (i = 0; i + 1 < h->elements; i += 2) {
        redisReply *k = h->element[i], *v = h->element[i + 1];
        json_object *obj;
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        obj = json_tokener_parse(v->str);
        if (!obj || !json_object_is_type(obj, json_type_object)) {
            log_warn("registry: %s '%s' is not a JSON object; ignored", kind, k->str);
            json_object_put(obj);
            continue;
        }
        json_object_object_add(map, k->str, obj);
    }
    return map;
}

json_object *reg_empty_doc(void)
{
    return json_tokener_parse("{\"backends\":{},\"mcp_servers\":{},\"assistants\":{},"
                              "\"settings\":{\"proxy_api_keys\":[],\"apiman\":null}}");
}

int reg_parse_snapshot(const redisReply *rep, const reg_keys_t *k, json_object **out,
                       long long *version, char *err, size_t errlen)
{
    json_object *doc = NULL, *settings = NULL;
    redisReply *ex;
    char *end;
    int rc = 0;

    *out = NULL;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != REG_SNAPSHOT_CMDS) {
        snprintf(err, errlen, "Redis registry read: %s",
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected EXEC reply");
        rc = -EIO;
        goto out;
    }
    ex = rep->element[0];
    if (ex->type == REDIS_REPLY_NIL) {
        rc = reg__missing(k, err, errlen);
        goto out;
    }
    doc = json_object_new_object();
    if (!doc) {
        snprintf(err, errlen, "out of memory reading the registry");
        rc = -ENOMEM;
        goto out;
    }
    json_object_object_add(doc, "backends", reg__hash(rep->element[2], "backend"));
    json_object_object_add(doc, "mcp_servers", reg__hash(rep->element[3], "MCP server"));
    json_object_object_add(doc, "assistants", reg__hash(rep->element[1], "assistant"));
    if (rep->element[4]->type == REDIS_REPLY_STRING)
        settings = json_tokener_parse(rep->element[4]->str);
    if (!settings || !json_object_is_type(settings, json_type_object)) {
        json_object_put(settings);
        settings = json_tokener_parse("{\"proxy_api_keys\":[],\"apiman\":null}");
    }
    json_object_object_add(doc, "settings", settings);
    *version = strtoll(ex->type == REDIS_REPLY_STRING ? ex->str : "0", &end, 10);
    *out = doc;
    doc = NULL;
out:
    json_object_put(doc);
    return rc;
}

/* MULTI; GET version; HGETALL x3; GET settings; EXEC — one consistent read. */
static int reg__reload(reg_t *r)
{
    redisReply *rep = NULL;
    json_object *doc = NULL;
    long long version = 0;
    void *vp;
    int rc = 0, i, argc, lost = 0;
    const char *argv[2];

    r->st.round_trips++;
    redisAppendCommand(r->c, "MULTI");
    for (i = 0; i < REG_SNAPSHOT_CMDS; i++) {
        reg_snapshot_cmd(&r->k, i, &argc, argv);
        redisAppendCommandArgv(r->c, argc, argv, NULL);
    }
    redisAppendCommand(r->c, "EXEC");
    for (i = 0; i < REG_SNAPSHOT_CMDS + 2; i++) {
        if (redisGetReply(r->c, &vp) != REDIS_OK) {
            rc = reg__io_fail(r, "registry read");
            goto out;
        }
        if (rconn_reply_lost(vp) && !lost) {              /* read the rest, then drop */
            lost = 1;
            reg__seterr(r, "Redis registry read failed: %s (reconnecting)%s",
                        ((redisReply *)vp)->str, NULL);
        }
        if (i < REG_SNAPSHOT_CMDS + 1) {
            freeReplyObject(vp);
            continue;
        }
        rep = vp;
    }
    if (lost) {
        reg__drop(r);
        rc = -EIO;
        goto out;
    }
    rc = reg_parse_snapshot(rep, &r->k, &doc, &version, r->err, sizeof r->err);
    if (rc < 0)
        goto out;
    json_object_put(r->doc);
    r->doc = doc;
    r->version = version;
    r->st.reloads++;
out:
    if (rep)
        freeReplyObject(rep);
    return rc;
}

/* One refresh attempt: reg_refresh without healing. */
static int reg__refresh_once(reg_t *r)
{
    long long v = 0;
    int rc, attempt;

    /* A second attempt only when a connection we already had turned out to
     * be dead (Redis restarted): reconnecting is then the transparent fix. */
    for (attempt = 0; attempt < 2; attempt++) {
        if ((rc = reg__connect(r)) < 0)
            return rc;
        rc = reg__get_version(r, &v);
        if (rc == -EIO && !r->c)
            continue;          /* dropped: one more try on another connection */
        break;
    }
    if (rc < 0)
        return rc;
    if (rc == 0)
        return reg__missing(&r->k, r->err, sizeof r->err);
    if (r->doc && v == r->version)
        return 0;                      /* the hot path: one GET, nothing built */
    return reg__reload(r);
}

/* Writes the seed document when Redis holds no registry (the Lua guard makes
 * it a no-op when someone else got there first). 0 or a negative code. */
static int reg__heal(reg_t *r)
{
    json_object *doc = json_tokener_parse(r->seed);
    int seeded = 0, rc;

    if (!doc || !json_object_is_type(doc, json_type_object)) {
        reg__seterr(r, "the registry is missing and the seed document is not valid JSON%s%s",
                    NULL, NULL);
        rc = -EINVAL;
        goto out;
    }
    rc = reg_seed(r, doc, 0, &seeded);
    if (rc == 0 && seeded)
        log_warn("Redis held no registry (restarted empty or flushed?): re-seeded it from the "
                 "config file; admin edits made since that were not persisted by Redis are lost");
out:
    json_object_put(doc);
    return rc;
}

/* No registry in Redis: the snapshot becomes the empty registry, version 0,
 * so lookups find nothing and an admin write (expect_version 0) creates it. */
static void reg__set_empty(reg_t *r)
{
    json_object *doc = reg_empty_doc();

    if (!doc)
        return;                        /* ENOMEM: keep the old snapshot */
    json_object_put(r->doc);
    r->doc = doc;
    r->version = 0;
}

void reg_set_seed(reg_t *r, const char *json)
{
    r->seed = json;
}

void reg_set_watch(reg_t *r, regwatch_t *w)
{
    r->watch = w;
    r->fresh = 0;
}

int reg_refresh(reg_t *r)
{
    unsigned long gen;
    int rc;

    if (!r->watch)
        return reg_refresh_now(r);
    gen = regwatch_gen(r->watch);
    if (r->fresh && r->doc && gen == r->seen_gen &&
        !regwatch_pending(r->watch)) {
        r->trust_gen = gen;
        return 0;              /* nothing moved: no round trip */
    }
    rc = reg_refresh_now(r);
    r->fresh = rc == 0;
    r->seen_gen = gen;         /* read before the refresh: a later move re-reads */
    return rc;
}

unsigned long reg_trust_gen(const reg_t *r)
{
    return r ? r->trust_gen : 0;
}

int reg_refresh_now(reg_t *r)
{
    int held = r->c != NULL, rc;

    r->trust_gen = 0;
    rc = reg__refresh_once(r);

    if (rc == -ENOENT && r->seed) {
        rc = reg__heal(r);
        if (rc == 0)
            rc = reg__refresh_once(r);
        else if (rc != -ENOENT)
            log_warn("registry missing and cannot be re-seeded: %s", r->err);
    }
    if (rc == -ENOENT)
        reg__set_empty(r);
    if (!held)
        reg_release(r);         /* back to the pool at once */
    return rc;
}

json_object *reg_doc(reg_t *r)
{
    return r->doc;
}

json_object *reg_all(reg_t *r, const char *kind)
{
    json_object *m = NULL;
    if (!r->doc || !json_object_object_get_ex(r->doc, kind, &m))
        return NULL;
    return m;
}

json_object *reg_get(reg_t *r, const char *kind, const char *name)
{
    json_object *m = reg_all(r, kind), *o = NULL;
    if (!m || !name || !json_object_object_get_ex(m, name, &o))
        return NULL;
    return o;
}

json_object *reg_settings(reg_t *r)
{
    return reg_all(r, "settings");
}

long long reg_version(reg_t *r)
{
    return r->version;
}

redisContext *reg_redis(reg_t *r)
{
    if (!r)
        return NULL;
    if (r->c && r->c->err)
        reg__drop(r);           /* broken while held: a new one */
    return reg__connect(r) == 0 ? r->c : NULL;
}

void reg_release_broken(reg_t *r)
{
    if (r && r->c)
        reg__drop(r);
}

struct rmux *reg_mux(reg_t *r)
{
    return rpool_mux(r->pool);
}

const char *reg_prefix(const reg_t *r)
{
    return r->prefix;
}

const char *reg_errstr(const reg_t *r)
{
    return r->err;
}

/* The change message after `{"version":N,`, JSON-escaped by json-c. */
static char *reg__msg_tail(const char *kind, const char *name, const char *op)
{
    json_object *o = json_object_new_object();
    char *tail = NULL;
    const char *s;

    if (!o)
        return NULL;
    json_object_object_add(o, "kind", json_object_new_string(kind));
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "op", json_object_new_string(op));
    s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    if (s && s[0] == '{')
        tail = strdup(s + 1);
    json_object_put(o);
    return tail;
}

/* Runs EVAL with argv on a live connection, reconnecting once if the one we
 * had is dead. Returns the reply (caller frees) or NULL with r->err set. */
static redisReply *reg__eval(reg_t *r, int argc, const char **argv, const size_t *lens, int *rc)
{
    redisReply *rep = NULL;
    int attempt;

    for (attempt = 0; attempt < 2; attempt++) {
        int had_conn = attempt == 0;   /* one more try on another connection */
        if ((*rc = reg__connect(r)) < 0)
            return NULL;
        r->st.round_trips++;
        rep = redisCommandArgv(r->c, argc, argv, lens);
        if (rep && rconn_reply_lost(rep)) {
            /* refused before the script ran (a replica, a loading server):
             * nothing was written, so the other master may take it */
            *rc = reg__lost(r, "registry write", rep);
            freeReplyObject(rep);
            rep = NULL;
            if (!had_conn)
                return NULL;
            continue;
        }
        if (rep)
            break;
        *rc = reg__io_fail(r, "registry write");
        if (!had_conn)
            return NULL;
    }
    if (!rep)
        return NULL;
    if (reg_parse_script_reply(rep, NULL, r->err, sizeof r->err) < 0) {
        freeReplyObject(rep);
        *rc = -EIO;
        return NULL;
    }
    *rc = 0;
    if (r->watch)
        regwatch_bump(r->watch);   /* our other threads re-read at once */
    return rep;
}

int reg_parse_script_reply(const redisReply *rep, long long *status, char *err, size_t errlen)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER) {
        snprintf(err, errlen, "Redis registry script failed: %s",
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
        return -EIO;
    }
    if (status)
        *status = rep->element[0]->integer;
    return 0;
}

static const char *reg__hash_key(reg_t *r, const char *kind)
{
    if (!strcmp(kind, "assistants"))
        return r->k.assistants;
    if (!strcmp(kind, "backends"))
        return r->k.backends;
    if (!strcmp(kind, "mcp_servers"))
        return r->k.mcp_servers;
    return NULL;
}

static int reg__write(reg_t *r, const char *kind, const char *name, const char *json,
                      long long expect_version, const char *op)
{
    const char *argv[11];
    size_t lens[11];
    const char *key = reg__hash_key(r, kind);
    int is_settings = !strcmp(kind, "settings");
    char expect[32];
    char *tail = NULL;
    redisReply *rep = NULL;
    int rc = 0, i, held;

    if (!key && !is_settings) {
        reg__seterr(r, "unknown registry kind '%s' (assistants, backends, mcp_servers, settings)",
                    kind, NULL);
        return -EINVAL;
    }
    if (!name)
        name = "";
    tail = reg__msg_tail(kind, name, op);
    if (!tail) {
        rc = -ENOMEM;
        goto out;
    }
    snprintf(expect, sizeof expect, "%lld", expect_version > 0 ? expect_version : 0);
    argv[0] = "EVAL";
    argv[1] = REG_WRITE_LUA;
    argv[2] = "2";
    argv[3] = r->k.version;
    argv[4] = is_settings ? r->k.settings : key;
    argv[5] = expect;
    argv[6] = r->k.changed;
    argv[7] = name;
    argv[8] = json;
    argv[9] = is_settings ? "string" : "hash";
    argv[10] = tail;
    for (i = 0; i < 11; i++)
        lens[i] = strlen(argv[i]);
    held = r->c != NULL;
    rep = reg__eval(r, 11, argv, lens, &rc);
    if (!held)
        reg_release(r);
    if (!rep)
        goto out;
    if (rep->element[0]->integer == -1) {
        snprintf(r->err, sizeof r->err,
                 "the registry changed (now version %lld, expected %lld): re-read and retry",
                 (long long)rep->element[1]->integer, expect_version);
        rc = -EAGAIN;
    } else if (rep->element[0]->integer == -2) {
        snprintf(r->err, sizeof r->err, "%s '%s' does not exist", kind, name);
        rc = -ENOENT;
    }
out:
    if (rep)
        freeReplyObject(rep);
    free(tail);
    return rc;
}

/* Serialises an object for Redis; the caller's object is not changed. */
static const char *reg__json(json_object *obj)
{
    return json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
                                                   JSON_C_TO_STRING_NOSLASHESCAPE);
}

int reg_put(reg_t *r, const char *kind, const char *name, json_object *obj,
            long long expect_version)
{
    const char *json;

    if (!obj) {
        reg__seterr(r, "reg_put: no object to write for %s '%s'", kind, name);
        return -EINVAL;
    }
    json = reg__json(obj);
    if (!json)
        return -ENOMEM;
    return reg__write(r, kind, name, json, expect_version, "put");
}

int reg_del(reg_t *r, const char *kind, const char *name, long long expect_version)
{
    if (!strcmp(kind, "settings")) {
        reg__seterr(r, "settings cannot be deleted, only replaced%s%s", NULL, NULL);
        return -EINVAL;
    }
    return reg__write(r, kind, name, "", expect_version, "del");
}

void reg_seed_cmd_clear(reg_seed_cmd_t *cmd)
{
    free(cmd->argv);
    free(cmd->lens);
    free(cmd->tail);
    free(cmd->settings_json);
    memset(cmd, 0, sizeof *cmd);
}

int reg_seed_cmd_build(reg_seed_cmd_t *cmd, const reg_keys_t *k, json_object *doc, int reseed)
{
    static const char *const kinds[3] = {"assistants", "backends", "mcp_servers"};
    size_t n = 15, pos, i;
    json_object *maps[3] = {NULL, NULL, NULL}, *settings = NULL;
    int rc = 0, j;

    memset(cmd, 0, sizeof *cmd);
    for (j = 0; j < 3; j++) {
        if (json_object_object_get_ex(doc, kinds[j], &maps[j]) &&
            json_object_is_type(maps[j], json_type_object))
            n += 2 * (size_t)json_object_object_length(maps[j]);
        else
            maps[j] = NULL;
        snprintf(cmd->counts[j], sizeof cmd->counts[j], "%d",
                 maps[j] ? json_object_object_length(maps[j]) : 0);
    }
    json_object_object_get_ex(doc, "settings", &settings);
    cmd->settings_json = strdup(settings ? reg__json(settings) : "{\"proxy_api_keys\":[],\"apiman\":null}");
    cmd->tail = reg__msg_tail("all", "", "seed");
    cmd->argv = calloc(n, sizeof *cmd->argv);
    cmd->lens = calloc(n, sizeof *cmd->lens);
    if (!cmd->settings_json || !cmd->tail || !cmd->argv || !cmd->lens) {
        rc = -ENOMEM;
        goto out;
    }
    /* EVAL script 5 KEYS... ARGV: reseed, channel, settings, message tail,
     * three counts (in KEYS order), then name/json pairs. */
    pos = 0;
    cmd->argv[pos++] = "EVAL";
    cmd->argv[pos++] = REG_SEED_LUA;
    cmd->argv[pos++] = "5";
    cmd->argv[pos++] = k->version;
    cmd->argv[pos++] = k->assistants;
    cmd->argv[pos++] = k->backends;
    cmd->argv[pos++] = k->mcp_servers;
    cmd->argv[pos++] = k->settings;
    cmd->argv[pos++] = reseed ? "1" : "0";
    cmd->argv[pos++] = k->changed;
    cmd->argv[pos++] = cmd->settings_json;
    cmd->argv[pos++] = cmd->tail;
    for (j = 0; j < 3; j++)
        cmd->argv[pos++] = cmd->counts[j];
    for (j = 0; j < 3; j++) {
        if (!maps[j])
            continue;
        json_object_object_foreach(maps[j], name, obj) {
            const char *js = reg__json(obj);
            if (!js) {
                rc = -ENOMEM;
                goto out;
            }
            cmd->argv[pos++] = name;
            cmd->argv[pos++] = js;
        }
    }
    for (i = 0; i < pos; i++)
        cmd->lens[i] = strlen(cmd->argv[i]);
    cmd->argc = (int)pos;
out:
    if (rc < 0)
        reg_seed_cmd_clear(cmd);
    return rc;
}

int reg_seed(reg_t *r, json_object *doc, int reseed, int *seeded)
{
    reg_seed_cmd_t cmd;
    redisReply *rep = NULL;
    int rc, held;

    *seeded = 0;
    rc = reg_seed_cmd_build(&cmd, &r->k, doc, reseed);
    if (rc < 0) {
        snprintf(r->err, sizeof r->err, "out of memory seeding the registry");
        goto out;
    }
    held = r->c != NULL;
    rep = reg__eval(r, cmd.argc, cmd.argv, cmd.lens, &rc);
    if (!held)
        reg_release(r);
    if (!rep)
        goto out;
    *seeded = rep->element[0]->integer == 1;
out:
    if (rep)
        freeReplyObject(rep);
    reg_seed_cmd_clear(&cmd);
    return rc;
}

void reg_stats(const reg_t *r, reg_stats_t *out)
{
    *out = r->st;
}
