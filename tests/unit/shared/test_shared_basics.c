/* Unit tests for shared/buf, shared/arena and shared/sse: the capped buffer,
 * the per-request arena and the incremental SSE parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shared/arena.h"
#include "shared/buf.h"
#include "shared/jtext.h"
#include "shared/pct.h"
#include "shared/sse.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void buf_appends_and_stays_terminated(void **state)
{
    buf_t b;
    (void)state;
    buf_init(&b, 100);
    assert_string_equal(buf_str(&b), "");
    assert_int_equal(buf_puts(&b, "hello"), 0);
    assert_int_equal(buf_printf(&b, " %d", 42), 0);
    assert_string_equal(buf_str(&b), "hello 42");
    assert_int_equal(b.len, 8);
    buf_consume(&b, 6);
    assert_string_equal(buf_str(&b), "42");
    buf_free(&b);
}

static void buf_refuses_past_cap_and_keeps_content(void **state)
{
    buf_t b;
    char big[64];
    (void)state;
    memset(big, 'x', sizeof(big));
    buf_init(&b, 10);
    assert_int_equal(buf_append(&b, big, 10), 0);
    assert_int_equal(buf_append(&b, "y", 1), -ENOSPC);
    assert_int_equal(buf_printf(&b, "%s", "z"), -ENOSPC);
    assert_int_equal(b.len, 10);
    assert_memory_equal(b.data, big, 10);
    /* a huge length must not wrap around */
    assert_int_equal(buf_append(&b, big, SIZE_MAX), -ENOSPC);
    buf_free(&b);
}

static void buf_detach_hands_over(void **state)
{
    buf_t b;
    char *s;
    (void)state;
    buf_init(&b, 100);
    s = buf_detach(&b);
    assert_string_equal(s, "");
    free(s);
    buf_puts(&b, "abc");
    s = buf_detach(&b);
    assert_string_equal(s, "abc");
    assert_null(b.data);
    free(s);
}

static int cleanup_count;
static void count_cleanup(void *p)
{
    (void)p;
    cleanup_count++;
}

static void arena_allocates_aligned_zeroed_and_resets(void **state)
{
    arena_t *a = arena_new(256);
    (void)state;
    assert_non_null(a);
    for (int round = 0; round < 3; round++) {
        cleanup_count = 0;
        for (int i = 0; i < 100; i++) {
            unsigned char *p = arena_alloc(a, (size_t)(i * 7 + 1));
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
            for (int k = 0; k < i * 7 + 1; k++)
                assert_int_equal(p[k], 0);
            memset(p, 0xAB, (size_t)(i * 7 + 1));
        }
        /* a block larger than the block size gets its own */
        assert_non_null(arena_alloc(a, 10000));
        assert_string_equal(arena_strndup(a, "abcdef", 3), "abc");
        assert_null(arena_strdup(a, NULL));
        arena_on_reset(a, count_cleanup, NULL);
        arena_on_reset(a, count_cleanup, NULL);
        arena_own_json(a, json_object_new_string("owned"));
        arena_own_malloc(a, malloc(10));
        assert_true(arena_used(a) > 10000);
        arena_reset(a);
        assert_int_equal(cleanup_count, 2);
        assert_int_equal(arena_used(a), 0);
    }
    arena_free(a);
}

/* SSE: collects events as "event|data|id" lines. */
struct sse_log {
    char text[4096];
    int n;
    int stop_after;
};

static int sse_collect(void *ud, const char *event, const char *data, size_t len, const char *id)
{
    struct sse_log *l = ud;
    size_t used = strlen(l->text);
    assert_int_equal(strlen(data), len);
    snprintf(l->text + used, sizeof(l->text) - used, "%s|%s|%s\n", event, data, id);
    l->n++;
    return l->stop_after && l->n >= l->stop_after ? 7 : 0;
}

static void sse_feed_all_splits(const char *stream, const char *expect)
{
    size_t n = strlen(stream);
    /* every split point, fed in two pieces, and byte by byte */
    for (size_t cut = 0; cut <= n; cut++) {
        struct sse_log l = { .text = "" };
        sse_parser_t *p = sse_new(1024, sse_collect, &l);
        assert_int_equal(sse_feed(p, stream, cut), 0);
        assert_int_equal(sse_feed(p, stream + cut, n - cut), 0);
        assert_string_equal(l.text, expect);
        sse_free(p);
    }
    {
        struct sse_log l = { .text = "" };
        sse_parser_t *p = sse_new(1024, sse_collect, &l);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(sse_feed(p, stream + i, 1), 0);
        assert_string_equal(l.text, expect);
        sse_free(p);
    }
}

static void sse_parses_events_across_any_split(void **state)
{
    (void)state;
    sse_feed_all_splits("data: {\"a\":1}\n\ndata: [DONE]\n\n", "message|{\"a\":1}|\nmessage|[DONE]|\n");
    sse_feed_all_splits("event: endpoint\r\ndata: /messages?s=1\r\n\r\n",
                        "endpoint|/messages?s=1|\n");
    sse_feed_all_splits(": keep-alive\n\nid: 7\nevent: message\ndata: a\ndata: b\n\n",
                        "message|a\nb|7\n");
    sse_feed_all_splits("data:no-space\r\rdata: x\n\n", "message|no-space|\nmessage|x|\n");
    /* an event without a blank line after it is not complete */
    sse_feed_all_splits("data: 1\n\ndata: partial\n", "message|1|\n");
    /* event types reset after each event; empty data events are skipped */
    sse_feed_all_splits("event: ping\n\nevent: a\ndata: 1\n\ndata: 2\n\n", "a|1|\nmessage|2|\n");
}

static void sse_reads_retry_and_stops_on_callback(void **state)
{
    struct sse_log l = { .text = "", .stop_after = 1 };
    sse_parser_t *p = sse_new(1024, sse_collect, &l);
    (void)state;
    assert_int_equal(sse_retry_ms(p), -1);
    assert_int_equal(sse_feed(p, "retry: 1500\ndata: 1\n\ndata: 2\n\n", 29), 7);
    assert_int_equal(sse_retry_ms(p), 1500);
    assert_int_equal(l.n, 1);
    sse_free(p);
}

static void sse_refuses_an_event_past_the_cap(void **state)
{
    struct sse_log l = { .text = "" };
    sse_parser_t *p = sse_new(16, sse_collect, &l);
    (void)state;
    assert_int_equal(sse_feed(p, "data: 0123456789abcdefXYZ", 25), -ENOSPC);
    assert_int_equal(sse_feed(p, "\n\n", 2), -ENOSPC);
    assert_int_equal(l.n, 0);
    sse_reset(p);
    assert_int_equal(sse_feed(p, "data: ok\n\n", 10), 0);
    assert_int_equal(l.n, 1);
    sse_free(p);
}

static void pct_decodes_lenient_and_strict(void **state)
{
    char out[16];
    (void)state;
    assert_int_equal(pct_decode("a%20b+c", 7, out, sizeof(out), PCT_PLUS_SPACE), 5);
    assert_string_equal(out, "a b c");
    assert_int_equal(pct_decode("a+b", 3, out, sizeof(out), 0), 3);
    assert_string_equal(out, "a+b");
    /* lenient keeps a malformed escape; strict refuses it and %00 */
    assert_int_equal(pct_decode("%zz%4", 5, out, sizeof(out), 0), 5);
    assert_string_equal(out, "%zz%4");
    assert_int_equal(pct_decode("%zz", 3, out, sizeof(out), PCT_STRICT), -EINVAL);
    assert_int_equal(pct_decode("%4", 2, out, sizeof(out), PCT_STRICT), -EINVAL);
    assert_int_equal(pct_decode("a%00", 4, out, sizeof(out), PCT_STRICT), -EILSEQ);
    assert_int_equal(pct_decode("%41%42", 6, out, sizeof(out), PCT_STRICT), 2);
    assert_string_equal(out, "AB");
    /* never writes past dcap */
    assert_int_equal(pct_decode("abcdef", 6, out, 4, 0), -ENOSPC);
    /* found by fuzz_pct: an empty input into no room must not claim a result */
    assert_int_equal(pct_decode("", 0, out, 0, 0), -ENOSPC);
}

static void jtext_takes_and_releases(void **state)
{
    json_object *o = json_object_new_object();
    char *s;
    (void)state;
    json_object_object_add(o, "url", json_object_new_string("a/b"));
    s = jtext_take(o);
    assert_string_equal(s, "{\"url\":\"a/b\"}");
    free(s);
    assert_null(jtext_take(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buf_appends_and_stays_terminated),
        cmocka_unit_test(buf_refuses_past_cap_and_keeps_content),
        cmocka_unit_test(buf_detach_hands_over),
        cmocka_unit_test(arena_allocates_aligned_zeroed_and_resets),
        cmocka_unit_test(sse_parses_events_across_any_split),
        cmocka_unit_test(sse_reads_retry_and_stops_on_callback),
        cmocka_unit_test(sse_refuses_an_event_past_the_cap),
        cmocka_unit_test(pct_decodes_lenient_and_strict),
        cmocka_unit_test(jtext_takes_and_releases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
