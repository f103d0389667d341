/* Unit tests for agent/toolname: sanitising and transliteration, the
 * 64-character limit, stable names (hash suffixes on real collisions only,
 * whatever the order), reserved (client) names, and the map back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/toolname.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void sanitises_to_the_openai_alphabet(void **state)
{
    char out[TN_MAX + 1];
    (void)state;
    assert_int_equal(tn_make("my server", "get.weather/now!", out), 0);
    assert_string_equal(out, "my_server__get_weather_now_");
    assert_int_equal(tn_make("a-b", "c_D9", out), 0);
    assert_string_equal(out, "a-b__c_D9");
}

/* Latin letters with accents lose them; what has no ASCII spelling becomes
 * one "_" per run and marks the name lossy (it then gets a hash). */
static void transliterates_latin_and_marks_the_rest(void **state)
{
    char out[TN_MAX + 1];
    (void)state;
    assert_int_equal(tn_make("srv", "caf\xc3\xa9", out), 0);                 /* café */
    assert_string_equal(out, "srv__cafe");
    assert_int_equal(tn_make("srv", "Stra\xc3\x9f" "e_\xc3\x86on", out), 0);  /* Straße_Æon */
    assert_string_equal(out, "srv__Strasse_AEon");
    assert_int_equal(tn_make("srv", "\xc5\x81\xc3\xb3" "d\xc5\xba", out), 0); /* Łódź */
    assert_string_equal(out, "srv__Lodz");
    assert_int_equal(tn_make("srv", "\xe5\xb7\xa5\xe5\x85\xb7", out), TN_LOSSY);  /* 工具 */
    assert_string_equal(out, "srv___");
    assert_int_equal(tn_make("srv", "a\xff" "b", out), TN_LOSSY);            /* a stray byte */
    assert_string_equal(out, "srv__a_b");
}

static void long_names_are_cut_and_flagged(void **state)
{
    char tool[200], out[TN_MAX + 1];
    (void)state;
    memset(tool, 'x', sizeof(tool) - 1);
    tool[sizeof(tool) - 1] = '\0';
    assert_int_equal(tn_make("srv", tool, out), TN_LONG);
    assert_int_equal(strlen(out), 64);
    assert_memory_equal(out, "srv__xxx", 8);
    tool[TN_MAX - 5] = '\0';   /* "srv__" + 59 = exactly 64: not long */
    assert_int_equal(tn_make("srv", tool, out), 0);
}

/* The names of `n` tools of server "s" added in the given order, sealed,
 * into names[i] for tools[i] (whatever the order). */
static void names_of(const char *const *tools, size_t n, const size_t *order,
                     char names[][TN_MAX + 1])
{
    tn_map_t *m = tn_new();
    assert_non_null(m);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(tn_add(m, "s", tools[order[k]], (void *)&order[k]), 0);
    assert_int_equal(tn_seal(m), 0);
    for (size_t k = 0; k < n; k++) {
        const char *name;
        void *ud;
        assert_int_equal(tn_get(m, k, &name, NULL, NULL, &ud), 0);
        snprintf(names[*(const size_t *)ud], TN_MAX + 1, "%s", name);
    }
    tn_free(m);
}

/* The case: the same tools in two orders get the same names; those
 * that collide after sanitising all get a hash of their raw name (never
 * "_2"), the others keep the plain name. */
static void same_tools_in_two_orders_same_names(void **state)
{
    static const char *const tools[] = {"t.x", "t/x", "lookup", "t x", "caf\xc3\xa9"};
    static const size_t fwd[] = {0, 1, 2, 3, 4}, rev[] = {4, 3, 2, 1, 0}, mix[] = {2, 4, 1, 0, 3};
    char a[5][TN_MAX + 1], b[5][TN_MAX + 1], c[5][TN_MAX + 1];
    (void)state;
    names_of(tools, 5, fwd, a);
    names_of(tools, 5, rev, b);
    names_of(tools, 5, mix, c);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(a[i], b[i]);
        assert_string_equal(a[i], c[i]);
    }
    assert_string_equal(a[0], "s__t_x_45c836");
    assert_string_equal(a[1], "s__t_x_1f4578");
    assert_string_equal(a[3], "s__t_x_552456");
    assert_string_equal(a[2], "s__lookup");
    assert_string_equal(a[4], "s__cafe");
}

/* A tool's name does not change because an unrelated one comes or goes. */
static void other_tools_do_not_rename(void **state)
{
    static const char *const one[] = {"lookup"}, *const two[] = {"lookup", "get.data"};
    static const size_t o1[] = {0}, o2[] = {1, 0};
    char a[1][TN_MAX + 1], b[2][TN_MAX + 1];
    (void)state;
    names_of(one, 1, o1, a);
    names_of(two, 2, o2, b);
    assert_string_equal(a[0], "s__lookup");
    assert_string_equal(b[0], "s__lookup");
    assert_string_equal(b[1], "s__get_data");
}

static void maps_back_and_refuses_repeats(void **state)
{
    tn_map_t *m = tn_new();
    const char *sv, *tl, *name;
    (void)state;
    assert_int_equal(tn_add(m, "s", "t.x", NULL), 0);
    assert_int_equal(tn_add(m, "s", "t/x", NULL), 0);
    assert_int_equal(tn_add(m, "s", "t.x", NULL), -EEXIST);   /* listed twice */
    assert_int_equal(tn_add(m, "s", "", NULL), -EINVAL);
    assert_int_equal(tn_ours(m), 2);
    assert_int_equal(tn_get(m, 0, &name, NULL, NULL, NULL), 0);
    assert_null(name);                                          /* not sealed yet */
    assert_int_equal(tn_seal(m), 0);
    assert_int_equal(tn_add(m, "s", "late", NULL), -EBUSY);
    assert_int_equal(tn_lookup(m, "s__t_x_1f4578", &sv, &tl), 0);
    assert_string_equal(sv, "s");
    assert_string_equal(tl, "t/x");
    assert_int_equal(tn_lookup(m, "s__t_x", &sv, &tl), -ENOENT);
    assert_int_equal(tn_get(m, 2, &name, NULL, NULL, NULL), -ENOENT);
    tn_free(m);
}

/* Two long names that differ only past the cut: each cut + hash, 64 long. */
static void long_names_get_cut_and_hash(void **state)
{
    tn_map_t *m = tn_new();
    char tool[100];
    const char *a, *b, *sv, *tl;
    (void)state;
    memset(tool, 'y', sizeof(tool) - 1);
    tool[sizeof(tool) - 1] = '\0';
    assert_int_equal(tn_add(m, "srv", tool, NULL), 0);
    tool[98] = 'z';
    assert_int_equal(tn_add(m, "srv", tool, NULL), 0);
    assert_int_equal(tn_seal(m), 0);
    tn_get(m, 0, &a, NULL, NULL, NULL);
    tn_get(m, 1, &b, NULL, NULL, NULL);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(strlen(b), 64);
    assert_string_equal(a + 57, "_2c4d92");
    assert_string_equal(b + 57, "_3dda90");
    assert_memory_equal(a, "srv__yyyy", 9);
    assert_int_equal(tn_lookup(m, b, &sv, &tl), 0);
    assert_int_equal(tl[98], 'z');
    tn_free(m);
}

/* Untransliterable names always get a hash, so 工具 and 工具箱 differ. */
static void untransliterable_names_get_a_hash(void **state)
{
    tn_map_t *m = tn_new();
    const char *a, *b;
    (void)state;
    assert_int_equal(tn_add(m, "srv", "\xe5\xb7\xa5\xe5\x85\xb7", NULL), 0);
    assert_int_equal(tn_add(m, "srv", "\xe5\xb7\xa5\xe5\x85\xb7\xe7\xae\xb1", NULL), 0);
    assert_int_equal(tn_seal(m), 0);
    tn_get(m, 0, &a, NULL, NULL, NULL);
    tn_get(m, 1, &b, NULL, NULL, NULL);
    assert_string_equal(a, "srv___c1332a");
    assert_string_equal(b, "srv___e0402b");
    tn_free(m);
}

/* A client tool keeps its name; ours gets the hash. */
static void reserved_client_names_are_not_taken_and_not_ours(void **state)
{
    tn_map_t *m = tn_new();
    const char *a, *sv, *tl;
    (void)state;
    assert_int_equal(tn_reserve(m, "calc__add"), 0);
    assert_int_equal(tn_add(m, "calc", "add", NULL), 0);
    assert_int_equal(tn_add(m, "calc", "sub", NULL), 0);
    assert_int_equal(tn_seal(m), 0);
    tn_get(m, 0, &a, NULL, NULL, NULL);
    assert_string_equal(a, "calc__add_237879");
    tn_get(m, 1, &a, NULL, NULL, NULL);
    assert_string_equal(a, "calc__sub");
    assert_true(tn_taken(m, "calc__add"));
    assert_int_equal(tn_lookup(m, "calc__add", &sv, &tl), -ENOENT);
    assert_int_equal(tn_lookup(m, "calc__add_237879", &sv, &tl), 0);
    assert_int_equal(tn_ours(m), 2);
    tn_free(m);
}

/* A client that names its tool after our hashed name pushes ours to a
 * longer hash, never onto its name. */
static void a_taken_hash_grows_longer(void **state)
{
    tn_map_t *m = tn_new();
    const char *a;
    (void)state;
    assert_int_equal(tn_reserve(m, "calc__add"), 0);
    assert_int_equal(tn_reserve(m, "calc__add_237879"), 0);
    assert_int_equal(tn_add(m, "calc", "add", NULL), 0);
    assert_int_equal(tn_seal(m), 0);
    tn_get(m, 0, &a, NULL, NULL, NULL);
    assert_int_equal(strlen(a), strlen("calc__add_") + 8);
    assert_memory_equal(a, "calc__add_237879", 16);
    tn_free(m);
}

/* A client may send tens of thousands of tools: reserving them all and then
 * finding the one duplicate placed last has to complete (it was a linear
 * scan per name, quadratic in the list). */
static void many_client_names_find_the_duplicate_placed_last(void **state)
{
    enum { N = 75000 };
    tn_map_t *m = tn_new();
    const char *a, *sv, *tl;
    char name[32];
    (void)state;
    assert_non_null(m);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "client_tool_%d", i);
        assert_int_equal(tn_reserve(m, name), 0);
    }
    assert_int_equal(tn_reserve(m, "calc__add"), 0);      /* the last one... */
    assert_int_equal(tn_reserve(m, "client_tool_0"), 0);  /* ...and a repeat */
    for (int i = 0; i < N; i += 997) {
        snprintf(name, sizeof(name), "client_tool_%d", i);
        assert_true(tn_taken(m, name));
    }
    assert_false(tn_taken(m, "client_tool_75000"));
    assert_int_equal(tn_add(m, "calc", "add", NULL), 0);
    assert_int_equal(tn_seal(m), 0);
    assert_int_equal(tn_get(m, 0, &a, NULL, NULL, NULL), 0);
    assert_string_equal(a, "calc__add_237879");
    assert_int_equal(tn_lookup(m, "calc__add_237879", &sv, &tl), 0);
    assert_string_equal(tl, "add");
    assert_int_equal(tn_lookup(m, "calc__add", &sv, &tl), -ENOENT);
    assert_int_equal(tn_ours(m), 1);
    tn_free(m);
}

/* Names longer than 64 are stored cut: two that differ only past the cut are
 * one name, and the cut name is taken. */
static void reserved_long_names_compare_as_cut(void **state)
{
    tn_map_t *m = tn_new();
    char a[100], b[100];
    (void)state;
    memset(a, 'x', sizeof(a) - 1);
    a[sizeof(a) - 1] = '\0';
    memcpy(b, a, sizeof(b));
    b[80] = 'y';
    assert_int_equal(tn_reserve(m, a), 0);
    assert_int_equal(tn_reserve(m, b), 0);
    a[TN_MAX] = '\0';
    assert_true(tn_taken(m, a));
    tn_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sanitises_to_the_openai_alphabet),
        cmocka_unit_test(transliterates_latin_and_marks_the_rest),
        cmocka_unit_test(long_names_are_cut_and_flagged),
        cmocka_unit_test(same_tools_in_two_orders_same_names),
        cmocka_unit_test(other_tools_do_not_rename),
        cmocka_unit_test(maps_back_and_refuses_repeats),
        cmocka_unit_test(long_names_get_cut_and_hash),
        cmocka_unit_test(untransliterable_names_get_a_hash),
        cmocka_unit_test(reserved_client_names_are_not_taken_and_not_ours),
        cmocka_unit_test(a_taken_hash_grows_longer),
        cmocka_unit_test(many_client_names_find_the_duplicate_placed_last),
        cmocka_unit_test(reserved_long_names_compare_as_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
