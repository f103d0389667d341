/* The chat chunk stream over a captured request: a content chunk, written
 * straight as text (stream.c), is byte for byte what the json-c builders
 * (oai_chunk + oai_sse_event) write for the same piece, whatever bytes the
 * piece, the model name and include_usage hold. */
#include "fcgi/core/stream.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_pieces),
        cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_empty_piece),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
