/* auth_keys — see auth_keys.h. */
#include "fcgi/auth/auth_keys.h"

#include "fcgi/auth/auth_kcache.h"
#include "fcgi/limit/limit.h"
#include "fcgi/limit/limit_lua.h"

#include "shared/keypol.h"
#include "shared/log.h"
#include "shared/rscript.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ARGV: prefix, sha256 hex of the secret, the request's in-flight id and
 * the slot's lease (fcgi/limit/limit.h). Nil when no key has it;
 * {"revoked"} when a revoked key had it (the tombstone key:r:<hash>
 * admin_keys leaves); else {id, name, owner, plan, policy, expires_at,
 * revoked_at, plan policy}, and, when the key is live and its effective
 * policy (the plan's fields under the key's own, budget field by field, as
 * keypol_merge) sets a limit, a 9th element: the limiter's gate run on them
 * (limit_gate of limit_lua_gate_fn, which the whole script is prefixed
 * with), so a limited key costs this one round trip before the answer.
 * Redis runs the body afresh on every call, so it builds no closures and
 * decodes a policy only when its text names a limit (policies are written
 * by json-c, which never escapes a letter: a text without `pm"`,
 * `max_concurrent` or `budget` sets none); one TIME serves the expiry and
 * the gate. A policy edited behind the API's back with a limit spelled in
 * escapes is still enforced: C finds the limit, sees no 9th element and
 * limit_gate runs the gate itself. */
static const char auth_keys__lookup[] =
    "local p = ARGV[1]\n"
    "local id = redis.call('GET', p .. 'key:h:' .. ARGV[2])\n"
    "if not id then\n"
    "  if redis.call('EXISTS', p .. 'key:r:' .. ARGV[2]) == 1 then return {'revoked'} end\n"
    "  return false\n"
    "end\n"
    "local h = redis.call('HMGET', p .. 'key:' .. id, 'name', 'owner', 'plan', 'policy',\n"
    "                     'expires_at', 'revoked_at')\n"
    "if not h[1] then return false end\n"
    "local plan = false\n"
    "if h[3] and h[3] ~= '' then plan = redis.call('GET', p .. 'plan:' .. h[3]) end\n"
    "local res = {id, h[1], h[2] or '', h[3] or '', h[4] or '', h[5] or '0', h[6] or '0',\n"
    "             plan or ''}\n"
    "local own, pl, any = {}, {}, false\n"
    "for i = 1, 2 do\n"
    "  local t = i == 1 and h[4] or plan\n"
    "  if t and (string.find(t, 'pm\"', 1, true) or string.find(t, 'max_concurrent', 1, true)\n"
    "            or string.find(t, 'budget', 1, true)) then\n"
    "    local ok, o = pcall(cjson.decode, t)\n"
    "    if ok and type(o) == 'table' then\n"
    "      any = true\n"
    "      if i == 1 then own = o else pl = o end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if not any then return res end\n"
    "local ob = type(own.budget) == 'table' and own.budget or {}\n"
    "local pb = type(pl.budget) == 'table' and pl.budget or {}\n"
    /* the key's field when it has one (even an unusable one: then 0), else
     * the plan's */
    "local function num(x, y)\n"
    "  if x == nil then x = y end\n"
    "  return type(x) == 'number' and x > 0 and math.floor(x) or 0\n"
    "end\n"
    "local rpm, tpm, conc = num(own.rpm, pl.rpm), num(own.tpm, pl.tpm),\n"
    "                      num(own.max_concurrent, pl.max_concurrent)\n"
    "local day, mon = num(ob.tokens_per_day, pb.tokens_per_day),\n"
    "                 num(ob.tokens_per_month, pb.tokens_per_month)\n"
    "if rpm + tpm + conc + day + mon == 0 then return res end\n"
    /* "0" (not revoked, no expiry) is the common text: no strtod for it */
    "local rv, ex = h[6] or '0', h[5] or '0'\n"
    "if rv ~= '0' and (tonumber(rv) or 0) > 0 then return res end\n"
    "local t = redis.call('TIME')\n"
    "if ex ~= '0' then\n"
    "  local e = tonumber(ex) or 0\n"
    "  if e > 0 and e <= tonumber(t[1]) then return res end\n"
    "end\n"
    /* a failing gate must not fail the lookup: without a 9th element the
     * limiter runs its own gate and applies its fail-open/closed rules */
    "local ok, g = pcall(limit_gate, p .. 'lim:' .. id .. ':', rpm, tpm, conc, day, mon,\n"
    "                    conc > 0 and ARGV[3] or '', tonumber(ARGV[4]),\n"
    "                    tonumber(t[1]) * 1000000 + tonumber(t[2]))\n"
    "if ok then res[9] = g end\n"
    "return res\n";

static char auth_keys__lua[sizeof(auth_keys__lookup) + 8192];
static pthread_once_t auth_keys__once = PTHREAD_ONCE_INIT;

static void auth_keys__build(void)
{
    snprintf(auth_keys__lua, sizeof(auth_keys__lua), "%s%s", limit_lua_gate_fn, auth_keys__lookup);
}

/* The reply's element i as an arena string ("" for anything else). */
static const char *auth_keys__str(const redisReply *rep, size_t i, arena_t *a)
{
    const redisReply *e = i < rep->elements ? rep->element[i] : NULL;
    if (!e || e->type != REDIS_REPLY_STRING)
        return "";
    return arena_strndup(a, e->str, e->len);
}

/* The reply's element i as a number (0 for anything else). */
static long long auth_keys__num(const redisReply *rep, size_t i)
{
    const redisReply *e = i < rep->elements ? rep->element[i] : NULL;
    char buf[32];
    if (!e || e->type != REDIS_REPLY_STRING || e->len == 0 || e->len >= sizeof(buf))
        return 0;
    memcpy(buf, e->str, e->len);
    buf[e->len] = '\0';
    return strtoll(buf, NULL, 10);
}

/* JSON text of an object into a new object, NULL for "" or anything else. */
static json_object *auth_keys__json(const char *s)
{
    json_object *o = s && *s ? json_tokener_parse(s) : NULL;
    if (o && !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
    return o;
}

int auth_keys_lookup(redisContext *c, const char *prefix, unsigned long gen, const char *hash,
                     arena_t *a, auth_principal_t **out, char *why, size_t whylen)
{
    static _Thread_local rscript_t script = { auth_keys__lua, "" };
    char member[LIMIT_MEMBER_LEN], lease[24];
    const char *argv[4] = { prefix, hash, member, lease };
    redisReply *rep = NULL;
    json_object *own = NULL, *plan = NULL, *eff = NULL;
    auth_principal_t *p;
    long long exp, rev, now = (long long)time(NULL);
    int rc = -EIO;

    *out = NULL;
    pthread_once(&auth_keys__once, auth_keys__build);
    limit_member(member);
    snprintf(lease, sizeof(lease), "%lld", limit_lease_ms());
    rep = c ? rscript_run(c, &script, 0, 4, argv, NULL) : NULL;
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        log_warn("auth: managed key lookup failed: %s",
                 rep ? rep->str : c ? c->errstr : "no Redis connection");
        goto out;
    }
    rc = -ENOENT;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1) {
        rc = -EACCES;
        snprintf(why, whylen, "This API key was revoked: ask for a new one.");
        goto out;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 8)
        goto out;
    rc = -ENOMEM;
    if (!(p = arena_alloc(a, sizeof(*p))))
        goto out;
    p->kind = AUTH_KIND_MANAGED;
    p->id = auth_keys__str(rep, 0, a);
    p->name = auth_keys__str(rep, 1, a);
    p->owner = auth_keys__str(rep, 2, a);
    p->plan = auth_keys__str(rep, 3, a);
    if (!p->id || !p->name || !p->owner || !p->plan)
        goto out;
    if (!*p->plan)
        p->plan = NULL;
    exp = auth_keys__num(rep, 5);
    rev = auth_keys__num(rep, 6);
    rc = -EACCES;
    if (rev > 0) {
        snprintf(why, whylen, "This API key was revoked: ask for a new one.");
        goto out;
    }
    if (exp > 0 && exp <= now) {
        snprintf(why, whylen, "This API key expired: ask for a new one.");
        goto out;
    }
    own = auth_keys__json(auth_keys__str(rep, 4, a));
    plan = auth_keys__json(auth_keys__str(rep, 7, a));
    rc = -ENOMEM;
    if (keypol_merge(plan, own, &eff) < 0 || (eff && arena_own_json(a, eff) < 0))
        goto out;
    p->policy = eff;
    p->pregate = rep->elements > 8 ? limit_pregate(a, rep->element[8], member) : NULL;
    auth_kcache_put(gen, hash, p, exp);
    *out = p;
    rc = 0;
out:
    json_object_put(own);
    json_object_put(plan);
    if (rep)
        freeReplyObject(rep);
    return rc;
}

int auth_keys_plan(redisContext *c, const char *prefix, const char *name, arena_t *a,
                   json_object **policy)
{
    redisReply *rep = NULL;
    int rc = -EIO;

    *policy = NULL;
    rep = c ? redisCommand(c, "GET %s" "plan:%s", prefix, name) : NULL;
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        log_warn("auth: plan lookup failed: %s",
                 rep ? rep->str : c ? c->errstr : "no Redis connection");
        goto out;
    }
    rc = 0;
    if (rep->type == REDIS_REPLY_STRING) {
        *policy = auth_keys__json(rep->str);
        if (*policy && arena_own_json(a, *policy) < 0) {
            *policy = NULL;
            rc = -ENOMEM;
        }
    }
out:
    if (rep)
        freeReplyObject(rep);
    return rc;
}

void auth_keys_announce(redisContext *c, const char *prefix)
{
    redisReply *rep = c ? redisCommand(c, "PUBLISH %skeys:changed 1", prefix) : NULL;

    if (!rep || rep->type == REDIS_REPLY_ERROR)
        log_warn("admin: cannot announce a key change (%s): other responders see it within "
                 "a second", rep ? rep->str : c ? c->errstr : "no Redis connection");
    if (rep)
        freeReplyObject(rep);
}
