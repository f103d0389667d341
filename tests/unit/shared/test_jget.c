/* Unit tests for shared/jget: every getter treats NULL, a non-object, a
 * missing key, JSON null and a member of another type as absent, and the
 * length variants keep a string's NULs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shared/jget.h"

#include <json-c/json.h>
#include <string.h>

static json_object *parse(const char *s)
{
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    return o;
}

static void jget_reads_each_type(void **state)
{
    json_object *o = parse("{\"s\":\"hi\",\"i\":-7,\"b\":true,\"f\":false,\"o\":{\"k\":1},"
                           "\"a\":[1,2],\"d\":1.5}");
    size_t n = 99;
    (void)state;

    assert_string_equal(jget_str(o, "s"), "hi");
    assert_string_equal(jget_strn(o, "s", &n), "hi");
    assert_int_equal(n, 2);
    assert_string_equal(jget_cstr(o, "s"), "hi");
    assert_int_equal(jget_int64(o, "i", 0), -7);
    assert_int_equal(jget_bool(o, "b", -1), 1);
    assert_int_equal(jget_bool(o, "f", -1), 0);
    assert_int_equal(jget_int64(jget_obj(o, "o"), "k", 0), 1);
    assert_int_equal(json_object_array_length(jget_arr(o, "a")), 2);
    assert_ptr_equal(jget(o, "d"), jget_typed(o, "d", json_type_double));
    assert_non_null(jget(o, "d"));
    json_object_put(o);
}

static void jget_treats_wrong_type_as_absent(void **state)
{
    json_object *o = parse("{\"s\":\"hi\",\"i\":7,\"b\":true,\"n\":null,\"d\":2.0,\"is\":\"7\"}");
    size_t n = 99;
    (void)state;

    /* a member of another type */
    assert_null(jget_str(o, "i"));
    assert_null(jget_obj(o, "s"));
    assert_null(jget_arr(o, "s"));
    assert_int_equal(jget_int64(o, "s", 42), 42);
    assert_int_equal(jget_int64(o, "d", 42), 42);   /* a double is not an integer */
    assert_int_equal(jget_int64(o, "is", 42), 42);  /* nor is a numeric string */
    assert_int_equal(jget_int64(o, "b", 42), 42);
    assert_int_equal(jget_bool(o, "i", -1), -1);
    /* JSON null and a missing key */
    assert_null(jget(o, "n"));
    assert_null(jget_str(o, "n"));
    assert_int_equal(jget_bool(o, "n", -1), -1);
    assert_null(jget(o, "missing"));
    assert_null(jget_strn(o, "missing", &n));
    assert_int_equal(n, 0);
    json_object_put(o);
}

static void jget_takes_null_and_non_objects(void **state)
{
    json_object *arr = parse("[\"s\"]"), *str = parse("\"s\"");
    (void)state;

    assert_null(jget(NULL, "k"));
    assert_null(jget_str(NULL, "k"));
    assert_null(jget_strn(NULL, "k", NULL));
    assert_null(jget_cstr(NULL, "k"));
    assert_int_equal(jget_int64(NULL, "k", 5), 5);
    assert_int_equal(jget_bool(NULL, "k", 1), 1);
    assert_null(jget_obj(NULL, "k"));
    assert_null(jget_arr(arr, "0"));
    assert_null(jget(str, "s"));
    assert_null(jget(jget_obj(NULL, "a"), "b"));   /* chains stay NULL */
    json_object_put(arr);
    json_object_put(str);
}

static void jget_strn_keeps_nuls_and_cstr_refuses_them(void **state)
{
    json_object *o = parse("{\"s\":\"plain\\u0000evil\",\"e\":\"\"}");
    size_t n = 0;
    const char *s;
    (void)state;

    s = jget_strn(o, "s", &n);
    assert_non_null(s);
    assert_int_equal(n, 10);
    assert_memory_equal(s, "plain\0evil", 10);
    assert_string_equal(jget_str(o, "s"), "plain");   /* the C string is cut, as documented */
    assert_null(jget_cstr(o, "s"));
    assert_string_equal(jget_cstr(o, "e"), "");
    assert_string_equal(jget_strn(o, "e", &n), "");
    assert_int_equal(n, 0);
    json_object_put(o);
}

static void jget_int64_clamps_beyond_int64(void **state)
{
    json_object *o = parse("{\"big\":99999999999999999999,\"neg\":-99999999999999999999,"
                           "\"max\":9223372036854775807}");
    (void)state;

    assert_true(jget_int64(o, "max", 0) == INT64_MAX);
    /* json-c parses an out-of-range integer as the bound, or as a double;
     * either way jget_int64 never wraps */
    int64_t big = jget_int64(o, "big", 0), neg = jget_int64(o, "neg", 0);
    assert_true(big == INT64_MAX || big == 0);
    assert_true(neg == INT64_MIN || neg == 0);
    json_object_put(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jget_reads_each_type),
        cmocka_unit_test(jget_treats_wrong_type_as_absent),
        cmocka_unit_test(jget_takes_null_and_non_objects),
        cmocka_unit_test(jget_strn_keeps_nuls_and_cstr_refuses_them),
        cmocka_unit_test(jget_int64_clamps_beyond_int64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
