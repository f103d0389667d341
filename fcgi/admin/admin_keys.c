/* admin_keys — see admin_keys.h. The Redis layout is docs/keys.md's: a key
 * is the hash <prefix>key:<id> (name, owner, plan, policy, created_at,
 * expires_at, revoked_at, display, hash, and old_hashes: the rotated-out
 * secrets still in their grace period, so a revoke can delete them too),
 * found from a secret through <prefix>key:h:<sha256> = id; a revoked
 * secret leaves <prefix>key:r:<sha256> = id (90 days) for the message. */
#include "fcgi/admin/admin_keys.h"

#include "fcgi/admin/admin.h"

#include "fcgi/admin/admin_keydoc.h"
#include "fcgi/auth/auth_keys.h"

#include "shared/caps.h"
#include "shared/cfg.h"
#include "shared/jtext.h"
#include "shared/keypol.h"
#include "shared/log.h"
#include "shared/rscript.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Rotation grace period ceiling: a week. */
#define ADMIN_KEYS_GRACE_MAX (7 * 86400)
#define ADMIN_KEYS_GRACE_DEFAULT 3600

/* ARGV: prefix, id, hash, field, value, ... -> 1 written, 0 the id exists. */
static const char admin_keys__create_lua[] =
    "local p, id = ARGV[1], ARGV[2]\n"
    "if redis.call('EXISTS', p .. 'key:' .. id) == 1 then return 0 end\n"
    "redis.call('HSET', p .. 'key:' .. id, unpack(ARGV, 4))\n"
    "redis.call('SET', p .. 'key:h:' .. ARGV[3], id)\n"
    "redis.call('SADD', p .. 'keys', id)\n"
    "return 1\n";

/* ARGV: prefix, id, field, value, ... -> 1, 0 no such key, -1 revoked. */
static const char admin_keys__patch_lua[] =
    "local k = ARGV[1] .. 'key:' .. ARGV[2]\n"
    "if redis.call('EXISTS', k) == 0 then return 0 end\n"
    "local r = redis.call('HGET', k, 'revoked_at')\n"
    "if r and r ~= '0' then return -1 end\n"
    "redis.call('HSET', k, unpack(ARGV, 3))\n"
    "return 1\n";

/* ARGV: prefix, id, now -> 1 (revoked now or before), 0 no such key.
 * Deletes every secret of the key that still points at it, leaving a
 * tombstone key:r:<hash> for 90 days so a client is told "revoked". */
static const char admin_keys__revoke_lua[] =
    "local p, id = ARGV[1], ARGV[2]\n"
    "local k = p .. 'key:' .. id\n"
    "if redis.call('EXISTS', k) == 0 then return 0 end\n"
    "local h = redis.call('HMGET', k, 'hash', 'old_hashes', 'revoked_at')\n"
    "local all = (h[1] or '') .. ' ' .. (h[2] or '')\n"
    "for x in string.gmatch(all, '%x+') do\n"
    "  if redis.call('GET', p .. 'key:h:' .. x) == id then\n"
    "    redis.call('DEL', p .. 'key:h:' .. x)\n"
    "    redis.call('SET', p .. 'key:r:' .. x, id, 'EX', 7776000)\n"
    "  end\n"
    "end\n"
    "if not h[3] or h[3] == '0' then redis.call('HSET', k, 'revoked_at', ARGV[3]) end\n"
    "redis.call('HSET', k, 'old_hashes', '')\n"
    "return 1\n";

/* ARGV: prefix, id, new hash, new display, grace ms -> 1, 0 no such key,
 * -1 revoked. The old secret keeps working grace ms (0: dies now). */
static const char admin_keys__rotate_lua[] =
    "local p, id = ARGV[1], ARGV[2]\n"
    "local k = p .. 'key:' .. id\n"
    "if redis.call('EXISTS', k) == 0 then return 0 end\n"
    "local h = redis.call('HMGET', k, 'hash', 'old_hashes', 'revoked_at')\n"
    "if h[3] and h[3] ~= '0' then return -1 end\n"
    "local keep = {}\n"
    "for x in string.gmatch(h[2] or '', '%x+') do\n"
    "  if redis.call('GET', p .. 'key:h:' .. x) == id then table.insert(keep, x) end\n"
    "end\n"
    "local old = h[1] or ''\n"
    "if old ~= '' and redis.call('GET', p .. 'key:h:' .. old) == id then\n"
    "  if tonumber(ARGV[5]) > 0 then\n"
    "    redis.call('PEXPIRE', p .. 'key:h:' .. old, ARGV[5])\n"
    "    table.insert(keep, old)\n"
    "  else\n"
    "    redis.call('DEL', p .. 'key:h:' .. old)\n"
    "  end\n"
    "end\n"
    "redis.call('SET', p .. 'key:h:' .. ARGV[3], id)\n"
    "redis.call('HSET', k, 'hash', ARGV[3], 'display', ARGV[4], 'old_hashes',\n"
    "           table.concat(keep, ' '))\n"
    "return 1\n";

int admin_keys_owns(const char *path)
{
    static const char *const roots[] = { "/admin/keys", "/admin/plans" };
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(roots[i]);
        if (path && strncmp(path, roots[i], n) == 0 && (path[n] == '\0' || path[n] == '/'))
            return 1;
    }
    return 0;
}

/* The key store did not answer: 503 (admin_store_down). */
static int admin_keys__redis_down(http_req_t *req, redisContext *c, const redisReply *rep)
{
    return admin_store_down(req, "key store", c, rep);
}

static int admin_keys__not_found(http_req_t *req, const char *id)
{
    return http_send_error(req, 404, "invalid_request_error", "not_found", "id",
                           "No API key with id '%.64s' (GET /admin/keys lists them).", id);
}

/* HGETALL of key `id` into *out (NULL when none). 0 or -EIO. */
static int admin_keys__load(redisContext *c, const char *prefix, const char *id,
                            redisReply **out)
{
    redisReply *rep = redisCommand(c, "HGETALL %skey:%s", prefix, id);
    *out = NULL;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        if (rep)
            freeReplyObject(rep);
        return -EIO;
    }
    if (rep->elements == 0)
        freeReplyObject(rep);
    else
        *out = rep;
    return 0;
}

static int admin_keys__get(http_req_t *req, redisContext *c, const char *prefix, const char *id)
{
    redisReply *h = NULL;
    json_object *pp = NULL, *view;
    const char *plan;
    if (admin_keys__load(c, prefix, id, &h) < 0)
        return admin_keys__redis_down(req, c, NULL);
    if (!h)
        return admin_keys__not_found(req, id);
    plan = admin_keydoc_field(h, "plan");
    if (plan && *plan)   /* the same read as a request's (arena-owned; absent: none) */
        (void)auth_keys_plan(c, prefix, plan, req->arena, &pp);
    view = admin_keydoc_view(id, h, 1, pp);
    freeReplyObject(h);
    return admin_send_owned(req, 200, view);
}

/* GET /admin/keys[?owner=&plan=]: every key, pipelined HGETALLs. */
static int admin_keys__list(http_req_t *req, redisContext *c, const char *prefix)
{
    const char *owner = http_query_param(req, "owner"), *plan = http_query_param(req, "plan");
    redisReply *ids = redisCommand(c, "SMEMBERS %skeys", prefix), *h = NULL;
    json_object *data = NULL;
    int rc;
    size_t i;

    if (!ids || ids->type != REDIS_REPLY_ARRAY) {
        rc = admin_keys__redis_down(req, c, ids);
        goto out;
    }
    for (i = 0; i < ids->elements; i++)
        redisAppendCommand(c, "HGETALL %skey:%b", prefix, ids->element[i]->str,
                           (size_t)ids->element[i]->len);
    data = json_object_new_array();
    for (i = 0; i < ids->elements; i++) {
        const char *v;
        if (redisGetReply(c, (void **)&h) != REDIS_OK || !h) {
            rc = admin_keys__redis_down(req, c, NULL);
            goto out;
        }
        if (data && h->type == REDIS_REPLY_ARRAY && h->elements > 0 &&
            (!owner || ((v = admin_keydoc_field(h, "owner")) && strcmp(v, owner) == 0)) &&
            (!plan || ((v = admin_keydoc_field(h, "plan")) && strcmp(v, plan) == 0)))
            json_object_array_add(data, admin_keydoc_view(ids->element[i]->str, h, 0, NULL));
        freeReplyObject(h);
        h = NULL;
    }
    rc = admin_send_list(req, data);
    data = NULL;
out:
    json_object_put(data);
    if (ids)
        freeReplyObject(ids);
    return rc;
}

/* The body as a JSON value; 400 sent (and -EINVAL) when it is not one. */
static int admin_keys__body(http_req_t *req, int optional, json_object **out)
{
    char err[256];
    *out = NULL;
    if (optional && req->body_len == 0)
        return 0;
    if (req->body_len > CAP_ADMIN_DOC_BODY ||
        jtext_parse_strict(req->body, req->body_len, 32, out, err, sizeof err) < 0) {
        http_send_error(req, 400, "invalid_request_error", "invalid_json", NULL, "%s",
                        req->body_len > CAP_ADMIN_DOC_BODY ? "the request body is too large"
                                                          : err);
        return -EINVAL;
    }
    return 0;
}

static int admin_keys__create(http_req_t *req, redisContext *c, const char *prefix)
{
    const char *argv[3 + 2 * 10], *param = NULL;
    char id[KEYPOL_ID_LEN + 1], secret[KEYPOL_SECRET_LEN + 1], hash[KEYPOL_HASH_LEN + 1];
    char disp[KEYPOL_DISPLAY_LEN + 1], now[32], err[512];
    static _Thread_local rscript_t script = { admin_keys__create_lua, "" };
    json_object *body = NULL, *view = NULL;
    redisReply *rep = NULL, *h = NULL;
    int n = 3, rc;

    if (admin_keys__body(req, 0, &body) < 0)
        return 0;
    if ((rc = admin_keydoc_fields(body, 1, req->arena, argv, &n, err, sizeof err, &param)) < 0) {
        rc = http_send_error(req, rc == -ENOMEM ? 500 : 400, "invalid_request_error",
                             "invalid_value", param, "%s", err);
        goto out;
    }
    if (keypol_new_id(id) < 0 || keypol_secret(secret) < 0) {
        rc = http_send_error(req, 500, "api_error", NULL, NULL, "no random bytes for a key");
        goto out;
    }
    keypol_hash(secret, strlen(secret), hash);
    keypol_display(secret, disp);
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    argv[0] = prefix;
    argv[1] = id;
    argv[2] = hash;
    /* defaults first: the body's own fields (later in argv) win in HSET */
    {
        static const char *const dflt[] = { "owner", "", "plan", "", "policy", "{}",
                                            "expires_at", "0", "revoked_at", "0" };
        const char *all[3 + 2 * 16];
        int m = 3;
        memcpy(all, argv, 3 * sizeof(*argv));
        for (size_t i = 0; i < sizeof dflt / sizeof dflt[0]; i++)
            all[m++] = dflt[i];
        all[m++] = "created_at";
        all[m++] = now;
        all[m++] = "display";
        all[m++] = disp;
        all[m++] = "hash";
        all[m++] = hash;
        for (int i = 3; i < n; i++)
            all[m++] = argv[i];
        rep = rscript_run(c, &script, 0, m, all, NULL);
    }
    if (!rep || rep->type != REDIS_REPLY_INTEGER || rep->integer != 1) {
        rc = admin_keys__redis_down(req, c, rep);
        goto out;
    }
    if (admin_keys__load(c, prefix, id, &h) < 0 || !h) {
        rc = admin_keys__redis_down(req, c, NULL);
        goto out;
    }
    log_info("admin: created API key %s ('%s')", id, admin_keydoc_field(h, "name"));
    view = admin_keydoc_view(id, h, 0, NULL);
    if (view)
        json_object_object_add(view, "key", json_object_new_string(secret));
    rc = admin_send_owned(req, 201, view);
out:
    memset(secret, 0, sizeof secret);
    if (h)
        freeReplyObject(h);
    if (rep)
        freeReplyObject(rep);
    json_object_put(body);
    return rc;
}

/* A write script's verdict: 1 done; 0 no such key (404); -1 revoked (409). */
static int admin_keys__verdict(http_req_t *req, redisContext *c, redisReply *rep,
                               const char *id, const char *what)
{
    if (!rep || rep->type != REDIS_REPLY_INTEGER)
        return admin_keys__redis_down(req, c, rep);
    if (rep->integer == 0)
        return admin_keys__not_found(req, id);
    return http_send_error(req, 409, "invalid_request_error", "key_revoked", "id",
                           "API key '%s' is revoked: it cannot be %s (create a new one).", id,
                           what);
}

static int admin_keys__patch(http_req_t *req, redisContext *c, const char *prefix,
                             const char *id)
{
    static _Thread_local rscript_t script = { admin_keys__patch_lua, "" };
    const char *argv[2 + 2 * 10], *param = NULL;
    char err[512];
    json_object *body = NULL;
    redisReply *rep = NULL;
    int n = 2, rc;

    if (admin_keys__body(req, 0, &body) < 0)
        return 0;
    if ((rc = admin_keydoc_fields(body, 0, req->arena, argv, &n, err, sizeof err, &param)) < 0) {
        rc = http_send_error(req, rc == -ENOMEM ? 500 : 400, "invalid_request_error",
                             "invalid_value", param, "%s", err);
        goto out;
    }
    if (n == 2) {
        rc = http_send_error(req, 400, "invalid_request_error", "invalid_value", NULL,
                             "nothing to change: send one or more of name, owner, plan, "
                             "expires_at, policy");
        goto out;
    }
    argv[0] = prefix;
    argv[1] = id;
    rep = rscript_run(c, &script, 0, n, argv, NULL);
    if (!rep || rep->type != REDIS_REPLY_INTEGER || rep->integer != 1) {
        rc = admin_keys__verdict(req, c, rep, id, "changed");
        goto out;
    }
    auth_keys_announce(c, prefix);
    log_info("admin: changed API key %s", id);
    rc = admin_keys__get(req, c, prefix, id);
out:
    if (rep)
        freeReplyObject(rep);
    json_object_put(body);
    return rc;
}

static int admin_keys__revoke(http_req_t *req, redisContext *c, const char *prefix,
                              const char *id)
{
    static _Thread_local rscript_t script = { admin_keys__revoke_lua, "" };
    char now[32];
    const char *argv[3] = { prefix, id, now };
    redisReply *rep;
    int rc;

    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    rep = rscript_run(c, &script, 0, 3, argv, NULL);
    if (!rep || rep->type != REDIS_REPLY_INTEGER || rep->integer != 1)
        rc = admin_keys__verdict(req, c, rep, id, "revoked");
    else {
        auth_keys_announce(c, prefix);
        log_info("admin: revoked API key %s", id);
        rc = admin_keys__get(req, c, prefix, id);
    }
    if (rep)
        freeReplyObject(rep);
    return rc;
}

static int admin_keys__rotate(http_req_t *req, redisContext *c, const char *prefix,
                              const char *id)
{
    static _Thread_local rscript_t script = { admin_keys__rotate_lua, "" };
    char secret[KEYPOL_SECRET_LEN + 1] = "", hash[KEYPOL_HASH_LEN + 1];
    char disp[KEYPOL_DISPLAY_LEN + 1], ms[32];
    const char *argv[5] = { prefix, id, hash, disp, ms };
    json_object *body = NULL, *g = NULL, *view = NULL;
    redisReply *rep = NULL, *h = NULL;
    long long grace = ADMIN_KEYS_GRACE_DEFAULT;
    int rc;

    if (admin_keys__body(req, 1, &body) < 0)
        return 0;
    if (body && !json_object_is_type(body, json_type_object)) {
        rc = http_send_error(req, 400, "invalid_request_error", "invalid_value", NULL,
                             "the request body must be a JSON object {grace_seconds}");
        goto out;
    }
    json_object_object_foreach(body, k, v) {
        (void)v;
        if (strcmp(k, "grace_seconds") != 0) {
            rc = http_send_error(req, 400, "invalid_request_error", "invalid_value", k,
                                 "%.64s: unknown field (known: grace_seconds)", k);
            goto out;
        }
    }
    if (json_object_object_get_ex(body, "grace_seconds", &g) && g) {
        grace = json_object_is_type(g, json_type_int) ? json_object_get_int64(g) : -1;
        if (grace < 0 || grace > ADMIN_KEYS_GRACE_MAX) {
            rc = http_send_error(req, 400, "invalid_request_error", "invalid_value",
                                 "grace_seconds", "grace_seconds: must be a whole number of "
                                 "seconds from 0 (the old secret stops at once) to %d",
                                 ADMIN_KEYS_GRACE_MAX);
            goto out;
        }
    }
    if (keypol_secret(secret) < 0) {
        rc = http_send_error(req, 500, "api_error", NULL, NULL, "no random bytes for a key");
        goto out;
    }
    keypol_hash(secret, strlen(secret), hash);
    keypol_display(secret, disp);
    snprintf(ms, sizeof ms, "%lld", grace * 1000);
    rep = rscript_run(c, &script, 0, 5, argv, NULL);
    if (!rep || rep->type != REDIS_REPLY_INTEGER || rep->integer != 1) {
        rc = admin_keys__verdict(req, c, rep, id, "rotated");
        goto out;
    }
    auth_keys_announce(c, prefix);
    if (admin_keys__load(c, prefix, id, &h) < 0 || !h) {
        rc = admin_keys__redis_down(req, c, NULL);
        goto out;
    }
    log_info("admin: rotated API key %s (old secret valid %llds)", id, grace);
    view = admin_keydoc_view(id, h, 0, NULL);
    if (view) {
        json_object_object_add(view, "key", json_object_new_string(secret));
        json_object_object_add(view, "grace_seconds", json_object_new_int64(grace));
    }
    rc = admin_send_owned(req, 200, view);
out:
    memset(secret, 0, sizeof secret);
    if (h)
        freeReplyObject(h);
    if (rep)
        freeReplyObject(rep);
    json_object_put(body);
    return rc;
}

static int admin_keys__405(http_req_t *req, const char *allow)
{
    char hdr[96];
    snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
    json_object *e = http_error_json(405, "invalid_request_error", "method_not_allowed", NULL,
                                     "This method is not allowed here.");
    int rc;
    if (!e)
        return http_send_error(req, 500, "api_error", NULL, NULL, "out of memory");
    rc = http_send_json(req, 405, e, hdr);
    json_object_put(e);
    return rc;
}

static int admin_keys__route(http_req_t *req, svc_t *svc)
{
    const char *m = req->method, *rest;
    redisContext *c = svc->reg ? reg_redis(svc->reg) : NULL;
    const char *prefix = svc->reg ? reg_prefix(svc->reg) : "";
    char id[KEYPOL_ID_LEN + 1];
    size_t len;

    if (strncmp(req->path, "/admin/plans", 12) == 0) {
        rest = req->path + 12;
        return admin_plans_handle(req, svc, *rest && rest[1] ? rest + 1 : NULL);
    }
    rest = req->path + 11;   /* after /admin/keys */
    if (*rest == '\0' || strcmp(rest, "/") == 0) {
        if (strcmp(m, "GET") && strcmp(m, "HEAD") && strcmp(m, "POST"))
            return admin_keys__405(req, "GET, POST");
        if (!c)
            return admin_keys__redis_down(req, c, NULL);
        return strcmp(m, "POST") == 0 ? admin_keys__create(req, c, prefix)
                                      : admin_keys__list(req, c, prefix);
    }
    rest++;
    len = strcspn(rest, "/");
    if (len > KEYPOL_ID_LEN || (rest[len] && strcmp(rest + len, "/rotate") != 0))
        return http_send_error(req, 404, "invalid_request_error", "not_found", NULL,
                               "Unknown admin route %s %s: see docs/keys.md.", m, req->path);
    memcpy(id, rest, len);
    id[len] = '\0';
    if (rest[len]) {
        if (strcmp(m, "POST"))
            return admin_keys__405(req, "POST");
    } else if (strcmp(m, "GET") && strcmp(m, "HEAD") && strcmp(m, "PATCH") &&
               strcmp(m, "DELETE")) {
        return admin_keys__405(req, "GET, PATCH, DELETE");
    }
    if (!keypol_id_valid(id))
        return admin_keys__not_found(req, id);
    if (!c)
        return admin_keys__redis_down(req, c, NULL);
    if (rest[len])
        return admin_keys__rotate(req, c, prefix, id);
    if (strcmp(m, "PATCH") == 0)
        return admin_keys__patch(req, c, prefix, id);
    if (strcmp(m, "DELETE") == 0)
        return admin_keys__revoke(req, c, prefix, id);
    return admin_keys__get(req, c, prefix, id);
}

/* The Redis connection the handler borrowed (reg_redis) goes back to the
 * pool when the answer is written. */
int admin_keys_handle(http_req_t *req, svc_t *svc)
{
    int rc = admin_keys__route(req, svc);

    reg_release(svc->reg);
    return rc;
}
