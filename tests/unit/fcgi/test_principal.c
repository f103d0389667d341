/* Unit tests for the auth chain's principal (fcgi/auth/auth.c,
 * auth_keys.c): every accepted caller gets one, with the id of the issue 18
 * contract — static:<8 hex>, key_<16 hex> with its effective policy,
 * apiman:<client header> with its plan's policy — and revoked, expired and
 * unknown managed keys are refused, a dead Redis is -EAGAIN (503). The
 * registry and the keys are on a private redis-server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fcgi/auth/auth.h"
#include "fcgi/auth/principal.h"
#include "shared/cfg.h"
#include "shared/keypol.h"
#include "shared/reg.h"
#include "tests/unit/support/tredis.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define SECRET "sk-aip-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define ID "key_00112233445566aa"

static reg_t *g_reg;

static int setup(void **state)
{
    static const char y[] = "proxy_api_keys: [static-one]\n"
                            "apiman:\n  mode: trusted_header\n  header: X-Gw\n  secret: gw\n"
                            "  plan: basic\n  plan_header: X-Plan\n  client_header: X-Client\n";
    char err[1024] = "", h[KEYPOL_HASH_LEN + 1];
    json_object *doc = NULL;
    int seeded = 0;
    redisReply *r;

    (void)state;
    if (tredis_start("principal") < 0)
        return -1;
    if (reg_open(&g_reg, tredis_url(), "tp:", err, sizeof err) != 0 ||
        cfg_load_yaml(y, strlen(y), "t", &doc, err, sizeof err) != 0 ||
        reg_seed(g_reg, doc, 1, &seeded) != 0 || reg_refresh(g_reg) != 0) {
        print_error("setup: %s\n", err);
        json_object_put(doc);
        return -1;
    }
    json_object_put(doc);
    keypol_hash(SECRET, strlen(SECRET), h);
    r = redisCommand(reg_redis(g_reg), "HSET tp:key:" ID " name n owner o plan gold policy %s "
                     "expires_at 0 revoked_at 0 hash %s", "{\"rpm\":5}", h);
    freeReplyObject(r);
    r = redisCommand(reg_redis(g_reg), "SET tp:key:h:%s " ID, h);
    freeReplyObject(r);
    r = redisCommand(reg_redis(g_reg), "SET tp:plan:gold %s", "{\"rpm\":50,\"assistants\":[\"a*\"]}");
    freeReplyObject(r);
    r = redisCommand(reg_redis(g_reg), "SET tp:plan:basic %s", "{\"assistants\":[\"b\"]}");
    freeReplyObject(r);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    reg_close(g_reg);
    tredis_stop();
    return 0;
}

/* auth_verify on a request carrying the FastCGI params `params` (NULL-ended);
 * *p gets the principal (arena: valid until arena_free). */
static int verify(arena_t *a, char **params, const auth_principal_t **p, char *why)
{
    http_req_t req;
    int rc;

    memset(&req, 0, sizeof req);
    req.arena = a;
    req.method = "GET";
    req.path = "/v1/models";
    req.query = "";
    req.body = "";
    req.params = params;
    rc = auth_verify(&req, g_reg, why, 256);
    *p = req.info.auth;
    if (rc == 0 && *p)
        assert_string_equal(req.info.principal, (*p)->id);
    return rc;
}

static void static_keys_are_static_and_8_hex(void **state)
{
    char *params[] = { "HTTP_AUTHORIZATION=Bearer static-one", NULL }, why[256];
    const auth_principal_t *p;
    char h[KEYPOL_HASH_LEN + 1], want[32];
    arena_t *a = arena_new(4096);
    (void)state;
    assert_int_equal(verify(a, params, &p, why), 0);
    assert_non_null(p);
    keypol_hash("static-one", 10, h);
    snprintf(want, sizeof want, "static:%.8s", h);
    assert_string_equal(p->id, want);
    assert_int_equal(p->kind, AUTH_KIND_STATIC);
    assert_null(p->policy);
    arena_free(a);
}

static void managed_keys_carry_the_merged_policy(void **state)
{
    char *params[] = { "HTTP_X_API_KEY=" SECRET, NULL }, why[256];
    const auth_principal_t *p;
    arena_t *a = arena_new(4096);
    (void)state;
    assert_int_equal(verify(a, params, &p, why), 0);
    assert_non_null(p);
    assert_int_equal(p->kind, AUTH_KIND_MANAGED);
    assert_string_equal(p->id, ID);
    assert_string_equal(p->name, "n");
    assert_string_equal(p->owner, "o");
    assert_string_equal(p->plan, "gold");
    assert_string_equal(json_object_to_json_string_ext(p->policy, JSON_C_TO_STRING_PLAIN),
                        "{\"rpm\":5,\"assistants\":[\"a*\"]}");
    assert_true(keypol_assistant_ok(p->policy, "alpha"));
    assert_false(keypol_assistant_ok(p->policy, "beta"));
    arena_free(a);
}

static void unknown_revoked_and_expired_are_refused(void **state)
{
    char *unknown[] = { "HTTP_AUTHORIZATION=Bearer sk-aip-nope", NULL }, why[256];
    char *good[] = { "HTTP_AUTHORIZATION=Bearer " SECRET, NULL };
    const auth_principal_t *p;
    arena_t *a = arena_new(4096);
    redisReply *r;
    (void)state;
    assert_int_equal(verify(a, unknown, &p, why), -EACCES);
    assert_null(p);
    assert_non_null(strstr(why, "Invalid API key"));
    r = redisCommand(reg_redis(g_reg), "HSET tp:key:" ID " expires_at 1000");
    freeReplyObject(r);
    assert_int_equal(verify(a, good, &p, why), -EACCES);
    assert_non_null(strstr(why, "expired"));
    r = redisCommand(reg_redis(g_reg), "HSET tp:key:" ID " expires_at 0 revoked_at 1000");
    freeReplyObject(r);
    assert_int_equal(verify(a, good, &p, why), -EACCES);
    assert_non_null(strstr(why, "revoked"));
    r = redisCommand(reg_redis(g_reg), "HSET tp:key:" ID " revoked_at 0");
    freeReplyObject(r);
    assert_int_equal(verify(a, good, &p, why), 0);
    arena_free(a);
}

static void apiman_callers_get_their_id_and_plan(void **state)
{
    char *plain[] = { "HTTP_X_GW=gw", NULL }, why[256];
    char *named[] = { "HTTP_X_GW=gw", "HTTP_X_CLIENT=acme corp/éu!", "HTTP_X_PLAN=gold", NULL };
    char *badplan[] = { "HTTP_X_GW=gw", "HTTP_X_PLAN=../gold", NULL };
    const auth_principal_t *p;
    arena_t *a = arena_new(4096);
    (void)state;
    assert_int_equal(verify(a, plain, &p, why), 0);
    assert_string_equal(p->id, "apiman");
    assert_int_equal(p->kind, AUTH_KIND_APIMAN);
    assert_string_equal(p->plan, "basic");
    assert_true(keypol_assistant_ok(p->policy, "b"));
    assert_false(keypol_assistant_ok(p->policy, "a"));
    assert_int_equal(verify(a, named, &p, why), 0);
    assert_string_equal(p->id, "apiman:acmecorpu");
    assert_string_equal(p->plan, "gold");
    assert_int_equal(verify(a, badplan, &p, why), 0);
    assert_string_equal(p->plan, "basic");
    arena_free(a);
}

/* Last: stops Redis. */
static void a_dead_redis_is_eagain_for_managed_keys_only(void **state)
{
    char *good[] = { "HTTP_AUTHORIZATION=Bearer " SECRET, NULL }, why[256];
    char *stat[] = { "HTTP_AUTHORIZATION=Bearer static-one", NULL };
    const auth_principal_t *p;
    arena_t *a = arena_new(4096);
    (void)state;
    tredis_stop();
    assert_int_equal(verify(a, good, &p, why), -EAGAIN);
    assert_null(p);
    assert_int_equal(verify(a, stat, &p, why), 0);
    arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(static_keys_are_static_and_8_hex),
        cmocka_unit_test(managed_keys_carry_the_merged_policy),
        cmocka_unit_test(unknown_revoked_and_expired_are_refused),
        cmocka_unit_test(apiman_callers_get_their_id_and_plan),
        cmocka_unit_test(a_dead_redis_is_eagain_for_managed_keys_only),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
