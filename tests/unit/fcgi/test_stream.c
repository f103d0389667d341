/* The chat answers written straight as text: a stream's content chunk
 * (stream.c, over a captured request) and a whole chat.completion
 * (oai_completion_text) are byte for byte what the json-c builders
 * (oai_chunk + oai_sse_event, oai_completion printed) write for the same
 * piece or message, whatever bytes they, the model name, usage and
 * include_usage hold. */
#include "fcgi/core/stream.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

/* What the json-c builders write for one {"content": text} chunk. */
static void want_chunk(buf_t *want, const stream_t *s, const char *text, size_t len)
{
    json_object *d = json_object_new_object(), *c;

    json_object_object_add(d, "content", json_object_new_string_len(text, (int)len));
    c = oai_chunk(s->id, s->created, s->model, d, NULL, s->include_usage);
    assert_non_null(c);
    assert_int_equal(oai_sse_event(want, c), 0);
    json_object_put(c);
}

/* One piece through stream_delta on a started stream, against want_chunk. */
static void check_piece(const char *model, int include_usage, const char *text, size_t len)
{
    http_req_t req;
    stream_t st;
    buf_t out, want;

    memset(&req, 0, sizeof(req));
    buf_init(&out, 1 << 20);
    buf_init(&want, 1 << 20);
    req.capture = &out;
    stream_init(&st, &req, model, "chatcmpl-abc", 1700000000, include_usage);
    assert_int_equal(stream_begin(&st), 0);
    buf_reset(&out);
    assert_int_equal(stream_delta(&st, text, len), 0);
    want_chunk(&want, &st, text, len);
    if (out.len != want.len || memcmp(out.data, want.data, want.len) != 0)
        fail_msg("got  %s\nwant %s", buf_str(&out), buf_str(&want));
    buf_free(&out);
    buf_free(&want);
}

static void test_plain_pieces(void **state)
{
    (void)state;
    check_piece("bench", 0, "Hello", 5);
    check_piece("bench", 1, "Hello", 5);
    check_piece("a/b \"quoted\" \\ model", 1, "x", 1);
    check_piece("bench", 0, "caf\xc3\xa9 \xe2\x82\xac / </script>", 22);
}

/* Every byte value alone and all of them in one piece (NUL, the control
 * characters, DEL, bytes that are not UTF-8): the same escapes as json-c. */
static void test_every_byte(void **state)
{
    char all[256];

    (void)state;
    for (int c = 0; c < 256; c++) {
        char one = (char)c;
        all[c] = (char)c;
        check_piece("bench", c & 1, &one, 1);
    }
    check_piece("bench", 0, all, sizeof(all));
    check_piece("m\x01\x7f\xff", 1, all + 1, sizeof(all) - 1);
}

/* An empty piece writes nothing (as before: no empty content chunk). */
static void test_empty_piece(void **state)
{
    http_req_t req;
    stream_t st;
    buf_t out;

    (void)state;
    memset(&req, 0, sizeof(req));
    buf_init(&out, 1 << 20);
    req.capture = &out;
    stream_init(&st, &req, "bench", "chatcmpl-abc", 1, 0);
    assert_int_equal(stream_begin(&st), 0);
    buf_reset(&out);
    assert_int_equal(stream_delta(&st, "", 0), 0);
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

/* oai_completion_text against oai_completion printed as http_send_json does. */
static void check_answer(const char *msg_json, const char *model, const char *fr,
                         const char *usage_json)
{
    json_object *m = json_tokener_parse(msg_json);
    json_object *u = usage_json ? json_tokener_parse(usage_json) : NULL;
    json_object *o = oai_completion("chatcmpl-x\"y", 1700000000, model, m, fr, u);
    const char *want;
    buf_t got;

    assert_non_null(m);
    assert_non_null(o);
    want = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
    buf_init(&got, 1 << 20);
    assert_int_equal(oai_completion_text(&got, "chatcmpl-x\"y", 1700000000, model, m, fr, u), 0);
    if (strcmp(buf_str(&got), want) != 0)
        fail_msg("got  %s\nwant %s", buf_str(&got), want);
    buf_free(&got);
    json_object_put(o);
    json_object_put(m);
    json_object_put(u);
}

static void test_whole_answer(void **state)
{
    json_object *m;
    char text[300];
    buf_t b;

    (void)state;
    check_answer("{\"role\":\"assistant\",\"content\":\"Hello\"}", "bench", "stop",
                 "{\"prompt_tokens\":9,\"completion_tokens\":7,\"total_tokens\":16}");
    check_answer("{\"role\":\"assistant\",\"content\":\"a/b \\\"q\\\" \\\\ \\u0001 caf\u00e9\"}",
                 "m/\"x\"", "", NULL);
    check_answer("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\","
                 "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]}",
                 "bench", "stop", "{\"prompt_tokens\":1}");
    check_answer("{\"role\":\"assistant\",\"content\":\"\"}", "bench", "length", NULL);
    /* flat members of every kind, written without json-c; and not flat */
    check_answer("{\"role\":\"assistant\",\"content\":\"x\",\"refusal\":null,\"k\\\"/\":true,"
                 "\"n\":-9007199254740993,\"f\":false}",
                 "bench", "stop", "{\"prompt_tokens\":9,\"x\":null,\"y\":\"s\",\"z\":false}");
    check_answer("{\"role\":\"assistant\",\"content\":\"x\"}", "bench", "stop",
                 "{\"prompt_tokens\":9,\"cost\":0.5,\"details\":{\"cached_tokens\":1}}");
    check_answer("{\"role\":\"assistant\",\"content\":\"x\",\"score\":1.25}", "bench", "stop", "{}");
    /* every byte value in the content, as the agent builds it */
    for (int c = 1; c < 256; c++)
        text[c - 1] = (char)c;
    m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string("assistant"));
    json_object_object_add(m, "content", json_object_new_string_len(text, 255));
    check_answer(json_object_to_json_string(m), "bench", "stop", NULL);
    json_object_put(m);
    /* not in the answer's form: the caller builds the object */
    buf_init(&b, 1 << 20);
    m = json_tokener_parse("{\"content\":\"x\",\"role\":\"assistant\"}");
    assert_int_equal(oai_completion_text(&b, "i", 1, "m", m, "stop", NULL), -EAGAIN);
    json_object_put(m);
    m = json_tokener_parse("{\"role\":\"assistant\"}");
    assert_int_equal(oai_completion_text(&b, "i", 1, "m", m, "stop", NULL), -EAGAIN);
    json_object_put(m);
    assert_int_equal(oai_completion_text(&b, "i", 1, "m", NULL, "stop", NULL), -EAGAIN);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_pieces),
        cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_empty_piece),
        cmocka_unit_test(test_whole_answer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
