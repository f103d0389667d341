/* sampling — the MCP createMessage params as the assistant's upstream request
 * (agent/sampling.c, smp_request and smp_allowed: pure). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "agent/sampling.h"

#include <errno.h>
#include <string.h>

static json_object *js(const char *t)
{
    json_object *o = json_tokener_parse(t);
    assert_non_null(o);
    return o;
}

static const char *str(json_object *o, const char *k)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

/* the assistant's model, systemPrompt first, text joined, images as a
 * placeholder, maxTokens, temperature and stopSequences; no tools */
static void maps_params_to_the_assistants_model(void **state)
{
    json_object *a = js("{\"model\":\"gpt-x\"}");
    json_object *p = js("{\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"text\",\"text\":\"hi\"}},"
                        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                        "{\"type\":\"image\",\"data\":\"AAAA\",\"mimeType\":\"image/png\"}]}],"
                        "\"systemPrompt\":\"be brief\",\"maxTokens\":42,\"temperature\":0.5,"
                        "\"stopSequences\":[\"END\"],"
                        "\"modelPreferences\":{\"hints\":[{\"name\":\"claude-3\"}]}}");
    json_object *req = NULL, *msgs;
    char err[200] = "";
    (void)state;
    assert_int_equal(smp_request(a, p, &req, err, sizeof err), 0);
    assert_string_equal(str(req, "model"), "gpt-x");
    assert_int_equal(json_object_get_int(json_object_object_get(req, "max_tokens")), 42);
    assert_true(json_object_get_double(json_object_object_get(req, "temperature")) == 0.5);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(json_object_object_get(req, "stop"), 0)), "END");
    assert_null(json_object_object_get(req, "tools"));
    assert_null(json_object_object_get(req, "stream"));
    msgs = json_object_object_get(req, "messages");
    assert_int_equal(json_object_array_length(msgs), 3);
    assert_string_equal(str(json_object_array_get_idx(msgs, 0), "role"), "system");
    assert_string_equal(str(json_object_array_get_idx(msgs, 0), "content"), "be brief");
    assert_string_equal(str(json_object_array_get_idx(msgs, 1), "content"), "hi");
    assert_string_equal(str(json_object_array_get_idx(msgs, 2), "role"), "assistant");
    assert_string_equal(str(json_object_array_get_idx(msgs, 2), "content"),
                        "a\n[image image/png content omitted]");
    json_object_put(req);
    json_object_put(p);
    json_object_put(a);
}

/* maxTokens never passes the assistant's own max_tokens */
static void max_tokens_capped_by_the_assistant(void **state)
{
    json_object *a = js("{\"model\":\"m\",\"max_tokens\":10}");
    json_object *p = js("{\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"text\",\"text\":\"x\"}}],"
                        "\"maxTokens\":500}");
    json_object *req = NULL;
    char err[200] = "";
    (void)state;
    assert_int_equal(smp_request(a, p, &req, err, sizeof err), 0);
    assert_int_equal(json_object_get_int(json_object_object_get(req, "max_tokens")), 10);
    json_object_put(req);
    json_object_put(p);
    json_object_put(a);
}

static void bad_params_refused_with_the_reason(void **state)
{
    static const struct { const char *params, *why; } cases[] = {
        {"{\"maxTokens\":5}", "messages: must be an array"},
        {"{\"messages\":[],\"maxTokens\":5}", "messages: must be an array"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"text\",\"text\":\"x\"}}]}", "maxTokens"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"text\",\"text\":\"x\"}}],\"maxTokens\":0}", "maxTokens"},
        {"{\"messages\":[{\"role\":\"system\",\"content\":{\"type\":\"text\",\"text\":\"x\"}}],\"maxTokens\":5}",
         "messages[0].role"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"tool_use\",\"id\":\"1\"}}],\"maxTokens\":5}",
         "messages[0].content"},
    };
    json_object *a = js("{\"model\":\"m\"}");
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_object *p = js(cases[i].params), *req = NULL;
        char err[200] = "";
        assert_int_equal(smp_request(a, p, &req, err, sizeof err), -EINVAL);
        assert_null(req);
        if (!strstr(err, cases[i].why))
            fail_msg("case %zu: '%s' does not name '%s'", i, err, cases[i].why);
        json_object_put(p);
    }
    json_object_put(a);
}

static void allow_sampling_defaults_to_true(void **state)
{
    json_object *a = js("{}"), *no = js("{\"allow_sampling\":false}"), *yes = js("{\"allow_sampling\":true}");
    smp_ctx_t x = {0};
    json_object *p = js("{\"messages\":[],\"maxTokens\":1}"), *res = NULL;
    char err[300];
    (void)state;
    assert_true(smp_allowed(a));
    assert_true(smp_allowed(yes));
    assert_false(smp_allowed(no));
    /* refused before any upstream is touched (x has none) */
    x.assistant = no;
    x.assistant_name = "quiet";
    assert_int_equal(smp_answer(&x, p, 1000, &res, err, sizeof err), -EPERM);
    assert_null(res);
    assert_non_null(strstr(err, "assistant 'quiet' does not allow sampling (allow_sampling: false)"));
    json_object_put(p);
    json_object_put(a);
    json_object_put(no);
    json_object_put(yes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(maps_params_to_the_assistants_model),
        cmocka_unit_test(max_tokens_capped_by_the_assistant),
        cmocka_unit_test(bad_params_refused_with_the_reason),
        cmocka_unit_test(allow_sampling_defaults_to_true),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
