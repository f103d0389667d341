/* respstore — stored responses in Redis (respstore.h). */
#include "fcgi/responses/respstore.h"
#include "fcgi/responses/respout.h"

#include "fcgi/auth/auth_cred.h"
#include "shared/caps.h"
#include "shared/cfg.h"
#include "shared/jget.h"
#include "shared/jtext.h"
#include "shared/log.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A positive number from the environment, else def. */
static long long rs__env(const char *name, long long def)
{
    const char *v = getenv(name);
    char *end;
    long long n;

    if (!v || !*v)
        return def;
    errno = 0;
    n = strtoll(v, &end, 10);
    return errno || *end || n <= 0 ? def : n;
}

void respstore_owner(http_req_t *req, char *out)
{
    auth_cred_t cands[AUTH_CRED_MAX];
    size_t n = auth_cred_extract(http_header(req, "Authorization"),
                                 http_header(req, "X-API-Key"),
                                 http_query_param(req, "apikey"), cands);
    char h[CFG_KEY_HASH_LEN + 1];

    out[0] = '\0';
    if (!n)
        return;
    cfg_key_hash(cands[0].p, cands[0].len, h);
    snprintf(out, RESPSTORE_OWNER_MAX, "%s", h);
}

static int rs__key(reg_t *reg, const char *id, char *key, size_t len)
{
    int n = snprintf(key, len, "%sresp:%s", reg_prefix(reg), id);

    return n < 0 || (size_t)n >= len ? -EINVAL : 0;
}

int respstore_put(reg_t *reg, const char *owner, json_object *response,
                  json_object *input_items, json_object *messages)
{
    json_object *rec = json_object_new_object();
    const char *id = jget_str(response, "id"), *js;
    char key[256];
    size_t len;
    redisReply *rep = NULL;
    redisContext *rc = reg ? reg_redis(reg) : NULL;
    int ret = -ENOMEM;

    if (!rec || !id)
        goto out;
    if (json_object_object_add(rec, "owner", json_object_new_string(owner)) != 0 ||
        json_object_object_add(rec, "response", json_object_get(response)) != 0 ||
        json_object_object_add(rec, "input_items", json_object_get(input_items)) != 0 ||
        json_object_object_add(rec, "messages", json_object_get(messages)) != 0)
        goto out;
    js = json_object_to_json_string_length(rec, JSON_C_TO_STRING_PLAIN, &len);
    if (!js)
        goto out;
    if ((long long)len > rs__env("AIPROXY_RESPONSES_MAX_BYTES", CAP_RESP_STORE_DEFAULT)) {
        log_warn("responses: %s not stored: %zu bytes, over AIPROXY_RESPONSES_MAX_BYTES", id,
                 len);
        ret = -E2BIG;
        goto out;
    }
    ret = -EIO;
    if (!rc || rs__key(reg, id, key, sizeof(key)) < 0)
        goto out;
    rep = redisCommand(rc, "SET %s %b EX %lld", key, js, len,
                       rs__env("AIPROXY_RESPONSES_TTL", RESPSTORE_TTL_DEFAULT));
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        log_warn("responses: %s not stored: %s", id, rep ? rep->str : "Redis unreachable");
        goto out;
    }
    ret = 0;
out:
    reg_release(reg);           /* the borrowed connection goes back at once */
    if (rep)
        freeReplyObject(rep);
    json_object_put(rec);
    return ret;
}

static int rs__not_found(aip_err_t *err, const char *id, const char *param)
{
    aip_err_set(err, 404, "invalid_request_error", NULL,
                "Response with id '%s' not found (unknown, expired, deleted, stored with "
                "store: false, or created with another key).", id);
    aip_err_param(err, param);
    return -ENOENT;
}

int respstore_get(reg_t *reg, const char *owner, const char *id, const char *param,
                  json_object **out, aip_err_t *err)
{
    redisContext *rc = reg ? reg_redis(reg) : NULL;
    redisReply *rep = NULL;
    json_object *rec = NULL;
    const char *o;
    char key[256];
    int ret;

    *out = NULL;
    if (strncmp(id, "resp_", 5) != 0 || rs__key(reg, id, key, sizeof(key)) < 0 || !rc) {
        reg_release(reg);
        return !rc ? aip_err_set(err, 503, "api_error", "redis_unavailable",
                                 "The response store (Redis) is unreachable: retry later.")
                   : rs__not_found(err, id, param);
    }
    rep = redisCommand(rc, "GET %s", key);
    reg_release(reg);
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        ret = aip_err_set(err, 503, "api_error", "redis_unavailable",
                          "The response store (Redis) failed: retry later.");
        goto out;
    }
    if (rep->type != REDIS_REPLY_STRING ||
        !(rec = jtext_parse_peer(rep->str, rep->len)) ||
        !(o = jget_str(rec, "owner")) || strcmp(o, owner) != 0) {
        ret = rs__not_found(err, id, param);
        goto out;
    }
    *out = rec;
    rec = NULL;
    ret = 0;
out:
    json_object_put(rec);
    if (rep)
        freeReplyObject(rep);
    return ret;
}

json_object *respstore_input_items(json_object *input)
{
    json_object *items = json_object_new_array(), *it = NULL, *c, *p;
    char id[RESPOUT_ID_MAX];
    size_t i, n;

    if (!items)
        return NULL;
    if (json_object_is_type(input, json_type_string)) {
        respout_new_id(id, "msg_");
        it = json_object_new_object();
        c = json_object_new_array();
        p = json_object_new_object();
        if (!it || !c || !p || json_object_array_add(c, p) != 0) {
            json_object_put(p);
            json_object_put(c);
            goto fail;
        }
        if (json_object_object_add(it, "content", c) != 0 ||
            json_object_object_add(it, "id", json_object_new_string(id)) != 0 ||
            json_object_object_add(it, "type", json_object_new_string("message")) != 0 ||
            json_object_object_add(it, "role", json_object_new_string("user")) != 0 ||
            json_object_object_add(it, "status", json_object_new_string("completed")) != 0 ||
            json_object_object_add(p, "type", json_object_new_string("input_text")) != 0 ||
            json_object_object_add(p, "text", json_object_get(input)) != 0 ||
            json_object_array_add(items, it) != 0)
            goto fail;
        return items;
    }
    n = json_object_is_type(input, json_type_array) ? json_object_array_length(input) : 0;
    for (i = 0; i < n; i++) {
        json_object *src = json_object_array_get_idx(input, i);

        /* a copy, so that adding an id leaves the request alone */
        if (json_object_deep_copy(src, &it, NULL) != 0)
            goto fail;
        if (!jget(it, "id")) {
            respout_new_id(id, !strcmp(jget_str(it, "type") ? jget_str(it, "type") : "message",
                                       "message") ? "msg_" : "item_");
            if (json_object_object_add(it, "id", json_object_new_string(id)) != 0)
                goto fail;
        }
        if (!jget(it, "type") && json_object_object_add(it, "type",
                                                        json_object_new_string("message")) != 0)
            goto fail;
        if (json_object_array_add(items, it) != 0)
            goto fail;
        it = NULL;
    }
    return items;
fail:
    json_object_put(it);
    json_object_put(items);
    return NULL;
}

/* GET .../input_items: a list page, newest first unless ?order=asc. */
static int rs__items(http_req_t *req, json_object *rec)
{
    json_object *items = jget_arr(rec, "input_items"), *page = json_object_new_object(),
                *data = json_object_new_array();
    const char *order = http_query_param(req, "order");
    int asc = order && !strcmp(order, "asc"), rc;
    size_t i, n = items ? json_object_array_length(items) : 0;

    if (!page || !data || json_object_object_add(page, "data", data) != 0) {
        json_object_put(data);
        goto oom;
    }
    for (i = 0; i < n; i++)
        if (json_object_array_add(data, json_object_get(json_object_array_get_idx(
                                            items, asc ? i : n - 1 - i))) != 0)
            goto oom;
    if (json_object_object_add(page, "object", json_object_new_string("list")) != 0 ||
        json_object_object_add(page, "has_more", json_object_new_boolean(0)) != 0 ||
        json_object_object_add(page, "first_id", n ? json_object_get(jget(
            json_object_array_get_idx(data, 0), "id")) : NULL) != 0 ||
        json_object_object_add(page, "last_id", n ? json_object_get(jget(
            json_object_array_get_idx(data, n - 1), "id")) : NULL) != 0)
        goto oom;
    rc = http_send_json(req, 200, page, NULL);
    json_object_put(page);
    return rc;
oom:
    json_object_put(page);
    return http_send_error(req, 500, NULL, NULL, NULL, "out of memory");
}

int respstore_handle(http_req_t *req, const route_t *r, svc_t *svc)
{
    char id[CAP_RESP_ID], owner[RESPSTORE_OWNER_MAX], key[256];
    const char *slash = memchr(r->arg, '/', r->arg_len);
    size_t idlen = slash ? (size_t)(slash - r->arg) : r->arg_len;
    json_object *rec = NULL, *o;
    aip_err_t err;
    redisReply *rep;
    int rc;

    aip_err_clear(&err);
    if (idlen == 0 || idlen >= sizeof(id) || memchr(r->arg, '\0', idlen) ||
        (slash && (strcmp(slash, "/input_items") != 0 || strcmp(req->method, "DELETE") == 0)))
        return http_send_error(req, 404, NULL, NULL, NULL,
                               "no route %s %s: GET /v1/responses/{id}, DELETE "
                               "/v1/responses/{id}, GET /v1/responses/{id}/input_items",
                               req->method, req->path);
    memcpy(id, r->arg, idlen);
    id[idlen] = '\0';
    respstore_owner(req, owner);
    if (respstore_get(svc->reg, owner, id, NULL, &rec, &err) != 0)
        return http_send_err(req, &err);
    if (slash) {
        rc = rs__items(req, rec);
    } else if (strcmp(req->method, "DELETE") == 0) {
        rep = rs__key(svc->reg, id, key, sizeof(key)) == 0
                  ? redisCommand(reg_redis(svc->reg), "DEL %s", key) : NULL;
        reg_release(svc->reg);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            if (rep)
                freeReplyObject(rep);
            aip_err_set(&err, 503, "api_error", "redis_unavailable",
                        "The response store (Redis) failed: retry later.");
            rc = http_send_err(req, &err);
            goto out;
        }
        freeReplyObject(rep);
        o = json_object_new_object();
        if (!o || json_object_object_add(o, "id", json_object_new_string(id)) != 0 ||
            json_object_object_add(o, "object", json_object_new_string("response")) != 0 ||
            json_object_object_add(o, "deleted", json_object_new_boolean(1)) != 0) {
            json_object_put(o);
            rc = http_send_error(req, 500, NULL, NULL, NULL, "out of memory");
            goto out;
        }
        rc = http_send_json(req, 200, o, NULL);
        json_object_put(o);
    } else {
        rc = http_send_json(req, 200, jget(rec, "response"), NULL);
    }
out:
    json_object_put(rec);
    return rc;
}
