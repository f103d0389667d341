/* limit_wire: the limiter's pure parts — policy to script arguments, the
 * gate script's reply, durations and headers as OpenAI writes them, and the
 * 429's words. The Lua scripts run against a real Redis in
 * tests/integration/limits.test.js. */
#include "fcgi/limit/limit_wire.h"
#include "shared/cfg.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static void test_duration(void **state)
{
    char b[32];

    (void)state;
    assert_string_equal(limit_duration(0, b, sizeof b), "0s");
    assert_string_equal(limit_duration(-5, b, sizeof b), "0s");
    assert_string_equal(limit_duration(120, b, sizeof b), "120ms");
    assert_string_equal(limit_duration(999, b, sizeof b), "999ms");
    assert_string_equal(limit_duration(1000, b, sizeof b), "1s");
    assert_string_equal(limit_duration(6000, b, sizeof b), "6s");
    assert_string_equal(limit_duration(6500, b, sizeof b), "6.5s");
    assert_string_equal(limit_duration(1146, b, sizeof b), "1.146s");
    assert_string_equal(limit_duration(60000, b, sizeof b), "1m0s");
    assert_string_equal(limit_duration(360000, b, sizeof b), "6m0s");
    assert_string_equal(limit_duration(61250, b, sizeof b), "1m1.25s");
    assert_string_equal(limit_duration(3723000, b, sizeof b), "1h2m3s");
    assert_string_equal(limit_duration(3600000, b, sizeof b), "1h0m0s");
    /* a small buffer cuts, never overflows */
    assert_int_equal(strlen(limit_duration(3723000, b, 4)), 3);
}

static void test_pol_from(void **state)
{
    limit_pol_t p;
    json_object *o;

    (void)state;
    assert_int_equal(limit_pol_from(NULL, &p), 0);
    assert_int_equal(p.rpm + p.tpm + p.conc + p.day + p.month, 0);
    o = json_tokener_parse("{\"assistants\":[\"a*\"],\"tools\":{\"deny\":[\"x\"]}}");
    assert_int_equal(limit_pol_from(o, &p), 0);   /* visibility only: no round trip */
    json_object_put(o);
    o = json_tokener_parse("{\"rpm\":10,\"tpm\":5000,\"max_concurrent\":2,"
                           "\"budget\":{\"tokens_per_day\":100,\"tokens_per_month\":3000}}");
    assert_int_equal(limit_pol_from(o, &p), 1);
    assert_int_equal(p.rpm, 10);
    assert_int_equal(p.tpm, 5000);
    assert_int_equal(p.conc, 2);
    assert_int_equal(p.day, 100);
    assert_int_equal(p.month, 3000);
    json_object_put(o);
    /* not positive integers: unset; huge: capped */
    o = json_tokener_parse("{\"rpm\":0,\"tpm\":-3,\"max_concurrent\":\"2\",\"budget\":"
                           "{\"tokens_per_day\":1.5,\"tokens_per_month\":99999999999999999}}");
    assert_int_equal(limit_pol_from(o, &p), 1);
    assert_int_equal(p.rpm + p.tpm + p.conc + p.day, 0);
    assert_true(p.month == 1000000000000000LL);
    json_object_put(o);
}

static void test_cmds(void **state)
{
    limit_pol_t p = {.rpm = 10, .tpm = 0, .conc = 2, .day = 100, .month = 0};
    limit_cmd_t c;
    char base[64];

    (void)state;
    assert_int_equal(limit_base(base, sizeof base, "aiproxy:", "key_0123456789abcdef"), 0);
    assert_string_equal(base, "aiproxy:lim:key_0123456789abcdef:");
    assert_int_equal(limit_base(base, 10, "aiproxy:", "key_0123456789abcdef"), -ENOSPC);
    limit_cmd_gate(&c, "abc", "P:lim:k:", &p, "m1", 3600000);
    assert_int_equal(c.argc, 11);
    const char *want[] = {"EVALSHA", "abc", "1", "P:lim:k:", "10", "0", "2", "100", "0", "m1",
                          "3600000"};
    for (int i = 0; i < 11; i++)
        assert_string_equal(c.argv[i], want[i]);
    p.conc = 0;                                    /* no slot without max_concurrent */
    limit_cmd_gate(&c, "abc", "P:lim:k:", &p, "m1", 1000);
    assert_string_equal(c.argv[9], "");
    limit_cmd_end(&c, "def", "P:lim:k:", &p, "m1", 1234);
    const char *want_end[] = {"EVALSHA", "def", "1", "P:lim:k:", "0", "100", "0", "m1", "1234"};
    assert_int_equal(c.argc, 9);
    for (int i = 0; i < 9; i++)
        assert_string_equal(c.argv[i], want_end[i]);
    limit_cmd_end(&c, "def", "P:lim:k:", &p, NULL, -5);
    assert_string_equal(c.argv[7], "");
    assert_string_equal(c.argv[8], "0");
}

/* A reply as hiredis builds it, on the stack. */
typedef struct fake_reply {
    redisReply arr, el[11];
    redisReply *ptrs[11];
} fake_reply_t;

static redisReply *fake(fake_reply_t *f, const long long *n, size_t count)
{
    memset(f, 0, sizeof(*f));
    f->arr.type = REDIS_REPLY_ARRAY;
    f->arr.elements = count;
    f->arr.element = f->ptrs;
    for (size_t i = 0; i < count; i++) {
        f->el[i].type = REDIS_REPLY_INTEGER;
        f->el[i].integer = n[i];
        f->ptrs[i] = &f->el[i];
    }
    return &f->arr;
}

static void test_parse(void **state)
{
    static const long long ok[11] = {0, 7, 18000, 4000, 12000, 0, 50, 60, 1,
                                     1800000000123456LL, 5};
    static const long long bad_verdict[9] = {9, 0, 0, 0, 0, 0, 0, 0, 0};
    fake_reply_t f;
    limit_verdict_t v;
    redisReply err = {.type = REDIS_REPLY_ERROR, .str = "NOSCRIPT No matching script", .len = 27};

    (void)state;
    assert_int_equal(limit_parse_gate(fake(&f, ok, 9), &v), 0);
    assert_int_equal(v.verdict, LIMIT_OK);
    assert_int_equal(v.req_remaining, 7);
    assert_int_equal(v.req_reset_ms, 18000);
    assert_int_equal(v.tok_remaining, 4000);
    assert_int_equal(v.tok_reset_ms, 12000);
    assert_int_equal(v.used_day, 50);
    assert_int_equal(v.used_month, 60);
    assert_int_equal(v.inflight, 1);
    assert_int_equal(v.now_us, 0);                     /* no clock: unknown */
    /* the 10th integer is the clock the gate read (the end is given it) */
    assert_int_equal(limit_parse_gate(fake(&f, ok, 10), &v), 0);
    assert_int_equal(v.inflight, 1);
    assert_int_equal(v.now_us, 1800000000123456LL);
    assert_int_equal(limit_parse_gate(fake(&f, ok, 11), &v), -EIO);
    assert_int_equal(limit_parse_gate(fake(&f, ok, 8), &v), -EIO);
    assert_int_equal(limit_parse_gate(fake(&f, bad_verdict, 9), &v), -EIO);
    fake(&f, ok, 9);
    f.el[3].type = REDIS_REPLY_STRING;
    assert_int_equal(limit_parse_gate(&f.arr, &v), -EIO);
    assert_int_equal(limit_parse_gate(&err, &v), -EIO);
    assert_int_equal(limit_parse_gate(NULL, &v), -EIO);
}

static const char *hval(const limit_hdr_t *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(h[i].name, name) == 0)
            return h[i].value;
    return NULL;
}

static void test_headers(void **state)
{
    limit_pol_t p = {.rpm = 10, .tpm = 6000};
    limit_verdict_t v = {.verdict = LIMIT_OK, .req_remaining = 9, .req_reset_ms = 6000,
                         .tok_remaining = 5900, .tok_reset_ms = 1000};
    limit_hdr_t h[LIMIT_HDR_MAX];
    size_t n;

    (void)state;
    n = limit_headers(&p, &v, h, LIMIT_HDR_MAX);
    assert_int_equal(n, 6);
    assert_string_equal(hval(h, n, "x-ratelimit-limit-requests"), "10");
    assert_string_equal(hval(h, n, "x-ratelimit-remaining-requests"), "9");
    assert_string_equal(hval(h, n, "x-ratelimit-reset-requests"), "6s");
    assert_string_equal(hval(h, n, "x-ratelimit-limit-tokens"), "6000");
    assert_string_equal(hval(h, n, "x-ratelimit-remaining-tokens"), "5900");
    assert_string_equal(hval(h, n, "x-ratelimit-reset-tokens"), "1s");
    assert_null(hval(h, n, "Retry-After"));
    /* refused on rpm: Retry-After rounded up, and the exact ms */
    p.tpm = 0;
    v.verdict = LIMIT_RPM;
    v.req_remaining = 0;
    v.retry_ms = 1200;
    n = limit_headers(&p, &v, h, LIMIT_HDR_MAX);
    assert_int_equal(n, 5);
    assert_string_equal(hval(h, n, "Retry-After"), "2");
    assert_string_equal(hval(h, n, "retry-after-ms"), "1200");
    assert_null(hval(h, n, "x-should-retry"));
    assert_null(hval(h, n, "x-ratelimit-limit-tokens"));
    /* a spent daily budget: don't retry, Retry-After says when it resets */
    p = (limit_pol_t){.day = 100};
    v = (limit_verdict_t){.verdict = LIMIT_DAY, .retry_ms = 7366000, .used_day = 150};
    n = limit_headers(&p, &v, h, LIMIT_HDR_MAX);
    assert_int_equal(n, 2);
    assert_string_equal(hval(h, n, "Retry-After"), "7366");
    assert_string_equal(hval(h, n, "x-should-retry"), "false");
    /* monthly: no Retry-After (weeks are not a retry) */
    v.verdict = LIMIT_MONTH;
    n = limit_headers(&p, &v, h, LIMIT_HDR_MAX);
    assert_int_equal(n, 1);
    assert_string_equal(hval(h, n, "x-should-retry"), "false");
    /* the cap is kept */
    p = (limit_pol_t){.rpm = 1, .tpm = 1};
    v = (limit_verdict_t){.verdict = LIMIT_TPM, .retry_ms = 10};
    assert_int_equal(limit_headers(&p, &v, h, 3), 3);
}

static void test_refusal(void **state)
{
    limit_pol_t p = {.rpm = 10, .tpm = 6000, .conc = 1, .day = 100, .month = 2000};
    limit_verdict_t v = {.verdict = LIMIT_RPM, .retry_ms = 5800};
    aip_err_t e;

    (void)state;
    assert_int_equal(limit_refusal(&p, &v, &e), -EIO);
    assert_int_equal(e.status, 429);
    assert_string_equal(e.type, "rate_limit_error");
    assert_string_equal(e.code, "rate_limit_exceeded");
    assert_non_null(strstr(e.msg, "requests per minute"));
    assert_non_null(strstr(e.msg, "limit 10"));
    assert_non_null(strstr(e.msg, "5.8s"));
    v.verdict = LIMIT_TPM;
    limit_refusal(&p, &v, &e);
    assert_string_equal(e.code, "rate_limit_exceeded");
    assert_non_null(strstr(e.msg, "tokens per minute (TPM): limit 6000"));
    v.verdict = LIMIT_CONC;
    limit_refusal(&p, &v, &e);
    assert_string_equal(e.code, "rate_limit_exceeded");
    assert_non_null(strstr(e.msg, "limit 1 in flight"));
    v = (limit_verdict_t){.verdict = LIMIT_DAY, .retry_ms = 3600000, .used_day = 120};
    limit_refusal(&p, &v, &e);
    assert_int_equal(e.status, 429);
    assert_string_equal(e.type, "rate_limit_error");
    assert_string_equal(e.code, "insufficient_quota");
    assert_non_null(strstr(e.msg, "120 of 100 tokens used today"));
    assert_non_null(strstr(e.msg, "in 1h0m0s"));
    v.verdict = LIMIT_MONTH;
    v.used_month = 2500;
    limit_refusal(&p, &v, &e);
    assert_string_equal(e.code, "insufficient_quota");
    assert_non_null(strstr(e.msg, "2500 of 2000 tokens used this month"));
}

/* settings.limits: booleans with their defaults filled in, nothing else. */
static void test_settings(void **state)
{
    static const char *const bad[] = {
        "{\"limits\":{\"fail_open_rate\":1}}",
        "{\"limits\":{\"fail_open_budget\":\"yes\"}}",
        "{\"limits\":{\"fail_open\":true}}",
        "{\"limits\":[true]}",
    };
    char err[256];
    json_object *s;

    (void)state;
    s = json_tokener_parse("{\"limits\":{\"fail_open_budget\":true}}");
    assert_int_equal(cfg_check_settings(s, err, sizeof err), 0);
    assert_string_equal(json_object_to_json_string_ext(json_object_object_get(s, "limits"),
                                                       JSON_C_TO_STRING_PLAIN),
                        "{\"fail_open_rate\":true,\"fail_open_budget\":true}");
    json_object_put(s);
    s = json_tokener_parse("{}");
    assert_int_equal(cfg_check_settings(s, err, sizeof err), 0);   /* absent: the defaults */
    json_object_put(s);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s = json_tokener_parse(bad[i]);
        assert_int_equal(cfg_check_settings(s, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "limits"));
        json_object_put(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_pol_from),
        cmocka_unit_test(test_cmds),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_refusal),
        cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
