/* Anthropic Messages request -> canonical OpenAI chat body: every translation
 * rule of docs/messages.md, and every 400 naming its field. */
#include "fcgi/anthropic/msgreq.h"
#include "fcgi/anthropic/messages.h"
#include "fcgi/routes.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define HEAD "\"model\":\"helper\",\"max_tokens\":100"
#define MSGS "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

static void expect_bad(const char *body, const char *param, const char *msg_part)
{
    msgreq_t mr;
    aip_err_t err;

    if (msgreq_parse(body, strlen(body), &mr, &err) != -EINVAL)
        fail_msg("accepted: %s", body);
    if (strcmp(err.param, param) != 0)
        fail_msg("%s: param '%s', want '%s' (%s)", body, err.param, param, err.msg);
    if (msg_part && !strstr(err.msg, msg_part))
        fail_msg("%s: message '%s' lacks '%s'", body, err.msg, msg_part);
    assert_true(err.msg[0] != '\0');
    /* the error value the surface renders as is: a 400 of the client's */
    assert_int_equal(err.status, 400);
    assert_string_equal(err.type, "invalid_request_error");
    assert_null(mr.body);
}

/* Translates `in` and compares one field of the result with `want` (JSON). */
static void expect_field(const char *in, const char *field, const char *want)
{
    msgreq_t mr;
    aip_err_t err;
    json_object *w = json_tokener_parse(want), *got = NULL;

    if (!w)
        fail_msg("bad expectation %s", want);
    if (msgreq_parse(in, strlen(in), &mr, &err) != 0)
        fail_msg("refused %s: %s: %s", in, err.param, err.msg);
    json_object_object_get_ex(mr.body, field, &got);
    if (!json_object_equal(got, w))
        fail_msg("%s: %s is %s, want %s", in, field,
                 got ? json_object_to_json_string(got) : "(absent)", want);
    json_object_put(w);
    msgreq_clear(&mr);
}

static void expect_absent(const char *in, const char *field)
{
    msgreq_t mr;
    aip_err_t err;

    if (msgreq_parse(in, strlen(in), &mr, &err) != 0)
        fail_msg("refused %s: %s", in, err.msg);
    if (json_object_object_get_ex(mr.body, field, NULL))
        fail_msg("%s: %s should be absent", in, field);
    msgreq_clear(&mr);
}

static void test_required_fields(void **state)
{
    (void)state;
    expect_bad("", "", "not valid JSON");
    expect_bad("[1]", "", "JSON object");
    expect_bad("{" HEAD "," MSGS "} x", "", "after the value");
    expect_bad("{\"max_tokens\":1," MSGS "}", "model", "required");
    expect_bad("{\"model\":\"\",\"max_tokens\":1," MSGS "}", "model", NULL);
    expect_bad("{\"model\":\"helper\"," MSGS "}", "max_tokens", "required");
    expect_bad("{\"model\":\"helper\",\"max_tokens\":0," MSGS "}", "max_tokens", "at least 1");
    expect_bad("{\"model\":\"helper\",\"max_tokens\":\"9\"," MSGS "}", "max_tokens", NULL);
    expect_bad("{" HEAD "}", "messages", "required");
    expect_bad("{" HEAD ",\"messages\":[]}", "messages", "non-empty");
    expect_bad("{" HEAD ",\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}",
               "messages[0].role", "top-level 'system'");
    expect_bad("{" HEAD ",\"messages\":[{\"role\":\"user\"}]}", "messages[0].content", NULL);
    expect_bad("{" HEAD ",\"messages\":[{\"role\":\"user\",\"content\":[]}]}",
               "messages[0].content", NULL);
}

static void test_bad_blocks(void **state)
{
    (void)state;
    expect_bad("{" HEAD ",\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"x\"}]}]}",
               "messages[0].content[0]", "'type'");
    expect_bad("{" HEAD ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}",
               "messages[0].content[0]", "text");
    expect_bad("{" HEAD ",\"messages\":[{\"role\":\"user\",\"content\":"
               "[{\"type\":\"document\",\"source\":{}}]}]}",
               "messages[0].content[0]", "document");
    expect_bad("{" HEAD ",\"messages\":[{\"role\":\"user\",\"content\":"
               "[{\"type\":\"image\",\"source\":{\"type\":\"file\",\"file_id\":\"f\"}}]}]}",
               "messages[0].content[0].source", "base64 or url");
    expect_bad("{" HEAD ",\"messages\":[{\"role\":\"user\",\"content\":"
               "[{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"data\":\"AA\"}}]}]}",
               "messages[0].content[0].source", "media_type");
    expect_bad("{" HEAD ",\"messages\":[{\"role\":\"user\",\"content\":"
               "[{\"type\":\"tool_result\",\"content\":\"x\"}]}]}",
               "messages[0].content[0]", "tool_use_id");
    expect_bad("{" HEAD ",\"messages\":[{\"role\":\"user\",\"content\":"
               "[{\"type\":\"tool_result\",\"tool_use_id\":\"t\",\"content\":"
               "[{\"type\":\"image\",\"source\":{}}]}]}]}",
               "messages[0].content[0].content[0]", "text block");
    expect_bad("{" HEAD ",\"messages\":[{\"role\":\"user\",\"content\":"
               "[{\"type\":\"tool_result\",\"tool_use_id\":\"t\",\"is_error\":1}]}]}",
               "messages[0].content[0]", "is_error");
    expect_bad("{" HEAD ",\"messages\":[{\"role\":\"assistant\",\"content\":"
               "[{\"type\":\"tool_use\",\"id\":\"t\",\"input\":{}}]}]}",
               "messages[0].content[0]", "'name'");
    expect_bad("{" HEAD ",\"messages\":[{\"role\":\"assistant\",\"content\":"
               "[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":[1]}]}]}",
               "messages[0].content[0]", "object");
    expect_bad("{" HEAD ",\"messages\":[{\"role\":\"assistant\",\"content\":"
               "[{\"type\":\"image\",\"source\":{}}]}]}",
               "messages[0].content[0]", "assistant turn");
}

static void test_bad_top_level(void **state)
{
    (void)state;
    expect_bad("{" HEAD "," MSGS ",\"system\":5}", "system", NULL);
    expect_bad("{" HEAD "," MSGS ",\"system\":[{\"type\":\"image\"}]}", "system[0]", NULL);
    expect_bad("{" HEAD "," MSGS ",\"tools\":{}}", "tools", NULL);
    expect_bad("{" HEAD "," MSGS ",\"tools\":[{\"name\":\"a b\",\"input_schema\":{}}]}",
               "tools[0].name", NULL);
    expect_bad("{" HEAD "," MSGS ",\"tools\":[{\"name\":\"f\"}]}", "tools[0].input_schema",
               NULL);
    expect_bad("{" HEAD "," MSGS ",\"tools\":[{\"name\":\"f\",\"input_schema\":{},"
               "\"description\":3}]}", "tools[0].description", NULL);
    expect_bad("{" HEAD "," MSGS ",\"tools\":[{\"type\":\"web_search_20250305\","
               "\"name\":\"web_search\"}]}", "tools[0]", "server tool");
    expect_bad("{" HEAD "," MSGS ",\"tool_choice\":\"auto\"}", "tool_choice", NULL);
    expect_bad("{" HEAD "," MSGS ",\"tool_choice\":{\"type\":\"maybe\"}}", "tool_choice.type",
               NULL);
    expect_bad("{" HEAD "," MSGS ",\"tool_choice\":{\"type\":\"tool\"}}", "tool_choice.name",
               NULL);
    expect_bad("{" HEAD "," MSGS ",\"tool_choice\":{\"type\":\"auto\","
               "\"disable_parallel_tool_use\":\"yes\"}}",
               "tool_choice.disable_parallel_tool_use", NULL);
    expect_bad("{" HEAD "," MSGS ",\"stop_sequences\":\"x\"}", "stop_sequences", NULL);
    expect_bad("{" HEAD "," MSGS ",\"stop_sequences\":[1]}", "stop_sequences", NULL);
    expect_bad("{" HEAD "," MSGS ",\"temperature\":1.5}", "temperature", "0 to 1");
    expect_bad("{" HEAD "," MSGS ",\"temperature\":\"hot\"}", "temperature", NULL);
    expect_bad("{" HEAD "," MSGS ",\"top_p\":-0.1}", "top_p", NULL);
    expect_bad("{" HEAD "," MSGS ",\"top_k\":-1}", "top_k", NULL);
    expect_bad("{" HEAD "," MSGS ",\"top_k\":1.5}", "top_k", NULL);
    expect_bad("{" HEAD "," MSGS ",\"metadata\":[]}", "metadata", NULL);
    expect_bad("{" HEAD "," MSGS ",\"metadata\":{\"user_id\":7}}", "metadata.user_id", NULL);
    expect_bad("{" HEAD "," MSGS ",\"stream\":\"yes\"}", "stream", NULL);
}

static void test_plain_and_system(void **state)
{
    msgreq_t mr;
    aip_err_t err;
    const char *in = "{" HEAD "," MSGS ",\"stream\":true}";

    (void)state;
    assert_int_equal(msgreq_parse(in, strlen(in), &mr, &err), 0);
    assert_string_equal(mr.model, "helper");
    assert_int_equal(mr.stream, 1);
    msgreq_clear(&mr);
    expect_field(in, "max_tokens", "100");
    expect_field(in, "messages", "[{\"role\":\"user\",\"content\":\"hi\"}]");
    expect_field("{" HEAD ",\"system\":\"be brief\"," MSGS "}", "messages",
                 "[{\"role\":\"system\",\"content\":\"be brief\"},"
                 "{\"role\":\"user\",\"content\":\"hi\"}]");
    expect_field("{" HEAD ",\"system\":[{\"type\":\"text\",\"text\":\"a\"},"
                 "{\"type\":\"text\",\"text\":\"b\",\"cache_control\":{\"type\":\"ephemeral\"}}],"
                 MSGS "}", "messages",
                 "[{\"role\":\"system\",\"content\":\"a\\nb\"},"
                 "{\"role\":\"user\",\"content\":\"hi\"}]");
    /* An empty system says nothing: the assistant's own prompt stays. */
    expect_field("{" HEAD ",\"system\":\"\"," MSGS "}", "messages",
                 "[{\"role\":\"user\",\"content\":\"hi\"}]");
    expect_absent("{" HEAD "," MSGS ",\"stream\":false}", "stream");
}

static void test_content_blocks(void **state)
{
    (void)state;
    /* One text block -> a string; text + images -> parts. */
    expect_field("{" HEAD ",\"messages\":[{\"role\":\"user\",\"content\":"
                 "[{\"type\":\"text\",\"text\":\"hey\"}]}]}", "messages",
                 "[{\"role\":\"user\",\"content\":\"hey\"}]");
    expect_field("{" HEAD ",\"messages\":[{\"role\":\"user\",\"content\":["
                 "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\","
                 "\"data\":\"iVBORw0=\"}},"
                 "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://x/y.jpg\"}},"
                 "{\"type\":\"text\",\"text\":\"what is it?\"}]}]}", "messages",
                 "[{\"role\":\"user\",\"content\":["
                 "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0=\"}},"
                 "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.jpg\"}},"
                 "{\"type\":\"text\",\"text\":\"what is it?\"}]}]");
    /* Assistant: text blocks joined, thinking dropped. */
    expect_field("{" HEAD ",\"messages\":[" "{\"role\":\"user\",\"content\":\"q\"},"
                 "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\","
                 "\"signature\":\"s\"},{\"type\":\"text\",\"text\":\"a\"},"
                 "{\"type\":\"text\",\"text\":\"b\"}]}]}", "messages",
                 "[{\"role\":\"user\",\"content\":\"q\"},"
                 "{\"role\":\"assistant\",\"content\":\"ab\"}]");
}

static void test_tool_round_trip(void **state)
{
    (void)state;
    /* tool_use -> tool_calls (content null when no text); tool_result ->
     * tool messages first, then the user's remaining text. */
    expect_field("{" HEAD ",\"messages\":["
                 "{\"role\":\"user\",\"content\":\"weather?\"},"
                 "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_1\","
                 "\"name\":\"get_weather\",\"input\":{\"city\":\"Oslo\"}},"
                 "{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"now\"}]},"
                 "{\"role\":\"user\",\"content\":["
                 "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":\"rain\"},"
                 "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_2\",\"is_error\":true,"
                 "\"content\":[{\"type\":\"text\",\"text\":\"no\"},{\"type\":\"text\",\"text\":\"clock\"}]},"
                 "{\"type\":\"text\",\"text\":\"thanks\"}]}]}", "messages",
                 "[{\"role\":\"user\",\"content\":\"weather?\"},"
                 "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
                 "{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                 "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}},"
                 "{\"id\":\"toolu_2\",\"type\":\"function\",\"function\":{\"name\":\"now\","
                 "\"arguments\":\"{}\"}}]},"
                 "{\"role\":\"tool\",\"content\":\"rain\",\"tool_call_id\":\"toolu_1\"},"
                 "{\"role\":\"tool\",\"content\":\"Error: no\\nclock\",\"tool_call_id\":\"toolu_2\"},"
                 "{\"role\":\"user\",\"content\":\"thanks\"}]");
    /* A tool_result with no content gives an empty tool message. */
    expect_field("{" HEAD ",\"messages\":[{\"role\":\"user\",\"content\":["
                 "{\"type\":\"tool_result\",\"tool_use_id\":\"t\"}]}]}", "messages",
                 "[{\"role\":\"tool\",\"content\":\"\",\"tool_call_id\":\"t\"}]");
}

static void test_tools_and_choice(void **state)
{
    const char *tools = "\"tools\":[{\"name\":\"get_weather\",\"description\":\"d\","
                        "\"input_schema\":{\"type\":\"object\",\"properties\":{}}},"
                        "{\"type\":\"custom\",\"name\":\"now\",\"input_schema\":{\"type\":\"object\"}}]";
    char in[1024];

    (void)state;
    snprintf(in, sizeof(in), "{" HEAD "," MSGS ",%s}", tools);
    expect_field(in, "tools",
                 "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                 "\"description\":\"d\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}},"
                 "{\"type\":\"function\",\"function\":{\"name\":\"now\","
                 "\"parameters\":{\"type\":\"object\"}}}]");
    expect_absent(in, "tool_choice");
    expect_absent("{" HEAD "," MSGS ",\"tools\":[]}", "tools");
    snprintf(in, sizeof(in), "{" HEAD "," MSGS ",%s,\"tool_choice\":{\"type\":\"auto\"}}", tools);
    expect_field(in, "tool_choice", "\"auto\"");
    snprintf(in, sizeof(in), "{" HEAD "," MSGS ",%s,\"tool_choice\":{\"type\":\"any\"}}", tools);
    expect_field(in, "tool_choice", "\"required\"");
    snprintf(in, sizeof(in), "{" HEAD "," MSGS ",%s,\"tool_choice\":{\"type\":\"none\"}}", tools);
    expect_field(in, "tool_choice", "\"none\"");
    snprintf(in, sizeof(in), "{" HEAD "," MSGS ",%s,\"tool_choice\":{\"type\":\"tool\","
             "\"name\":\"now\",\"disable_parallel_tool_use\":true}}", tools);
    expect_field(in, "tool_choice", "{\"type\":\"function\",\"function\":{\"name\":\"now\"}}");
    expect_field(in, "parallel_tool_calls", "false");
}

static void test_sampling(void **state)
{
    const char *in = "{" HEAD "," MSGS ",\"stop_sequences\":[\"END\",\"\\n\\n\"],"
                     "\"temperature\":0.5,\"top_p\":1,\"top_k\":40,"
                     "\"metadata\":{\"user_id\":\"u-42\"},\"thinking\":{\"type\":\"disabled\"},"
                     "\"service_tier\":\"auto\"}";

    (void)state;
    expect_field(in, "stop", "[\"END\",\"\\n\\n\"]");
    expect_field(in, "temperature", "0.5");
    expect_field(in, "top_p", "1");
    expect_field(in, "user", "\"u-42\"");
    expect_absent(in, "top_k");
    expect_absent(in, "thinking");
    expect_absent(in, "service_tier");
    expect_absent(in, "metadata");
    expect_absent(in, "system");
    expect_absent("{" HEAD "," MSGS ",\"stop_sequences\":[]}", "stop");
    expect_absent("{" HEAD "," MSGS ",\"metadata\":{\"user_id\":null}}", "user");
}

static void test_translate_does_not_touch_input(void **state)
{
    const char *in = "{" HEAD ",\"system\":\"s\",\"messages\":[{\"role\":\"user\",\"content\":"
                     "[{\"type\":\"tool_result\",\"tool_use_id\":\"t\",\"content\":\"r\"}]}]}";
    json_object *o = json_tokener_parse(in), *copy = json_tokener_parse(in), *out = NULL;
    aip_err_t err;

    (void)state;
    assert_int_equal(msgreq_translate(o, &out, &err), 0);
    assert_non_null(out);
    assert_true(json_object_equal(o, copy));
    json_object_put(out);
    json_object_put(o);
    json_object_put(copy);
}

static void test_deep_nesting_refused(void **state)
{
    char body[400];
    size_t i, n = 0;

    (void)state;
    n += (size_t)snprintf(body, sizeof(body), "{" HEAD ",\"x\":");
    for (i = 0; i < 100; i++)
        body[n++] = '[';
    body[n] = '\0';
    expect_bad(body, "", "not valid JSON");
}

/* Every prefix of a body that uses every feature, and every single-byte
 * corruption of it, is either translated or refused with a field: never a
 * crash or a leak (ASan/LSan watch). */
static void test_truncations_never_crash(void **state)
{
    static const char full[] =
        "{" HEAD ",\"system\":[{\"type\":\"text\",\"text\":\"s\"}],\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"base64\","
        "\"media_type\":\"image/png\",\"data\":\"AA==\"}},{\"type\":\"text\",\"text\":\"q\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"t\"},"
        "{\"type\":\"tool_use\",\"id\":\"i\",\"name\":\"f\",\"input\":{\"a\":[1]}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"i\","
        "\"is_error\":true,\"content\":[{\"type\":\"text\",\"text\":\"r\"}]}]}],"
        "\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\"}}],"
        "\"tool_choice\":{\"type\":\"tool\",\"name\":\"f\",\"disable_parallel_tool_use\":true},"
        "\"stop_sequences\":[\"x\"],\"temperature\":0.1,\"metadata\":{\"user_id\":\"u\"},"
        "\"stream\":true}";
    static const char subst[] = { '"', '{', '[', ']', '}', '1', 'x', ',', ':', ' ' };
    char buf[sizeof(full)];
    size_t len = sizeof(full) - 1, i, k;
    msgreq_t mr;
    aip_err_t err;
    int ok = 0;

    (void)state;
    for (i = 0; i <= len; i++) {
        int rc = msgreq_parse(full, i, &mr, &err);
        if (rc == 0) {
            ok++;
            msgreq_clear(&mr);
        } else {
            assert_int_equal(rc, -EINVAL);
            assert_true(err.msg[0] != '\0');
        }
    }
    assert_int_equal(ok, 1);      /* only the whole body is valid */
    for (i = 0; i < len; i++) {
        for (k = 0; k < sizeof(subst); k++) {
            memcpy(buf, full, sizeof(full));
            buf[i] = subst[k];
            if (msgreq_parse(buf, len, &mr, &err) == 0)
                msgreq_clear(&mr);
            else
                assert_true(err.msg[0] != '\0');
        }
    }
}

static void test_route(void **state)
{
    route_t r;

    (void)state;
    assert_int_equal(route_find(routes_table, "POST", "/v1/messages", &r), 0);
    assert_string_equal(r.def->path, "/v1/messages");
    assert_int_equal(r.def->needs_auth, 1);
    assert_ptr_equal(r.def->surface, &messages_surface);
    assert_true(r.def->flags & ROUTE_LONG);
    assert_int_equal(route_find(routes_table, "GET", "/v1/messages", &r), -EINVAL);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "POST");
}

/* A NUL in a name or an id is refused (it would cut them as C strings); in
 * text it is kept, through the system prompt, text blocks and tool results. */
static void test_nul_refused_in_ids_kept_in_text(void **state)
{
    (void)state;
    expect_bad("{\"model\":\"plain\\u0000evil\",\"max_tokens\":1," MSGS "}", "model", "NUL");
    expect_bad("{" HEAD ",\"messages\":[{\"role\":\"user\\u0000x\",\"content\":\"hi\"}]}",
               "messages[0].role", NULL);
    expect_bad("{" HEAD ",\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
               "\"id\":\"t\\u00001\",\"name\":\"f\",\"input\":{}}]}]}",
               "messages[0].content[0].id", "NUL");
    expect_bad("{" HEAD ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
               "\"tool_use_id\":\"t\\u00001\",\"content\":\"r\"}]}]}",
               "messages[0].content[0].tool_use_id", "NUL");
    expect_bad("{" HEAD "," MSGS ",\"tools\":[{\"name\":\"f\\u0000g\",\"input_schema\":{}}]}",
               "tools[0].name", NULL);
    expect_field("{" HEAD ",\"system\":\"be\\u0000brief\"," MSGS "}", "messages",
                 "[{\"role\":\"system\",\"content\":\"be\\u0000brief\"},"
                 "{\"role\":\"user\",\"content\":\"hi\"}]");
    expect_field("{" HEAD ",\"system\":[{\"type\":\"text\",\"text\":\"a\\u0000\"},"
                 "{\"type\":\"text\",\"text\":\"b\"}]," MSGS "}", "messages",
                 "[{\"role\":\"system\",\"content\":\"a\\u0000\\nb\"},"
                 "{\"role\":\"user\",\"content\":\"hi\"}]");
    expect_field("{" HEAD ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
                 "\"tool_use_id\":\"t1\",\"is_error\":true,\"content\":[{\"type\":\"text\","
                 "\"text\":\"x\\u0000y\"},{\"type\":\"text\",\"text\":\"z\"}]}]}]}", "messages",
                 "[{\"role\":\"tool\",\"content\":\"Error: x\\u0000y\\nz\",\"tool_call_id\":\"t1\"}]");
    expect_field("{" HEAD ",\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"text\","
                 "\"text\":\"p\\u0000\"},{\"type\":\"text\",\"text\":\"q\"}]}]}", "messages",
                 "[{\"role\":\"assistant\",\"content\":\"p\\u0000q\"}]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_required_fields),
        cmocka_unit_test(test_bad_blocks),
        cmocka_unit_test(test_bad_top_level),
        cmocka_unit_test(test_plain_and_system),
        cmocka_unit_test(test_content_blocks),
        cmocka_unit_test(test_tool_round_trip),
        cmocka_unit_test(test_tools_and_choice),
        cmocka_unit_test(test_sampling),
        cmocka_unit_test(test_translate_does_not_touch_input),
        cmocka_unit_test(test_deep_nesting_refused),
        cmocka_unit_test(test_truncations_never_crash),
        cmocka_unit_test(test_route),
        cmocka_unit_test(test_nul_refused_in_ids_kept_in_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
