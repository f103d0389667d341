/* Unit tests for agent/oa_answer: the common chat.completion answer read
 * without json-c gives what a json-c reading gives (the oracle below reads
 * content, finish_reason and usage as be_openai's json-c parse does), and
 * whatever it is not sure of is left to json-c with the turn untouched;
 * be_openai's parse then still answers as before. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/oa_answer.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

/* The json-c reading of an answer that has no tool calls. */
static void test__oracle(const char *body, be_turn_t *t)
{
    json_object *root = json_tokener_parse(body), *choices = NULL, *c, *m = NULL, *v = NULL,
                *u = NULL;

    assert_non_null(root);
    assert_true(json_object_object_get_ex(root, "choices", &choices));
    c = json_object_array_get_idx(choices, 0);
    assert_true(json_object_object_get_ex(c, "message", &m));
    if (json_object_object_get_ex(m, "content", &v) && json_object_is_type(v, json_type_string))
        assert_int_equal(buf_puts(&t->content, json_object_get_string(v)), 0);
    if (json_object_object_get_ex(c, "finish_reason", &v) && json_object_is_type(v, json_type_string))
        snprintf(t->finish_reason, sizeof(t->finish_reason), "%s", json_object_get_string(v));
    if (json_object_object_get_ex(root, "usage", &u) && json_object_is_type(u, json_type_object)) {
        t->prompt_tokens = json_object_object_get_ex(u, "prompt_tokens", &v) ? json_object_get_int64(v) : 0;
        t->completion_tokens =
            json_object_object_get_ex(u, "completion_tokens", &v) ? json_object_get_int64(v) : 0;
        t->has_usage = 1;
    }
    json_object_put(root);
}

/* Read here, and the same as json-c reads it. */
static void test__same(const char *body)
{
    be_turn_t a, b;

    be_turn_init(&a, 1 << 16);
    be_turn_init(&b, 1 << 16);
    if (oa_answer_read(body, strlen(body), &a) != 0)
        fail_msg("not read: %s", body);
    test__oracle(body, &b);
    assert_int_equal(a.content.len, b.content.len);
    assert_memory_equal(buf_str(&a.content), buf_str(&b.content), a.content.len + 1);
    assert_string_equal(a.finish_reason, b.finish_reason);
    assert_int_equal(a.has_usage, b.has_usage);
    assert_int_equal(a.prompt_tokens, b.prompt_tokens);
    assert_int_equal(a.completion_tokens, b.completion_tokens);
    assert_null(a.tool_calls);
    be_turn_clear(&a);
    be_turn_clear(&b);
}

/* Left to json-c, the turn as it was; be_openai's parse answers as json-c
 * says (`ok`: it reads the answer, else it refuses it). */
static void test__left(const char *body, size_t len, int ok)
{
    be_turn_t t;
    char err[256];

    be_turn_init(&t, 1 << 16);
    assert_int_equal(buf_puts(&t.content, "kept"), 0);
    if (oa_answer_read(body, len, &t) != 1)
        fail_msg("read, not left: %s", body);
    assert_string_equal(buf_str(&t.content), "kept");
    assert_string_equal(t.finish_reason, "");
    assert_int_equal(t.has_usage, 0);
    be_turn_clear(&t);
    be_turn_init(&t, 1 << 16);
    if ((be_openai.parse(body, len, &t, err, sizeof(err)) == 0) != ok)
        fail_msg("json-c %s: %s", ok ? "refused" : "read", body);
    be_turn_clear(&t);
}

#define LEFT(s, ok) test__left((s), strlen(s), (ok))

static void common_answers_read_as_json_c_reads_them(void **state)
{
    (void)state;
    test__same("{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1700000000,"
               "\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
               "\"assistant\",\"content\":\"Hello from the benchmark upstream.\"},"
               "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":9,"
               "\"completion_tokens\":7,\"total_tokens\":16}}");
    test__same(" \n{ \"choices\" : [ { \"message\" : { \"content\" : \"a\\\"b\\\\c\\/d\\n\\te\\r\\b\\f\" ,"
               "\"role\":\"assistant\"} , \"finish_reason\" : \"length\" } ] } \r\n\t");
    test__same("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,\"refusal\":"
               "\"no\"},\"finish_reason\":null,\"logprobs\":null}],\"usage\":null}");
    test__same("{\"choices\":[{\"message\":{\"content\":\"\"}}],\"usage\":{}}");
    test__same("{\"choices\":[{\"message\":{\"content\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"},"
               "\"finish_reason\":\"stop\"},{\"message\":{\"content\":\"second\"}},[1,{\"x\":[]}]],"
               "\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":123456789012345678,"
               "\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio\":[1.5,-2e-3,3E+4,0.0]}},"
               "\"system_fingerprint\":null,\"x\":[true,false,null,-0,{\"y\":{\"z\":[[[]]]}}],"
               "\"created\":1e999,\"big\":123456789012345678901234567890}");
    test__same("{\"choices\":[{\"finish_reason\":\"a finish reason far longer than thirty-one bytes\","
               "\"message\":{\"content\":\"x\"}}]}");
    test__same("{\"usage\":{\"completion_tokens\":5},\"choices\":[{\"message\":{\"content\":\"late\"}}]}");
}

static void anything_in_doubt_is_left_to_json_c(void **state)
{
    static const char nul_inside[] = "{\"choices\":[{\"message\":{\"content\":\"a\0b\"}}]}";

    (void)state;
    /* tool calls, \u escapes, duplicates, an escaped key: json-c reads them */
    LEFT("{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":"
         "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
         "\"finish_reason\":\"tool_calls\"}]}", 1);
    LEFT("{\"choices\":[{\"message\":{\"content\":\"caf\\u00e9\"}}]}", 1);
    LEFT("{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"choices\":[{\"message\":{\"content\":\"b\"}}]}", 1);
    LEFT("{\"choices\":[{\"message\":{\"content\":\"a\",\"content\":\"b\"}}]}", 1);
    LEFT("{\"choices\":[{\"message\":{\"content\":\"a\"},\"message\":{\"content\":\"b\"}}]}", 1);
    LEFT("{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"usage\":{\"prompt_tokens\":1,\"prompt_tokens\":2}}", 1);
    LEFT("{\"cho\\u0069ces\":[{\"message\":{\"content\":\"a\"}}]}", 1);
    /* counts json-c would convert or clamp */
    LEFT("{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"usage\":{\"prompt_tokens\":1.5}}", 1);
    LEFT("{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"usage\":{\"prompt_tokens\":\"7\"}}", 1);
    LEFT("{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"usage\":{\"prompt_tokens\":-1}}", 1);
    LEFT("{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"usage\":{\"prompt_tokens\":1234567890123456789}}", 1);
    LEFT("{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"usage\":\"none\"}", 1);
    /* not strictly JSON, or not a usable answer: json-c decides */
    LEFT("{\"choices\":[{\"message\":{\"content\":\"a\"}}]} trailing", 1);
    LEFT("{\"choices\":[{\"message\":{\"content\":\"a\"}}],}", 1);
    LEFT("{\"choices\":[{\"message\":{\"content\":\"a\"}}]", 0);
    LEFT("{\"choices\":[]}", 0);
    LEFT("{\"choices\":[\"x\"]}", 0);
    LEFT("{\"choices\":[{\"finish_reason\":\"stop\"}]}", 0);
    LEFT("{\"choices\":[{\"message\":{\"content\":42}}]}", 1);
    LEFT("{\"error\":{\"message\":\"overloaded\"}}", 0);
    LEFT("[1,2]", 0);
    LEFT("", 0);
    LEFT("{\"choices\":[{\"message\":{\"content\":\"tab\there\"}}]}", 1);
    LEFT("{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"n\":01}", 1);
    LEFT("{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"n\":[1,]}", 1);
    LEFT("{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"n\":nul}", 0);
    LEFT("{\"choices\":[{\"message\":{\"content\":\"a\\x\"}}]}", 0);
    LEFT("{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"deep\":"
         "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", 0);
    test__left(nul_inside, sizeof(nul_inside) - 1, 0);
}

/* Content past the turn's cap: left to json-c, which names the cap; the
 * turn's content is as it was, also after an escape decoded halfway. */
static void a_cap_reached_leaves_the_turn_as_it_was(void **state)
{
    const char *body = "{\"choices\":[{\"message\":{\"content\":\"0123456789\\n0123456789\"}}]}";
    be_turn_t t;
    char err[256];

    (void)state;
    be_turn_init(&t, 15);
    assert_int_equal(buf_puts(&t.content, "ab"), 0);
    assert_int_equal(oa_answer_read(body, strlen(body), &t), 1);
    assert_int_equal(t.content.len, 2);
    assert_string_equal(buf_str(&t.content), "ab");
    be_turn_clear(&t);
    be_turn_init(&t, 15);
    assert_int_not_equal(be_openai.parse(body, strlen(body), &t, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "too large"));
    be_turn_clear(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(common_answers_read_as_json_c_reads_them),
        cmocka_unit_test(anything_in_doubt_is_left_to_json_c),
        cmocka_unit_test(a_cap_reached_leaves_the_turn_as_it_was),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
