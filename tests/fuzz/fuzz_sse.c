/* fuzz_sse — shared/sse.h: sse_feed on arbitrary bytes, cut at random.
 *
 * Input: byte 0 picks the event cap, byte 1 seeds the cut points, the rest is
 * the stream. Beyond "no crash, no leak" it checks that the events (and the
 * final outcome) are the same whether the stream arrives whole or in pieces,
 * and the same again after sse_reset. */
#include "shared/buf.h"
#include "shared/sse.h"
#include "tests/fuzz/fuzz_split.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Every event as "event\0id\0len:data\n", so two runs compare with memcmp. */
static int record(void *ud, const char *event, const char *data, size_t len, const char *id)
{
    buf_t *b = ud;

    if (!event || !data || !id || data[len] != '\0')
        abort();    /* the contract: len bytes then a NUL (data may hold NULs too) */
    if (buf_printf(b, "%s%c%s%c%zu:", event, 0, id, 0, len) < 0 || buf_append(b, data, len) < 0 ||
        buf_append(b, "\n", 1) < 0)
        abort();
    return 0;
}

typedef struct run {
    buf_t events;
    int rc;
    long retry;
} run_t;

static void run_feed(sse_parser_t *p, const char *d, size_t n, uint8_t seed, int split, run_t *r)
{
    fuzz_split_t s;
    size_t off = 0, take;
    int rc = 0;

    fuzz_split_init(&s, seed);
    while (off < n && rc == 0) {
        take = split ? fuzz_split_next(&s, n - off) : n - off;
        if (off == 0 && take < 3)
            take = n < 3 ? n : 3;   /* a BOM is only recognised in the first read */
        rc = sse_feed(p, d + off, take);
        off += take;
    }
    r->rc = rc;
    r->retry = sse_retry_ms(p);
}

static void same(const run_t *a, const run_t *b)
{
    if (a->rc != b->rc || a->retry != b->retry || a->events.len != b->events.len ||
        (a->events.len && memcmp(a->events.data, b->events.data, a->events.len) != 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t caps[] = {16, 64, 256, 65536};
    run_t whole, cut, again;
    sse_parser_t *p = NULL, *q = NULL;
    const char *d;
    size_t n;
    uint8_t seed;

    if (size < 2)
        return 0;
    d = (const char *)data + 2;
    n = size - 2;
    seed = data[1];
    buf_init(&whole.events, 64u << 20);
    buf_init(&cut.events, 64u << 20);

    p = sse_new(caps[data[0] & 3], record, &whole.events);
    q = sse_new(caps[data[0] & 3], record, &cut.events);
    if (!p || !q)
        abort();
    run_feed(p, d, n, seed, 0, &whole);
    run_feed(q, d, n, seed, 1, &cut);
    if (whole.rc != 0 && whole.rc != -ENOSPC)
        abort();
    same(&whole, &cut);

    /* a reset parser starts a fresh stream: the same input, cut the same
     * way, gives the same events again */
    again = whole;
    buf_init(&whole.events, 64u << 20);
    sse_reset(p);
    run_feed(p, d, n, seed, 1, &whole);
    same(&whole, &again);

    sse_free(p);
    sse_free(q);
    buf_free(&whole.events);
    buf_free(&cut.events);
    buf_free(&again.events);
    return 0;
}
