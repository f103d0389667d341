/* The Responses surface's pure parts: the request translation (respreq: each
 * rule of docs/responses.md, each 400 naming its param) and the response
 * object builder (respout: mcp_call items from the agent's tool events, the
 * message and function_call items, usage, incomplete). */
#include "fcgi/responses/respout.h"
#include "fcgi/responses/respreq.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* Parses and translates `body` (history: JSON text or NULL); returns the chat body (owned by r). */
static json_object *translate(respreq_t *r, const char *body, const char *history)
{
    aip_err_t err;
    json_object *h = history ? json_tokener_parse(history) : NULL;
    int rc = respreq_parse(body, strlen(body), r, &err);

    if (rc == 0)
        rc = respreq_translate(r, h, &err);
    json_object_put(h);
    if (rc != 0)
        fail_msg("refused (%s): %s", err.param, err.msg);
    return r->body;
}

static void expect_bad(const char *body, const char *param)
{
    respreq_t r;
    aip_err_t err;
    int rc = respreq_parse(body, strlen(body), &r, &err);

    if (rc == 0) {
        rc = respreq_translate(&r, NULL, &err);
        respreq_clear(&r);
    }
    if (rc != -EINVAL)
        fail_msg("accepted: %s", body);
    if (strcmp(err.param, param) != 0)
        fail_msg("%s: param '%s', want '%s' (%s)", body, err.param, param, err.msg);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.type, "invalid_request_error");
}

static const char *js(json_object *o)
{
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

static void string_input_and_instructions(void **state)
{
    respreq_t r;
    json_object *b;

    (void)state;
    b = translate(&r, "{\"model\":\"a\",\"input\":\"hi\",\"instructions\":\"Be brief.\","
                      "\"max_output_tokens\":9,\"temperature\":0.5,\"top_p\":1,"
                      "\"reasoning\":{\"effort\":\"low\"},\"metadata\":{\"k\":\"v\"}}", NULL);
    assert_string_equal(js(json_object_object_get(b, "messages")),
                        "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                        "{\"role\":\"user\",\"content\":\"hi\"}]");
    assert_int_equal(json_object_get_int(json_object_object_get(b, "max_tokens")), 9);
    assert_string_equal(json_object_get_string(json_object_object_get(b, "reasoning_effort")), "low");
    assert_null(json_object_object_get(b, "metadata"));
    assert_int_equal(r.has_instructions, 1);
    assert_int_equal(r.store, 1);
    assert_int_equal(r.stream, 0);
    respreq_clear(&r);
}

static void items_history_tools_and_format(void **state)
{
    respreq_t r;
    json_object *b;

    (void)state;
    b = translate(&r,
        "{\"model\":\"a\",\"store\":false,\"stream\":true,\"input\":["
        "{\"role\":\"developer\",\"content\":\"JSON only\"},"
        "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"w?\"},"
        "{\"type\":\"input_image\",\"image_url\":\"data:image/png;base64,AA\"}]},"
        "{\"type\":\"mcp_call\",\"id\":\"mcp_1\",\"server_label\":\"d\",\"name\":\"x\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"f\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call\",\"call_id\":\"c2\",\"name\":\"g\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":\"one\"}],"
        "\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}],"
        "\"tool_choice\":{\"type\":\"function\",\"name\":\"f\"},"
        "\"text\":{\"format\":{\"type\":\"json_object\"}}}",
        "[{\"role\":\"user\",\"content\":\"before\"},{\"role\":\"assistant\",\"content\":\"ok\"}]");
    assert_string_equal(js(json_object_object_get(b, "messages")),
        "[{\"role\":\"user\",\"content\":\"before\"},{\"role\":\"assistant\",\"content\":\"ok\"},"
        "{\"role\":\"system\",\"content\":\"JSON only\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"w?\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AA\"}}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"function\":{\"name\":\"f\",\"arguments\":\"{}\"},\"id\":\"c1\",\"type\":\"function\"},"
        "{\"function\":{\"name\":\"g\",\"arguments\":\"{}\"},\"id\":\"c2\",\"type\":\"function\"}]},"
        "{\"role\":\"tool\",\"content\":\"one\",\"tool_call_id\":\"c1\"}]");
    assert_string_equal(js(json_object_object_get(b, "tools")),
        "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}]");
    assert_string_equal(js(json_object_object_get(b, "tool_choice")),
                        "{\"type\":\"function\",\"function\":{\"name\":\"f\"}}");
    assert_string_equal(js(json_object_object_get(b, "response_format")), "{\"type\":\"json_object\"}");
    assert_int_equal(r.store, 0);
    assert_int_equal(r.stream, 1);
    assert_int_equal(r.has_instructions, 0);
    respreq_clear(&r);
}

static void refusals_name_their_field(void **state)
{
    (void)state;
    expect_bad("[1]", "");
    expect_bad("{\"input\":\"x\"}", "model");
    expect_bad("{\"model\":\"a\"}", "input");
    expect_bad("{\"model\":\"a\",\"input\":7}", "input");
    expect_bad("{\"model\":\"a\",\"input\":\"x\",\"stream\":\"yes\"}", "stream");
    expect_bad("{\"model\":\"a\",\"input\":\"x\",\"store\":1}", "store");
    expect_bad("{\"model\":\"a\",\"input\":\"x\",\"previous_response_id\":\"\"}", "previous_response_id");
    expect_bad("{\"model\":\"a\",\"input\":\"x\",\"instructions\":[]}", "instructions");
    expect_bad("{\"model\":\"a\",\"input\":\"x\",\"tools\":[{\"type\":\"mcp\",\"server_label\":\"s\","
               "\"server_url\":\"https://x\"}]}", "tools[0]");
    expect_bad("{\"model\":\"a\",\"input\":\"x\",\"tools\":[{\"type\":\"web_search\"}]}", "tools[0]");
    expect_bad("{\"model\":\"a\",\"input\":[{\"type\":\"item_reference\",\"id\":\"x\"}]}", "input[0]");
    expect_bad("{\"model\":\"a\",\"input\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "input[0]");
    expect_bad("{\"model\":\"a\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_file\"}]}]}",
               "input[0].content[0]");
    expect_bad("{\"model\":\"a\",\"input\":[{\"type\":\"function_call_output\",\"call_id\":\"c\"}]}",
               "input[0]");
    expect_bad("{\"model\":\"a\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"json_schema\"}}}",
               "text.format");
    expect_bad("{\"model\":\"a\",\"input\":\"x\",\"tool_choice\":{\"type\":\"mcp\"}}", "tool_choice");
}

/* The loop's tool events become mcp_call items in order; then the message
 * and the client's function calls; usage in the Responses vocabulary. */
static void response_object_from_the_loop(void **state)
{
    respout_t o;
    agent_res_t res;
    json_object *in = json_tokener_parse("{\"model\":\"a\",\"input\":\"x\"}"), *r, *out, *it;
    agent_event_t s1 = { .kind = AGENT_EV_TOOL_START, .call_id = "c1", .name = "demo__add",
                         .server = "demo", .tool = "add", .args_json = "{\"a\":2}" };
    agent_event_t s2 = { .kind = AGENT_EV_TOOL_START, .call_id = "c2", .name = "demo__boom",
                         .server = "demo", .tool = "boom", .args_json = "{}" };
    agent_event_t unknown = { .kind = AGENT_EV_TOOL_START, .call_id = "c3", .name = "nope" };
    agent_event_t d2 = { .kind = AGENT_EV_TOOL_DONE, .call_id = "c2", .server = "demo",
                         .is_error = 1, .result = "it broke" };
    agent_event_t d1 = { .kind = AGENT_EV_TOOL_DONE, .call_id = "c1", .server = "demo",
                         .result = "5" };

    (void)state;
    assert_int_equal(respout_init(&o, NULL, in, "a", 1700000000, 0), 0);
    assert_int_equal(respout_tool_event(&o, &s1), 0);
    assert_int_equal(respout_tool_event(&o, &s2), 0);
    assert_int_equal(respout_tool_event(&o, &unknown), 0);
    assert_int_equal(respout_tool_event(&o, &d2), 0);
    assert_int_equal(respout_tool_event(&o, &d1), 0);
    memset(&res, 0, sizeof(res));
    res.status = 200;
    snprintf(res.finish_reason, sizeof(res.finish_reason), "length");
    res.message = json_tokener_parse("{\"role\":\"assistant\",\"content\":\"It is 5.\",\"tool_calls\":"
        "[{\"id\":\"cf\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\":1}\"}}]}");
    res.usage = json_tokener_parse("{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}");
    r = respout_response(&o, &res);
    assert_non_null(r);
    assert_string_equal(json_object_get_string(json_object_object_get(r, "status")), "incomplete");
    assert_string_equal(js(json_object_object_get(r, "incomplete_details")),
                        "{\"reason\":\"max_output_tokens\"}");
    assert_string_equal(json_object_get_string(json_object_object_get(r, "output_text")), "It is 5.");
    out = json_object_object_get(r, "output");
    assert_int_equal(json_object_array_length(out), 4);
    it = json_object_array_get_idx(out, 0);
    assert_string_equal(json_object_get_string(json_object_object_get(it, "type")), "mcp_call");
    assert_string_equal(json_object_get_string(json_object_object_get(it, "server_label")), "demo");
    assert_string_equal(json_object_get_string(json_object_object_get(it, "name")), "add");
    assert_string_equal(json_object_get_string(json_object_object_get(it, "output")), "5");
    assert_string_equal(json_object_get_string(json_object_object_get(it, "status")), "completed");
    assert_null(json_object_object_get(it, "_call_id"));
    it = json_object_array_get_idx(out, 1);
    assert_string_equal(json_object_get_string(json_object_object_get(it, "error")), "it broke");
    assert_string_equal(json_object_get_string(json_object_object_get(it, "status")), "failed");
    it = json_object_array_get_idx(out, 2);
    assert_string_equal(json_object_get_string(json_object_object_get(it, "type")), "message");
    it = json_object_array_get_idx(out, 3);
    assert_string_equal(json_object_get_string(json_object_object_get(it, "type")), "function_call");
    assert_string_equal(json_object_get_string(json_object_object_get(it, "call_id")), "cf");
    assert_string_equal(js(json_object_object_get(r, "usage")),
        "{\"input_tokens\":3,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":4,"
        "\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":7}");
    json_object_put(r);
    json_object_put(res.message);
    json_object_put(res.usage);
    respout_clear(&o);
    json_object_put(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(string_input_and_instructions),
        cmocka_unit_test(items_history_tools_and_format),
        cmocka_unit_test(refusals_name_their_field),
        cmocka_unit_test(response_object_from_the_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
