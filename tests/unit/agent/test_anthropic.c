/* Unit tests of the Anthropic Messages backend (agent/anthropic*.c): request
 * translation, whole answers, errors, and the stream parser fed event by event. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "agent/anthropic.h"

#include <errno.h>
#include <stdio.h>
#include <limits.h>
#include <string.h>

/* ---- helpers ---- */

static void turn_init(be_turn_t *t, size_t max)
{
    memset(t, 0, sizeof *t);
    buf_init(&t->content, max);
}

static void turn_clear(be_turn_t *t)
{
    buf_free(&t->content);
    json_object_put(t->tool_calls);
    t->tool_calls = NULL;
}

typedef struct built {
    int rc;
    char err[256];
    buf_t url, body;
    struct curl_slist *headers;
    json_object *json; /* the body parsed */
} built_t;

static void build(built_t *b, const char *backend_json, const char *req_json, int stream)
{
    json_object *backend = json_tokener_parse(backend_json), *req = json_tokener_parse(req_json);
    assert_non_null(backend);
    assert_non_null(req);
    memset(b, 0, sizeof *b);
    buf_init(&b->url, 4096);
    buf_init(&b->body, 1 << 20);
    b->rc = be_anthropic.build(backend, req, stream, &b->url, &b->headers, &b->body, b->err,
                               sizeof b->err);
    if (b->rc == 0) {
        b->json = json_tokener_parse(buf_str(&b->body));
        assert_non_null(b->json);
    }
    json_object_put(backend);
    json_object_put(req);
}

static void built_free(built_t *b)
{
    buf_free(&b->url);
    buf_free(&b->body);
    curl_slist_free_all(b->headers);
    json_object_put(b->json);
}

/* Asserts that `got` equals the JSON text `want` (key order aside). */
static void assert_json(json_object *got, const char *want)
{
    json_object *w = json_tokener_parse(want);
    assert_non_null(w);
    if (!json_object_equal(got, w)) {
        fprintf(stderr, "got:  %s\nwant: %s\n",
                json_object_to_json_string_ext(got, JSON_C_TO_STRING_PLAIN),
                json_object_to_json_string_ext(w, JSON_C_TO_STRING_PLAIN));
        fail();
    }
    json_object_put(w);
}

static json_object *field(json_object *o, const char *key)
{
    json_object *v = NULL;
    json_object_object_get_ex(o, key, &v);
    return v;
}

static int has_header(struct curl_slist *h, const char *line)
{
    for (; h; h = h->next)
        if (strcmp(h->data, line) == 0)
            return 1;
    return 0;
}

static size_t header_count(struct curl_slist *h)
{
    size_t n = 0;
    for (; h; h = h->next)
        n++;
    return n;
}

#define BACKEND "{\"kind\":\"anthropic\",\"base_url\":\"http://127.0.0.1:9/v1/\",\"api_key\":\"sk-ant\"," \
                "\"default_headers\":{\"anthropic-beta\":\"tools-2024\"}}"

/* ---- build ---- */

static void test_build_basic(void **state)
{
    built_t b;
    (void)state;
    build(&b, BACKEND,
          "{\"model\":\"claude-x\",\"messages\":["
          "{\"role\":\"system\",\"content\":\"Be brief.\"},"
          "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"Answer in French.\"}]},"
          "{\"role\":\"user\",\"content\":\"Hi\"}]}", 0);
    assert_int_equal(b.rc, 0);
    assert_string_equal(buf_str(&b.url), "http://127.0.0.1:9/v1/messages");
    assert_true(has_header(b.headers, "x-api-key: sk-ant"));
    assert_true(has_header(b.headers, "anthropic-version: 2023-06-01"));
    assert_true(has_header(b.headers, "content-type: application/json"));
    assert_true(has_header(b.headers, "anthropic-beta: tools-2024"));
    assert_true(has_header(b.headers, "Expect:"));
    assert_int_equal(header_count(b.headers), 5);
    assert_json(b.json, "{\"model\":\"claude-x\",\"system\":\"Be brief.\\n\\nAnswer in French.\","
                        "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}]}],"
                        "\"max_tokens\":4096}");
    built_free(&b);
}

static void test_build_default_url_no_key_stream(void **state)
{
    built_t b;
    (void)state;
    build(&b, "{\"kind\":\"anthropic\",\"api_key\":\"\",\"default_headers\":{\"anthropic-version\":\"2099-01-01\"}}",
          "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 1);
    assert_int_equal(b.rc, 0);
    assert_string_equal(buf_str(&b.url), "https://api.anthropic.com/v1/messages");
    assert_true(has_header(b.headers, "anthropic-version: 2099-01-01"));
    assert_int_equal(header_count(b.headers), 3); /* version override, content-type, Expect */
    assert_json(field(b.json, "stream"), "true");
    built_free(&b);

    build(&b, "{\"base_url\":\"http://h/v1\"}",
          "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    assert_int_equal(b.rc, 0);
    assert_null(field(b.json, "stream"));
    built_free(&b);
}

static void test_build_merges_same_role_turns(void **state)
{
    built_t b;
    (void)state;
    build(&b, BACKEND,
          "{\"model\":\"m\",\"messages\":["
          "{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"},"
          "{\"role\":\"assistant\",\"content\":\"c\"},{\"role\":\"system\",\"content\":\"S\"},"
          "{\"role\":\"assistant\",\"content\":\"d\"},{\"role\":\"user\",\"content\":\"e\"}]}", 0);
    assert_int_equal(b.rc, 0);
    assert_json(field(b.json, "messages"),
                "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]},"
                "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"c\"},{\"type\":\"text\",\"text\":\"d\"}]},"
                "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"e\"}]}]");
    assert_json(field(b.json, "system"), "\"S\"");
    built_free(&b);
}

static void test_build_first_assistant_gets_user_turn(void **state)
{
    built_t b;
    (void)state;
    build(&b, BACKEND,
          "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
          "{\"role\":\"assistant\",\"content\":\"Hello!\"},{\"role\":\"user\",\"content\":\"Hi\"}]}", 0);
    assert_int_equal(b.rc, 0);
    assert_json(field(b.json, "messages"),
                "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\".\"}]},"
                "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Hello!\"}]},"
                "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}]}]");
    built_free(&b);
}

static void test_build_tool_use_and_results(void **state)
{
    built_t b;
    (void)state;
    build(&b, BACKEND,
          "{\"model\":\"m\",\"messages\":["
          "{\"role\":\"user\",\"content\":\"add 2 and 3, and 4 and 5\"},"
          "{\"role\":\"assistant\",\"content\":\"Let me add.\",\"tool_calls\":["
          "{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"demo__add\",\"arguments\":\"{\\\"a\\\":2,\\\"b\\\":3}\"}},"
          "{\"id\":\"toolu_2\",\"type\":\"function\",\"function\":{\"name\":\"demo__add\",\"arguments\":\"{not json\"}}]},"
          "{\"role\":\"tool\",\"tool_call_id\":\"toolu_1\",\"content\":\"5\"},"
          "{\"role\":\"tool\",\"tool_call_id\":\"toolu_2\",\"content\":[{\"type\":\"text\",\"text\":\"error\"}]},"
          "{\"role\":\"user\",\"content\":\"thanks\"}]}", 0);
    assert_int_equal(b.rc, 0);
    assert_json(field(b.json, "messages"),
                "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"add 2 and 3, and 4 and 5\"}]},"
                "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Let me add.\"},"
                "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"demo__add\",\"input\":{\"a\":2,\"b\":3}},"
                "{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"demo__add\",\"input\":{}}]},"
                "{\"role\":\"user\",\"content\":["
                "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":\"5\"},"
                "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_2\",\"content\":[{\"type\":\"text\",\"text\":\"error\"}]},"
                "{\"type\":\"text\",\"text\":\"thanks\"}]}]");
    built_free(&b);
}

static void test_build_assistant_null_content_and_array_args(void **state)
{
    built_t b;
    (void)state;
    build(&b, BACKEND,
          "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
          "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
          "{\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"[1,2]\"}}]},"
          "{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":\"\"}]}", 0);
    assert_int_equal(b.rc, 0);
    assert_json(field(b.json, "messages"),
                "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"q\"}]},"
                "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"f\",\"input\":{}}]},"
                "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\"}]}]");
    built_free(&b);
}

static void test_build_withdrawn_tools_redeclared(void **state)
{
    built_t b;
    (void)state;
    /* the loop's last turn after the round cap: history with calls, no tools */
    build(&b, BACKEND,
          "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
          "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
          "{\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"add\",\"arguments\":\"{}\"}},"
          "{\"id\":\"t2\",\"type\":\"function\",\"function\":{\"name\":\"add\",\"arguments\":\"{}\"}}]},"
          "{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":\"1\"},"
          "{\"role\":\"tool\",\"tool_call_id\":\"t2\",\"content\":\"2\"}]}", 0);
    assert_int_equal(b.rc, 0);
    assert_json(field(b.json, "tools"), "[{\"name\":\"add\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}]");
    assert_json(field(b.json, "tool_choice"), "{\"type\":\"none\"}");
    built_free(&b);
}

static void test_build_empty_messages_add_no_turn(void **state)
{
    built_t b;
    (void)state;
    /* an empty assistant message between two user messages: one user turn */
    build(&b, BACKEND,
          "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
          "{\"role\":\"assistant\",\"content\":\"\"},{\"role\":\"user\",\"content\":[]},"
          "{\"role\":\"user\",\"content\":\"b\"}]}", 0);
    assert_int_equal(b.rc, 0);
    assert_json(field(b.json, "messages"),
                "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}]");
    built_free(&b);
}

static void test_build_images(void **state)
{
    built_t b;
    (void)state;
    build(&b, BACKEND,
          "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":["
          "{\"type\":\"text\",\"text\":\"what is this?\"},"
          "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\",\"detail\":\"high\"}},"
          "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.com/cat.jpg\"}}]}]}", 0);
    assert_int_equal(b.rc, 0);
    assert_json(field(b.json, "messages"),
                "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"what is this?\"},"
                "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}},"
                "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://example.com/cat.jpg\"}}]}]");
    /* the slash in the URL is not escaped on the wire */
    assert_non_null(strstr(buf_str(&b.body), "https://example.com/cat.jpg"));
    built_free(&b);

    build(&b, BACKEND, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":["
                       "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png,rawbytes\"}}]}]}", 0);
    assert_int_equal(b.rc, -EINVAL);
    assert_non_null(strstr(b.err, "messages[0].content[0].image_url.url"));
    assert_non_null(strstr(b.err, "base64"));
    built_free(&b);
}

/* The canonical tool result with images (docs/agent.md, "Tool results the
 * model sees"): a tool message whose content holds image_url parts becomes a
 * tool_result whose content holds image blocks, in order. */
static void test_build_tool_result_images(void **state)
{
    built_t b;
    (void)state;
    build(&b, BACKEND,
          "{\"model\":\"m\",\"messages\":["
          "{\"role\":\"user\",\"content\":\"show me\"},"
          "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
          "{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"ev__get-tiny-image\",\"arguments\":\"{}\"}}]},"
          "{\"role\":\"tool\",\"tool_call_id\":\"toolu_1\",\"content\":["
          "{\"type\":\"text\",\"text\":\"Here:\"},"
          "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}},"
          "{\"type\":\"text\",\"text\":\"done\"}]}]}", 0);
    assert_int_equal(b.rc, 0);
    assert_json(field(b.json, "messages"),
                "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"show me\"}]},"
                "{\"role\":\"assistant\",\"content\":["
                "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"ev__get-tiny-image\",\"input\":{}}]},"
                "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":["
                "{\"type\":\"text\",\"text\":\"Here:\"},"
                "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}},"
                "{\"type\":\"text\",\"text\":\"done\"}]}]}]");
    built_free(&b);
}

static void test_build_tools_and_choice(void **state)
{
    static const struct { const char *choice; const char *want; } cases[] = {
        { "", "{\"type\":\"auto\"}" },
        { ",\"tool_choice\":\"auto\"", "{\"type\":\"auto\"}" },
        { ",\"tool_choice\":\"none\"", "{\"type\":\"none\"}" },
        { ",\"tool_choice\":\"required\"", "{\"type\":\"any\"}" },
        { ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"add\"}}",
          "{\"type\":\"tool\",\"name\":\"add\"}" },
        { ",\"parallel_tool_calls\":false", "{\"type\":\"auto\",\"disable_parallel_tool_use\":true}" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char req[1024];
        built_t b;
        snprintf(req, sizeof req,
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":["
                 "{\"type\":\"function\",\"function\":{\"name\":\"add\",\"description\":\"Adds\","
                 "\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"number\"}}}}},"
                 "{\"type\":\"function\",\"function\":{\"name\":\"now\"}}]%s}", cases[i].choice);
        build(&b, BACKEND, req, 0);
        assert_int_equal(b.rc, 0);
        assert_json(field(b.json, "tools"),
                    "[{\"name\":\"add\",\"description\":\"Adds\",\"input_schema\":{\"type\":\"object\","
                    "\"properties\":{\"a\":{\"type\":\"number\"}}}},"
                    "{\"name\":\"now\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}]");
        assert_json(field(b.json, "tool_choice"), cases[i].want);
        assert_null(field(b.json, "parallel_tool_calls"));
        built_free(&b);
    }
}

static void test_build_no_tools_drops_choice(void **state)
{
    built_t b;
    (void)state;
    build(&b, BACKEND, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                       "\"tools\":[],\"tool_choice\":\"auto\"}", 0);
    assert_int_equal(b.rc, 0);
    assert_null(field(b.json, "tools"));
    assert_null(field(b.json, "tool_choice"));
    built_free(&b);
}

static void test_build_max_tokens(void **state)
{
    built_t b;
    (void)state;
    build(&b, BACKEND, "{\"model\":\"m\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    assert_int_equal(b.rc, 0);
    assert_json(field(b.json, "max_tokens"), "100");
    built_free(&b);
    build(&b, BACKEND, "{\"model\":\"m\",\"max_completion_tokens\":77,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    assert_int_equal(b.rc, 0);
    assert_json(field(b.json, "max_tokens"), "77");
    assert_null(field(b.json, "max_completion_tokens"));
    built_free(&b);
    build(&b, BACKEND, "{\"model\":\"m\",\"max_tokens\":null,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    assert_int_equal(b.rc, 0);
    assert_json(field(b.json, "max_tokens"), "4096");
    built_free(&b);
    build(&b, BACKEND, "{\"model\":\"m\",\"max_tokens\":0,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    assert_int_equal(b.rc, -EINVAL);
    assert_non_null(strstr(b.err, "max_tokens"));
    built_free(&b);
}

static void test_build_sampling_stop_and_dropped(void **state)
{
    built_t b;
    (void)state;
    build(&b, BACKEND,
          "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":\"END\","
          "\"temperature\":0.5,\"top_p\":0.9,\"n\":1,\"presence_penalty\":0.1,\"frequency_penalty\":0.2,"
          "\"seed\":3,\"response_format\":{\"type\":\"text\"},\"logit_bias\":{},\"stream_options\":"
          "{\"include_usage\":true},\"user\":\"u-1\",\"top_k\":5}", 0);
    assert_int_equal(b.rc, 0);
    assert_json(b.json, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}],"
                        "\"max_tokens\":4096,\"stop_sequences\":[\"END\"],\"temperature\":0.5,\"top_p\":0.9,"
                        "\"top_k\":5,\"metadata\":{\"user_id\":\"u-1\"}}");
    built_free(&b);
    build(&b, BACKEND, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[\"a\",\"b\"]}", 0);
    assert_int_equal(b.rc, 0);
    assert_json(field(b.json, "stop_sequences"), "[\"a\",\"b\"]");
    built_free(&b);
    build(&b, BACKEND, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[1]}", 0);
    assert_int_equal(b.rc, -EINVAL);
    assert_non_null(strstr(b.err, "stop[0]"));
    built_free(&b);
}

static void test_build_refusals(void **state)
{
    static const struct { const char *req, *err; } cases[] = {
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model" },
        { "{\"model\":\"m\",\"messages\":{}}", "messages" },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"only\"}]}", "at least one" },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"function\",\"content\":\"x\"}]}", "messages[0].role" },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}",
          "messages[0].content[0]" },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "tool_call_id" },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{}]}", "tools[0]" },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\","
          "\"tool_calls\":[{\"type\":\"function\"}]}]}", "messages[1].tool_calls[0]" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        built_t b;
        build(&b, BACKEND, cases[i].req, 0);
        assert_int_equal(b.rc, -EINVAL);
        if (!strstr(b.err, cases[i].err))
            fail_msg("case %zu: err '%s' lacks '%s'", i, b.err, cases[i].err);
        built_free(&b);
    }
    built_t b;
    build(&b, "{\"default_headers\":{\"x-evil\":\"a\\r\\nHost: b\"}}",
          "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0);
    assert_int_equal(b.rc, -EINVAL);
    assert_non_null(strstr(b.err, "default_headers"));
    assert_null(b.headers); /* nothing for the caller to free after a failure */
    built_free(&b);
}

/* ---- parse ---- */

static void test_parse_text_and_tools(void **state)
{
    const char *body =
        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":["
        "{\"type\":\"thinking\",\"thinking\":\"hmm\",\"signature\":\"s\"},"
        "{\"type\":\"text\",\"text\":\"Let me \"},{\"type\":\"text\",\"text\":\"add.\"},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"demo__add\",\"input\":{\"a\":2,\"b\":3}},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"now\",\"input\":{}}],"
        "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,"
        "\"usage\":{\"input_tokens\":10,\"output_tokens\":20,\"cache_read_input_tokens\":5}}";
    be_turn_t t;
    char err[128] = "";
    (void)state;
    turn_init(&t, 1 << 16);
    assert_int_equal(be_anthropic.parse(body, strlen(body), &t, err, sizeof err), 0);
    assert_string_equal(buf_str(&t.content), "Let me add.");
    assert_json(t.tool_calls,
                "[{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"demo__add\",\"arguments\":\"{\\\"a\\\":2,\\\"b\\\":3}\"}},"
                "{\"id\":\"toolu_2\",\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}]");
    assert_string_equal(t.finish_reason, "tool_calls");
    assert_int_equal(t.has_usage, 1);
    assert_int_equal(t.prompt_tokens, 15);
    assert_int_equal(t.completion_tokens, 20);
    turn_clear(&t);
}

/* A tool_use input's integers past 64 bits reach the tool call's arguments
 * as written (json-c alone clamped them to 18446744073709551615). */
static void test_parse_big_integers_in_input(void **state)
{
    const char *body =
        "{\"type\":\"message\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_1\","
        "\"name\":\"f\",\"input\":{\"a\":100000000000000000000000,\"b\":-100000000000000000000000}}],"
        "\"stop_reason\":\"tool_use\"}";
    be_turn_t t;
    char err[128] = "";
    (void)state;
    turn_init(&t, 1 << 16);
    assert_int_equal(be_anthropic.parse(body, strlen(body), &t, err, sizeof err), 0);
    assert_json(t.tool_calls,
                "[{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
                "\"{\\\"a\\\":100000000000000000000000,\\\"b\\\":-100000000000000000000000}\"}}]");
    turn_clear(&t);
}

/* Found by fuzzing: token counts near INT64_MAX must saturate, not overflow
 * (UBSan), in both the whole answer and the stream. */
static void test_usage_saturates(void **state)
{
    const char *body =
        "{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}],"
        "\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":9223372036854775807,"
        "\"cache_read_input_tokens\":9223372036854775807,\"cache_creation_input_tokens\":-4,"
        "\"output_tokens\":1}}";
    const char *start =
        "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":9223372036854775807,"
        "\"cache_creation_input_tokens\":9223372036854775807}}}";
    be_sink_t sink = { NULL, NULL };
    be_turn_t t;
    char err[128] = "";
    int status = 0;
    void *st;
    (void)state;
    turn_init(&t, 1024);
    assert_int_equal(be_anthropic.parse(body, strlen(body), &t, err, sizeof err), 0);
    assert_true(t.prompt_tokens == LONG_MAX);
    turn_clear(&t);

    turn_init(&t, 1024);
    st = be_anthropic.stream_new(&t, &sink);
    assert_non_null(st);
    assert_int_equal(be_anthropic.stream_event(st, "message_start", start, strlen(start), &status,
                                               err, sizeof err), 0);
    assert_true(t.prompt_tokens == LONG_MAX);
    assert_int_equal(t.has_usage, 1);
    be_anthropic.stream_free(st);
    turn_clear(&t);
}

static void test_parse_stop_reasons(void **state)
{
    static const struct { const char *anth, *openai; } cases[] = {
        { "end_turn", "stop" }, { "stop_sequence", "stop" }, { "max_tokens", "length" },
        { "pause_turn", "stop" }, { "refusal", "content_filter" }, { "tool_use", "tool_calls" },
        { "something_new", "" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[256], err[128];
        be_turn_t t;
        snprintf(body, sizeof body, "{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}],"
                                    "\"stop_reason\":\"%s\"}", cases[i].anth);
        turn_init(&t, 1024);
        assert_int_equal(be_anthropic.parse(body, strlen(body), &t, err, sizeof err), 0);
        assert_string_equal(t.finish_reason, cases[i].openai);
        assert_int_equal(t.has_usage, 0);
        assert_null(t.tool_calls);
        turn_clear(&t);
    }
}

static void test_parse_bad(void **state)
{
    static const char *const bodies[] = {
        "not json", "[1]", "{\"type\":\"message\"}",
        "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"boom\"}}",
        "{\"type\":\"message\",\"content\":[{\"type\":\"tool_use\",\"input\":{}}]}",
        "{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"0123456789ABCDEF\"}]}",
    };
    (void)state;
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char err[128] = "";
        be_turn_t t;
        turn_init(&t, 8);
        assert_int_equal(be_anthropic.parse(bodies[i], strlen(bodies[i]), &t, err, sizeof err), -EPROTO);
        assert_true(err[0] != '\0');
        turn_clear(&t);
    }
    char err[128];
    be_turn_t t;
    turn_init(&t, 8);
    be_anthropic.parse(bodies[3], strlen(bodies[3]), &t, err, sizeof err);
    assert_non_null(strstr(err, "boom"));
    turn_clear(&t);
}

/* ---- error ---- */

static void test_error_bodies(void **state)
{
    static const struct { int status; const char *body; int want_status; const char *type, *msg; } cases[] = {
        { 429, "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}",
          429, "rate_limit_error", "slow down" },
        { 529, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
          529, "api_error", "Overloaded" },
        { 401, "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":\"invalid x-api-key\"}}",
          401, "authentication_error", "invalid x-api-key" },
        { 400, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"max_tokens: too big\"}}",
          400, "invalid_request_error", "max_tokens: too big" },
        { 502, "<html>Bad Gateway</html>", 502, "api_error", "HTTP 502" },
        { 403, "", 403, "permission_error", "HTTP 403" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int st = 0;
        char type[48] = "", msg[256] = "";
        be_anthropic.error(cases[i].status, cases[i].body, strlen(cases[i].body), &st, type,
                           sizeof type, msg, sizeof msg);
        assert_int_equal(st, cases[i].want_status);
        assert_string_equal(type, cases[i].type);
        if (!strstr(msg, cases[i].msg))
            fail_msg("case %zu: '%s' lacks '%s'", i, msg, cases[i].msg);
    }
}

/* ---- stream ---- */

typedef struct sink_rec {
    char text[256];
    size_t calls;
    size_t stop_after; /* 0: never stop */
} sink_rec_t;

static int sink_content(void *ud, const char *text, size_t len)
{
    sink_rec_t *r = ud;
    size_t have = strlen(r->text);
    assert_true(have + len < sizeof r->text);
    memcpy(r->text + have, text, len);
    r->text[have + len] = '\0';
    r->calls++;
    return r->stop_after && r->calls >= r->stop_after;
}

/* Feeds events until one returns non-zero; returns that, and the index of the
 * event in *at. */
static int feed(void *st, const char *const *events, size_t n, size_t *at, int *status, char *err,
                size_t errlen)
{
    for (size_t i = 0; i < n; i += 2) {
        int rc = be_anthropic.stream_event(st, events[i], events[i + 1], strlen(events[i + 1]),
                                           status, err, errlen);
        if (rc) {
            *at = i / 2;
            return rc;
        }
    }
    *at = n / 2;
    return 0;
}

#define N(a) (sizeof (a) / sizeof (a)[0])

static void test_stream_text(void **state)
{
    static const char *const ev[] = {
        "message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","
                         "\"role\":\"assistant\",\"content\":[],\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}",
        "content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}",
        "ping", "{\"type\": \"ping\"}",
        "content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}",
        "content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}",
        "content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}",
        "message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"
                         "\"usage\":{\"output_tokens\":15}}",
        "message_stop", "{\"type\":\"message_stop\"}",
    };
    sink_rec_t rec = { .text = "" };
    be_sink_t sink = { sink_content, &rec };
    be_turn_t t;
    char err[128] = "";
    int status = 0;
    size_t at;
    void *st;
    (void)state;
    turn_init(&t, 1024);
    st = be_anthropic.stream_new(&t, &sink);
    assert_non_null(st);
    assert_int_equal(feed(st, ev, N(ev), &at, &status, err, sizeof err), 1);
    assert_int_equal(at, N(ev) / 2 - 1); /* message_stop completes it */
    assert_string_equal(rec.text, "Hello");
    assert_int_equal(rec.calls, 2);
    assert_string_equal(buf_str(&t.content), "Hello");
    assert_string_equal(t.finish_reason, "stop");
    assert_int_equal(t.prompt_tokens, 25);
    assert_int_equal(t.completion_tokens, 15);
    assert_int_equal(t.has_usage, 1);
    assert_null(t.tool_calls);
    be_anthropic.stream_free(st);
    turn_clear(&t);
}

static void test_stream_tool_use(void **state)
{
    static const char *const ev[] = {
        "message_start", "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":40,\"output_tokens\":1}}}",
        "content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}",
        "content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"secret\"}}",
        "content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}",
        "content_block_start", "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}",
        "content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Adding.\"}}",
        "content_block_stop", "{\"type\":\"content_block_stop\",\"index\":1}",
        "content_block_start", "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\","
                               "\"id\":\"toolu_A\",\"name\":\"demo__add\",\"input\":{}}}",
        "content_block_delta", "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}",
        "content_block_delta", "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\": 2\"}}",
        "content_block_delta", "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\", \\\"b\\\": 3}\"}}",
        "content_block_stop", "{\"type\":\"content_block_stop\",\"index\":2}",
        "content_block_start", "{\"type\":\"content_block_start\",\"index\":3,\"content_block\":{\"type\":\"tool_use\","
                               "\"id\":\"toolu_B\",\"name\":\"now\",\"input\":{}}}",
        "content_block_stop", "{\"type\":\"content_block_stop\",\"index\":3}",
        "message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":33}}",
        "message_stop", "{\"type\":\"message_stop\"}",
    };
    sink_rec_t rec = { .text = "" };
    be_sink_t sink = { sink_content, &rec };
    be_turn_t t;
    char err[128] = "";
    int status = 0;
    size_t at;
    void *st;
    (void)state;
    turn_init(&t, 1024);
    st = be_anthropic.stream_new(&t, &sink);
    assert_int_equal(feed(st, ev, N(ev), &at, &status, err, sizeof err), 1);
    assert_string_equal(rec.text, "Adding.");
    assert_string_equal(buf_str(&t.content), "Adding.");
    assert_json(t.tool_calls,
                "[{\"id\":\"toolu_A\",\"type\":\"function\",\"function\":{\"name\":\"demo__add\",\"arguments\":\"{\\\"a\\\": 2, \\\"b\\\": 3}\"}},"
                "{\"id\":\"toolu_B\",\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}]");
    assert_string_equal(t.finish_reason, "tool_calls");
    assert_int_equal(t.prompt_tokens, 40);
    assert_int_equal(t.completion_tokens, 33);
    be_anthropic.stream_free(st);
    turn_clear(&t);
}

/* A proxy that sends the whole input at content_block_start and no deltas;
 * and a stream cut inside a tool block: arguments are never empty. */
static void test_stream_tool_input_at_start(void **state)
{
    static const char *const ev[] = {
        "content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\","
                               "\"id\":\"t1\",\"name\":\"add\",\"input\":{\"a\":1}}}",
        "content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}",
        "content_block_start", "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\","
                               "\"id\":\"t2\",\"name\":\"now\",\"input\":{}}}",
    };
    be_turn_t t;
    char err[128] = "";
    int status = 0;
    size_t at;
    (void)state;
    turn_init(&t, 1024);
    void *st = be_anthropic.stream_new(&t, NULL);
    assert_int_equal(feed(st, ev, N(ev), &at, &status, err, sizeof err), 0);
    assert_json(t.tool_calls,
                "[{\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"add\",\"arguments\":\"{\\\"a\\\":1}\"}},"
                "{\"id\":\"t2\",\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}]");
    be_anthropic.stream_free(st);
    turn_clear(&t);
}

/* A stream cut after some input_json_delta: freeing the parser still writes
 * the arguments it had; a message_start without usage claims none. */
static void test_stream_cut_mid_tool(void **state)
{
    static const char *const ev[] = {
        "message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}",
        "content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\","
                               "\"id\":\"t1\",\"name\":\"add\",\"input\":{}}}",
        "content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":\"}}",
        "content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"1}\"}}",
    };
    be_turn_t t;
    char err[128] = "";
    int status = 0;
    size_t at;
    (void)state;
    turn_init(&t, 1024);
    void *st = be_anthropic.stream_new(&t, NULL);
    assert_int_equal(feed(st, ev, N(ev), &at, &status, err, sizeof err), 0);
    assert_int_equal(t.has_usage, 0);
    be_anthropic.stream_free(st);
    assert_json(t.tool_calls,
                "[{\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"add\",\"arguments\":\"{\\\"a\\\":1}\"}}]");
    turn_clear(&t);
}

/* Issue 11: EOF without message_stop is a cut answer, even after a
 * message_delta that named a stop_reason. */
static void test_stream_end_without_message_stop(void **state)
{
    static const char *const ev[] = {
        "message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}",
        "content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}",
        "content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}",
        "content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}",
        "message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
                         "\"usage\":{\"output_tokens\":3}}",
    };
    be_turn_t t;
    char err[128] = "";
    int status = 0;
    size_t at;
    void *st;
    (void)state;
    for (size_t upto = 3; upto <= N(ev) / 2; upto += 2) {   /* cut mid-text, after message_delta */
        turn_init(&t, 1024);
        st = be_anthropic.stream_new(&t, NULL);
        assert_non_null(st);
        assert_int_equal(feed(st, ev, 2 * upto, &at, &status, err, sizeof err), 0);
        assert_int_equal(be_anthropic.stream_end(st, err, sizeof err), -EPROTO);
        assert_non_null(strstr(err, "message_stop"));
        be_anthropic.stream_free(st);
        turn_clear(&t);
    }
}

static void test_stream_error_events(void **state)
{
    static const struct { const char *type; int status; } cases[] = {
        { "overloaded_error", 529 }, { "rate_limit_error", 429 }, { "api_error", 500 },
        { "invalid_request_error", 400 }, { "authentication_error", 401 },
        { "permission_error", 403 }, { "not_found_error", 404 }, { "brand_new_error", 500 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char data[256], err[128] = "";
        int status = 0;
        be_turn_t t;
        void *st;
        snprintf(data, sizeof data, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"went wrong %zu\"}}",
                 cases[i].type, i);
        turn_init(&t, 1024);
        st = be_anthropic.stream_new(&t, NULL);
        assert_int_equal(be_anthropic.stream_event(st, "error", data, strlen(data), &status, err, sizeof err),
                         -EREMOTEIO);
        assert_int_equal(status, cases[i].status);
        char want[32];
        snprintf(want, sizeof want, "went wrong %zu", i);
        assert_string_equal(err, want);
        be_anthropic.stream_free(st);
        turn_clear(&t);
    }
}

static void test_stream_sink_stops(void **state)
{
    static const char *const ev[] = {
        "content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}",
        "content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\"}}",
        "content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"b\"}}",
        "content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"c\"}}",
    };
    sink_rec_t rec = { .text = "", .stop_after = 2 };
    be_sink_t sink = { sink_content, &rec };
    be_turn_t t;
    char err[128] = "";
    int status = 0;
    size_t at;
    void *st;
    (void)state;
    turn_init(&t, 1024);
    st = be_anthropic.stream_new(&t, &sink);
    assert_int_equal(feed(st, ev, N(ev), &at, &status, err, sizeof err), -ECANCELED);
    assert_int_equal(at, 2);
    assert_string_equal(rec.text, "ab");
    be_anthropic.stream_free(st);
    turn_clear(&t);
}

static void test_stream_invalid(void **state)
{
    static const struct { const char *event, *data, *err; } cases[] = {
        { "message_start", "{not json", "not a JSON object" },
        { "content_block_delta", "{\"type\":\"content_block_delta\",\"index\":4,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}",
          "not open" },
        { "content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\"}}",
          "id or name" },
        { "content_block_start", "{\"type\":\"content_block_start\"}", "without index" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[128] = "";
        int status = 0;
        be_turn_t t;
        void *st;
        turn_init(&t, 1024);
        st = be_anthropic.stream_new(&t, NULL);
        assert_int_equal(be_anthropic.stream_event(st, cases[i].event, cases[i].data, strlen(cases[i].data),
                                                   &status, err, sizeof err), -EPROTO);
        if (!strstr(err, cases[i].err))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].err);
        be_anthropic.stream_free(st);
        turn_clear(&t);
    }
    /* a ping with no data is harmless; unknown event types are skipped */
    char err[128];
    int status = 0;
    be_turn_t t;
    turn_init(&t, 1024);
    void *st = be_anthropic.stream_new(&t, NULL);
    assert_int_equal(be_anthropic.stream_event(st, "ping", "", 0, &status, err, sizeof err), 0);
    assert_int_equal(be_anthropic.stream_event(st, "future", "{\"type\":\"future\"}", 17, &status, err,
                                               sizeof err), 0);
    be_anthropic.stream_free(st);
    turn_clear(&t);
}

static void test_stream_text_cap(void **state)
{
    static const char *const ev[] = {
        "content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}",
        "content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"0123\"}}",
        "content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"4567\"}}",
    };
    be_turn_t t;
    char err[128] = "";
    int status = 0;
    size_t at;
    (void)state;
    turn_init(&t, 6);
    void *st = be_anthropic.stream_new(&t, NULL);
    assert_int_equal(feed(st, ev, N(ev), &at, &status, err, sizeof err), -EPROTO);
    assert_int_equal(at, 2);
    assert_non_null(strstr(err, "cap"));
    be_anthropic.stream_free(st);
    turn_clear(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_basic),
        cmocka_unit_test(test_parse_big_integers_in_input),
        cmocka_unit_test(test_usage_saturates),
        cmocka_unit_test(test_build_default_url_no_key_stream),
        cmocka_unit_test(test_build_merges_same_role_turns),
        cmocka_unit_test(test_build_first_assistant_gets_user_turn),
        cmocka_unit_test(test_build_tool_use_and_results),
        cmocka_unit_test(test_build_assistant_null_content_and_array_args),
        cmocka_unit_test(test_build_withdrawn_tools_redeclared),
        cmocka_unit_test(test_build_empty_messages_add_no_turn),
        cmocka_unit_test(test_build_images),
        cmocka_unit_test(test_build_tool_result_images),
        cmocka_unit_test(test_build_tools_and_choice),
        cmocka_unit_test(test_build_no_tools_drops_choice),
        cmocka_unit_test(test_build_max_tokens),
        cmocka_unit_test(test_build_sampling_stop_and_dropped),
        cmocka_unit_test(test_build_refusals),
        cmocka_unit_test(test_parse_text_and_tools),
        cmocka_unit_test(test_parse_stop_reasons),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_error_bodies),
        cmocka_unit_test(test_stream_text),
        cmocka_unit_test(test_stream_tool_use),
        cmocka_unit_test(test_stream_tool_input_at_start),
        cmocka_unit_test(test_stream_cut_mid_tool),
        cmocka_unit_test(test_stream_end_without_message_stop),
        cmocka_unit_test(test_stream_error_events),
        cmocka_unit_test(test_stream_sink_stops),
        cmocka_unit_test(test_stream_invalid),
        cmocka_unit_test(test_stream_text_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
