/* Unit tests for the managed-key cache (fcgi/auth/auth_kcache.c): an entry
 * serves only its own hash at its own generation, never with generation 0,
 * never past the key's expires_at; what comes back is a copy in the
 * request's arena (policy included), and a collision replaces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fcgi/auth/auth_kcache.h"
#include "shared/keypol.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static void hash_of(const char *secret, char out[KEYPOL_HASH_LEN + 1])
{
    keypol_hash(secret, strlen(secret), out);
}

static void test_hit_miss_gen_expiry(void **state)
{
    char h1[KEYPOL_HASH_LEN + 1], h2[KEYPOL_HASH_LEN + 1];
    auth_principal_t in = { .kind = AUTH_KIND_MANAGED, .id = "key_0011223344556677",
                            .name = "alice", .owner = "team-a", .plan = NULL };
    auth_principal_t *out = NULL;
    arena_t *a = arena_new(4096);
    (void)state;

    assert_non_null(a);
    in.policy = json_tokener_parse("{\"rpm\":5,\"assistants\":[\"helper\"]}");
    hash_of("sk-aip-one", h1);
    hash_of("sk-aip-two", h2);
    auth_kcache_put(7, h1, &in, 0);
    assert_int_equal(auth_kcache_get(7, h1, a, &out), 0);
    assert_non_null(out);
    assert_int_equal(out->kind, AUTH_KIND_MANAGED);
    assert_string_equal(out->id, "key_0011223344556677");
    assert_string_equal(out->name, "alice");
    assert_string_equal(out->owner, "team-a");
    assert_null(out->plan);
    assert_null(out->pregate);
    assert_int_equal(json_object_get_int(json_object_object_get(out->policy, "rpm")), 5);
    assert_ptr_not_equal(out->policy, in.policy);   /* a copy: the request owns it */

    assert_int_equal(auth_kcache_get(8, h1, a, &out), -ENOENT);   /* the generation moved */
    assert_null(out);
    assert_int_equal(auth_kcache_get(0, h1, a, &out), -ENOENT);   /* no trust */
    assert_int_equal(auth_kcache_get(7, h2, a, &out), -ENOENT);   /* another key */
    auth_kcache_put(0, h2, &in, 0);                                /* not kept */
    assert_int_equal(auth_kcache_get(0, h2, a, &out), -ENOENT);

    /* expired: refused from memory (the lookup then says why) */
    in.plan = "gold";
    auth_kcache_put(9, h2, &in, (long long)time(NULL) - 1);
    assert_int_equal(auth_kcache_get(9, h2, a, &out), -ENOENT);
    auth_kcache_put(9, h2, &in, (long long)time(NULL) + 3600);
    assert_int_equal(auth_kcache_get(9, h2, a, &out), 0);
    assert_string_equal(out->plan, "gold");

    /* no policy stays none */
    json_object_put(in.policy);
    in.policy = NULL;
    auth_kcache_put(10, h1, &in, 0);
    assert_int_equal(auth_kcache_get(10, h1, a, &out), 0);
    assert_null(out->policy);
    arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_miss_gen_expiry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
