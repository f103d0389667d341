/* admin_plans — /admin/plans (docs/keys.md "Plans"): a plan is a named
 * policy keys inherit, <prefix>plan:<name> = the policy's JSON text, its
 * name in the set <prefix>plans. A key reads its plan on every request, so
 * a PUT here changes what every key of the plan sees on its next one. */
#include "fcgi/admin/admin.h"
#include "fcgi/admin/admin_keys.h"

#include "shared/caps.h"
#include "shared/cfg.h"
#include "shared/jtext.h"
#include "shared/keypol.h"
#include "shared/log.h"
#include "fcgi/auth/auth_keys.h"
#include "shared/rscript.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ARGV: prefix, name, json -> 1 created, 0 replaced. */
static const char admin_plans__put_lua[] =
    "local p, n = ARGV[1], ARGV[2]\n"
    "local existed = redis.call('EXISTS', p .. 'plan:' .. n)\n"
    "redis.call('SET', p .. 'plan:' .. n, ARGV[3])\n"
    "redis.call('SADD', p .. 'plans', n)\n"
    "return 1 - existed\n";

/* ARGV: prefix, name -> 1 deleted, 0 no such plan, -n: n live keys use it. */
static const char admin_plans__del_lua[] =
    "local p, n = ARGV[1], ARGV[2]\n"
    "if redis.call('EXISTS', p .. 'plan:' .. n) == 0 then return 0 end\n"
    "local users = 0\n"
    "for _, id in ipairs(redis.call('SMEMBERS', p .. 'keys')) do\n"
    "  local h = redis.call('HMGET', p .. 'key:' .. id, 'plan', 'revoked_at')\n"
    "  if h[1] == n and (not h[2] or h[2] == '0') then users = users + 1 end\n"
    "end\n"
    "if users > 0 then return -users end\n"
    "redis.call('DEL', p .. 'plan:' .. n)\n"
    "redis.call('SREM', p .. 'plans', n)\n"
    "return 1\n";

/* The plan store did not answer: 503 (admin_store_down). */
static int admin_plans__down(http_req_t *req, redisContext *c, const redisReply *rep)
{
    return admin_store_down(req, "plans", c, rep);
}

/* {"object":"plan","name","policy"} from the stored text (NULL: "{}"). */
static json_object *admin_plans__view(const char *name, const char *text)
{
    json_object *o = json_object_new_object(), *pol = text ? json_tokener_parse(text) : NULL;
    if (!json_object_is_type(pol, json_type_object)) {
        json_object_put(pol);
        pol = json_object_new_object();
    }
    if (!o) {
        json_object_put(pol);
        return NULL;
    }
    json_object_object_add(o, "object", json_object_new_string("plan"));
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "policy", pol);
    return o;
}

static int admin_plans__list(http_req_t *req, redisContext *c, const char *prefix)
{
    redisReply *names = redisCommand(c, "SMEMBERS %splans", prefix), *r = NULL;
    json_object *data = json_object_new_array();
    int rc;

    if (!names || names->type != REDIS_REPLY_ARRAY) {
        rc = admin_plans__down(req, c, names);
        goto out;
    }
    for (size_t i = 0; i < names->elements; i++)
        redisAppendCommand(c, "GET %splan:%b", prefix, names->element[i]->str,
                           (size_t)names->element[i]->len);
    for (size_t i = 0; i < names->elements; i++) {
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r) {
            rc = admin_plans__down(req, c, NULL);
            goto out;
        }
        if (r->type == REDIS_REPLY_STRING && data)
            json_object_array_add(data, admin_plans__view(names->element[i]->str, r->str));
        freeReplyObject(r);
    }
    rc = admin_send_list(req, data);
    data = NULL;
out:
    json_object_put(data);
    if (names)
        freeReplyObject(names);
    return rc;
}

static int admin_plans__get(http_req_t *req, redisContext *c, const char *prefix,
                            const char *name)
{
    redisReply *r = redisCommand(c, "GET %splan:%s", prefix, name);
    int rc;
    if (!r || r->type == REDIS_REPLY_ERROR)
        rc = admin_plans__down(req, c, r);
    else if (r->type != REDIS_REPLY_STRING)
        rc = http_send_error(req, 404, "invalid_request_error", "not_found", "name",
                             "No plan named '%s' (GET /admin/plans lists them).", name);
    else
        rc = admin_send_owned(req, 200, admin_plans__view(name, r->str));
    if (r)
        freeReplyObject(r);
    return rc;
}

static int admin_plans__put(http_req_t *req, redisContext *c, const char *prefix,
                            const char *name)
{
    static _Thread_local rscript_t script = { admin_plans__put_lua, "" };
    char err[512], param[96];
    const char *argv[3] = { prefix, name, NULL };
    json_object *pol = NULL;
    redisReply *r = NULL;
    int rc;

    if (req->body_len > CAP_ADMIN_DOC_BODY ||
        jtext_parse_strict(req->body, req->body_len, 32, &pol, err, sizeof err) < 0) {
        rc = http_send_error(req, 400, "invalid_request_error", "invalid_json", NULL, "%s",
                             req->body_len > CAP_ADMIN_DOC_BODY ? "the request body is too large"
                                                               : err);
        goto out;
    }
    if (keypol_check(pol, err, sizeof err) < 0) {
        const char *colon = strchr(err, ':');
        snprintf(param, sizeof param, "%.*s", colon ? (int)(colon - err) : 0, err);
        rc = http_send_error(req, 400, "invalid_request_error", "invalid_value",
                             param[0] ? param : NULL, "%s", err);
        goto out;
    }
    argv[2] = json_object_to_json_string_ext(pol, JSON_C_TO_STRING_PLAIN);
    r = rscript_run(c, &script, 0, 3, argv, NULL);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        rc = admin_plans__down(req, c, r);
        goto out;
    }
    auth_keys_announce(c, prefix);
    log_info("admin: %s plan '%s'", r->integer ? "created" : "replaced", name);
    rc = admin_send_owned(req, r->integer ? 201 : 200, admin_plans__view(name, argv[2]));
out:
    if (r)
        freeReplyObject(r);
    json_object_put(pol);
    return rc;
}

static int admin_plans__delete(http_req_t *req, redisContext *c, const char *prefix,
                               const char *name)
{
    static _Thread_local rscript_t script = { admin_plans__del_lua, "" };
    const char *argv[2] = { prefix, name };
    redisReply *r = rscript_run(c, &script, 0, 2, argv, NULL);
    json_object *o;
    int rc;

    if (!r || r->type != REDIS_REPLY_INTEGER) {
        rc = admin_plans__down(req, c, r);
    } else if (r->integer == 0) {
        rc = http_send_error(req, 404, "invalid_request_error", "not_found", "name",
                             "No plan named '%s' (GET /admin/plans lists them).", name);
    } else if (r->integer < 0) {
        rc = http_send_error(req, 409, "invalid_request_error", "in_use", "name",
                             "plan '%s' is still used by %lld key%s: move them to another "
                             "plan (PATCH /admin/keys/{id}) or revoke them first.", name,
                             -r->integer, r->integer < -1 ? "s" : "");
    } else {
        auth_keys_announce(c, prefix);
        log_info("admin: deleted plan '%s'", name);
        o = json_object_new_object();
        if (o) {
            json_object_object_add(o, "name", json_object_new_string(name));
            json_object_object_add(o, "object", json_object_new_string("plan"));
            json_object_object_add(o, "deleted", json_object_new_boolean(1));
        }
        rc = admin_send_owned(req, 200, o);
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

static int admin_plans__route(http_req_t *req, svc_t *svc, const char *name)
{
    const char *m = req->method;
    redisContext *c = svc->reg ? reg_redis(svc->reg) : NULL;
    const char *prefix = svc->reg ? reg_prefix(svc->reg) : "";
    int get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;

    if (!name) {
        if (!get)
            return http_send_error(req, 405, "invalid_request_error", "method_not_allowed",
                                   NULL, "%s is not allowed on /admin/plans (allowed: GET; "
                                   "PUT /admin/plans/{name} creates one).", m);
    } else {
        if (!get && strcmp(m, "PUT") && strcmp(m, "DELETE"))
            return http_send_error(req, 405, "invalid_request_error", "method_not_allowed",
                                   NULL, "%s is not allowed on %s (allowed: GET, PUT, DELETE).",
                                   m, req->path);
        if (!cfg_name_valid(name))
            return http_send_error(req, 400, "invalid_request_error", "invalid_value", "name",
                                   "name: a plan name is 1 to %d characters of A-Z a-z 0-9 . _ "
                                   "-, starting with a letter or digit", CAP_NAME);
    }
    if (!c)
        return admin_plans__down(req, c, NULL);
    if (!name)
        return admin_plans__list(req, c, prefix);
    if (strcmp(m, "PUT") == 0)
        return admin_plans__put(req, c, prefix, name);
    if (strcmp(m, "DELETE") == 0)
        return admin_plans__delete(req, c, prefix, name);
    return admin_plans__get(req, c, prefix, name);
}

/* The Redis connection the handler borrowed (reg_redis) goes back to the
 * pool when the answer is written. */
int admin_plans_handle(http_req_t *req, svc_t *svc, const char *name)
{
    int rc = admin_plans__route(req, svc, name);

    reg_release(svc->reg);
    return rc;
}
