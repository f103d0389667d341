/* Unit tests for shared/jtext and shared/utf8: every JSON text from outside
 * keeps its meaning (integers past 64 bits keep their text, "\u0000" is kept,
 * what only json-c accepts is refused), and what we echo is valid UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shared/jtext.h"
#include "shared/utf8.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses `in` and checks it prints back as `want` (compact). */
static void expect_text(const char *in, const char *want)
{
    json_object *o = NULL;
    char err[200] = "";
    char *back;

    if (jtext_parse(in, strlen(in), 32, &o, err, sizeof err) != 0)
        fail_msg("refused %s: %s", in, err);
    back = jtext_take(o);
    if (strcmp(back, want) != 0)
        fail_msg("%s printed back as %s, want %s", in, back, want);
    free(back);
}

static void expect_refused(const char *in, const char *msg_part)
{
    json_object *o = NULL;
    char err[200] = "";

    if (jtext_parse(in, strlen(in), 32, &o, err, sizeof err) != -EINVAL)
        fail_msg("accepted %s", in);
    assert_null(o);
    if (!strstr(err, msg_part))
        fail_msg("%s: message '%s' lacks '%s'", in, err, msg_part);
}

static void big_integers_keep_their_text(void **state)
{
    (void)state;
    /* json-c alone: 18446744073709551615 and -9223372036854775808 */
    expect_text("{\"a\":100000000000000000000000}", "{\"a\":100000000000000000000000}");
    expect_text("[-100000000000000000000000]", "[-100000000000000000000000]");
    expect_text("[18446744073709551616,-9223372036854775809]",
                "[18446744073709551616,-9223372036854775809]");
    /* the limits themselves are exact already */
    expect_text("[18446744073709551615,-9223372036854775808,0,-0.5]",
                "[18446744073709551615,-9223372036854775808,0,-0.5]");
    /* deep inside, and next to literals that look like the mark */
    expect_text("{\"x\":[{\"y\":{\"z\":123456789012345678901234567890}}],"
                "\"m\":100000000000000000000000.0,\"n\":100000000000000000000000.00,"
                "\"o\":100000000000000000000001}",
                "{\"x\":[{\"y\":{\"z\":123456789012345678901234567890}}],"
                "\"m\":100000000000000000000000.0,\"n\":100000000000000000000000.00,"
                "\"o\":100000000000000000000001}");
    /* digits in strings are text, not numbers */
    expect_text("{\"s\":\"100000000000000000000000\",\"k\\\"1\":1e400}",
                "{\"s\":\"100000000000000000000000\",\"k\\\"1\":1e400}");
}

static void big_integers_are_not_json_ints(void **state)
{
    json_object *o = NULL, *v = NULL;
    char err[200];
    const char *in = "{\"a\":100000000000000000000000}";
    (void)state;
    assert_int_equal(jtext_parse(in, strlen(in), 32, &o, err, sizeof err), 0);
    assert_true(json_object_object_get_ex(o, "a", &v));
    /* a field that must be an integer refuses it instead of clamping */
    assert_false(json_object_is_type(v, json_type_int));
    json_object_put(o);
}

static void nul_in_strings_is_kept(void **state)
{
    json_object *o = NULL;
    char err[200];
    const char *in = "\"plain\\u0000evil\"";
    (void)state;
    assert_int_equal(jtext_parse(in, strlen(in), 32, &o, err, sizeof err), 0);
    assert_int_equal(json_object_get_string_len(o), 10);
    assert_memory_equal(json_object_get_string(o), "plain\0evil", 10);
    json_object_put(o);
    expect_text("[\"a\\u0000b\"]", "[\"a\\u0000b\"]");
}

static void what_only_json_c_takes_is_refused(void **state)
{
    (void)state;
    expect_refused("[01E]", "not valid JSON");     /* json-c: 1 (found by fuzz_wire) */
    expect_refused("[1.]", "not a JSON number");
    expect_refused("[1E]", "not valid JSON");
    expect_refused("[NaN]", "unexpected word");
    expect_refused("[-Infinity]", "not valid JSON");
    expect_refused("[TRUE]", "not valid JSON");
    expect_refused("[1,]", "not valid JSON");
    expect_refused("{'a':1}", "not valid JSON");
    expect_refused("[1 /* c */]", "not valid JSON");
    expect_refused("{\"a\":1} x", "after the value");
    expect_refused("[1", "end of input");
    expect_refused("", "end of input");
}

/* The text is not a C string: a number at its very end is read within it
 * (found by fuzz_wire: a zero fraction was counted with strspn). */
static void a_number_at_the_end_stays_inside_the_text(void **state)
{
    static const char *const ins[] = { "1.00", "-0.0", "1e5", "100000000000000000000000" };
    (void)state;
    for (size_t i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
        size_t n = strlen(ins[i]);
        char *t = malloc(n), err[200];
        json_object *o = NULL;
        memcpy(t, ins[i], n);   /* no terminator */
        assert_int_equal(jtext_parse(t, n, 32, &o, err, sizeof err), 0);
        json_object_put(o);
        free(t);
    }
}

static void request_body_errors_say_so(void **state)
{
    json_object *o = NULL;
    char err[200];
    (void)state;
    assert_int_equal(jtext_parse_strict("[1.]", 4, 32, &o, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "the request body is not valid JSON"));
    assert_int_equal(jtext_parse_strict("[[1]]", 5, 1, &o, err, sizeof err), -EINVAL);
}

static void expect_clean(const char *in, size_t n, const char *want)
{
    char out[64];
    size_t len = utf8_clean(in, n, out, sizeof(out));
    assert_int_equal(len, strlen(want));
    assert_string_equal(out, want);
    assert_true(utf8_valid(out, len));
}

#define R "\xEF\xBF\xBD"   /* U+FFFD */

static void utf8_ill_formed_parts_become_fffd(void **state)
{
    char small[8];
    (void)state;
    assert_true(utf8_valid("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 10));
    assert_true(utf8_valid("", 0));
    expect_clean("plain", 5, "plain");
    expect_clean("m\xFFx", 3, "m" R "x");                  /* a byte never in UTF-8 */
    expect_clean("\xC0\x80", 2, R R);                      /* overlong NUL */
    expect_clean("\xED\xA0\x80", 3, R R R);                /* a surrogate */
    expect_clean("\xF4\x90\x80\x80", 4, R R R R);         /* past U+10FFFF */
    expect_clean("\xE2\x82", 2, R);                        /* cut short at the end */
    expect_clean("\xE2\x82x", 3, R "x");                   /* cut short before ASCII */
    expect_clean("\x80\xBF", 2, R R);                      /* lone continuations */
    assert_false(utf8_valid("\xE2\x82", 2));
    /* full: stops at a character boundary, terminated */
    assert_int_equal(utf8_clean("ab\xE2\x82\xAC\xE2\x82\xAC", 8, small, sizeof(small)), 5);
    assert_string_equal(small, "ab\xE2\x82\xAC");
    assert_int_equal(utf8_clean("abc", 3, small, 1), 0);
    assert_string_equal(small, "");
}

static void echo_strings_are_valid_utf8(void **state)
{
    json_object *o;
    (void)state;
    o = jtext_new_echo("model \xFF\xFE", 8);
    assert_string_equal(json_object_get_string(o), "model " R R);
    json_object_put(o);
    o = jtext_new_echo("caf\xC3\xA9\0x", 7);       /* valid text is kept, NUL included */
    assert_int_equal(json_object_get_string_len(o), 7);
    json_object_put(o);
    o = jtext_new_echo(NULL, 0);
    assert_string_equal(json_object_get_string(o), "");
    json_object_put(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(big_integers_keep_their_text),
        cmocka_unit_test(big_integers_are_not_json_ints),
        cmocka_unit_test(nul_in_strings_is_kept),
        cmocka_unit_test(what_only_json_c_takes_is_refused),
        cmocka_unit_test(a_number_at_the_end_stays_inside_the_text),
        cmocka_unit_test(request_body_errors_say_so),
        cmocka_unit_test(utf8_ill_formed_parts_become_fffd),
        cmocka_unit_test(echo_strings_are_valid_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
