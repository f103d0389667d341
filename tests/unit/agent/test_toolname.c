/* Unit tests for agent/toolname: sanitising, the 64-character limit,
 * de-duplication with suffixes, reserved (client) names, and the map back. */
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
    tn_make("my server", "get.weather/now!", out);
    assert_string_equal(out, "my_server__get_weather_now_");
    tn_make("a-b", "c_D9", out);
    assert_string_equal(out, "a-b__c_D9");
    tn_make("srv", "caf\xc3\xa9", out);   /* UTF-8 bytes each become "_" */
    assert_string_equal(out, "srv__caf__");
}

static void truncates_to_64(void **state)
{
    char tool[200], out[TN_MAX + 1];
    (void)state;
    memset(tool, 'x', sizeof(tool) - 1);
    tool[sizeof(tool) - 1] = '\0';
    tn_make("srv", tool, out);
    assert_int_equal(strlen(out), 64);
    assert_memory_equal(out, "srv__xxx", 8);
}

static void dedupes_with_suffixes_and_maps_back(void **state)
{
    tn_map_t *m = tn_new();
    const char *a, *b, *c, *sv, *tl;
    (void)state;
    assert_non_null(m);
    assert_int_equal(tn_add(m, "s", "t.x", &a), 0);
    assert_int_equal(tn_add(m, "s", "t/x", &b), 0);
    assert_int_equal(tn_add(m, "s", "t x", &c), 0);
    assert_string_equal(a, "s__t_x");
    assert_string_equal(b, "s__t_x_2");
    assert_string_equal(c, "s__t_x_3");
    assert_int_equal(tn_lookup(m, "s__t_x_2", &sv, &tl), 0);
    assert_string_equal(sv, "s");
    assert_string_equal(tl, "t/x");
    assert_int_equal(tn_lookup(m, "s__t_x", &sv, &tl), 0);
    assert_string_equal(tl, "t.x");
    assert_int_equal(tn_lookup(m, "nope", &sv, &tl), -ENOENT);
    assert_int_equal(tn_ours(m), 3);
    tn_free(m);
}

static void suffix_fits_in_64_when_truncated(void **state)
{
    tn_map_t *m = tn_new();
    char tool[100];
    const char *a, *b, *sv, *tl;
    (void)state;
    memset(tool, 'y', sizeof(tool) - 1);
    tool[sizeof(tool) - 1] = '\0';
    assert_int_equal(tn_add(m, "srv", tool, &a), 0);
    tool[98] = 'z';   /* differs only past the cut: same truncated name */
    assert_int_equal(tn_add(m, "srv", tool, &b), 0);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(strlen(b), 64);
    assert_string_not_equal(a, b);
    assert_string_equal(b + 62, "_2");
    assert_int_equal(tn_lookup(m, b, &sv, &tl), 0);
    assert_int_equal(tl[98], 'z');
    tn_free(m);
}

static void reserved_client_names_are_not_taken_and_not_ours(void **state)
{
    tn_map_t *m = tn_new();
    const char *a, *sv, *tl;
    (void)state;
    assert_int_equal(tn_reserve(m, "calc__add"), 0);
    assert_int_equal(tn_add(m, "calc", "add", &a), 0);
    assert_string_equal(a, "calc__add_2");
    assert_true(tn_taken(m, "calc__add"));
    assert_int_equal(tn_lookup(m, "calc__add", &sv, &tl), -ENOENT);
    assert_int_equal(tn_lookup(m, "calc__add_2", &sv, &tl), 0);
    assert_int_equal(tn_ours(m), 1);
    assert_int_equal(tn_add(m, "calc", "", &a), -EINVAL);
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
    assert_int_equal(tn_add(m, "calc", "add", &a), 0);
    assert_string_equal(a, "calc__add_2");
    assert_int_equal(tn_lookup(m, "calc__add_2", &sv, &tl), 0);
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
        cmocka_unit_test(truncates_to_64),
        cmocka_unit_test(dedupes_with_suffixes_and_maps_back),
        cmocka_unit_test(suffix_fits_in_64_when_truncated),
        cmocka_unit_test(reserved_client_names_are_not_taken_and_not_ours),
        cmocka_unit_test(many_client_names_find_the_duplicate_placed_last),
        cmocka_unit_test(reserved_long_names_compare_as_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
