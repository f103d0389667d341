/* Unit tests of usage accounting's pure parts: bucket names and labels, the
 * times a query accepts, fields and their split, the query's parameters, and
 * the sums rendered as JSON and CSV. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "fcgi/usage/usage_agg.h"
#include "fcgi/usage/usage_q.h"
#include "fcgi/admin/admin_route.h"
#include "shared/cfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2026-12-07T21:34:56Z */
#define T0 1796679296LL

static void test_buckets(void **st)
{
    (void)st;
    char b[USAGE_BUCKET_MAX], l[USAGE_TIME_MAX];
    assert_int_equal(usage_bucket_start(T0, USAGE_HOUR), T0 - 34 * 60 - 56);
    assert_int_equal(usage_bucket_start(T0, USAGE_DAY), T0 - 21 * 3600 - 34 * 60 - 56);
    usage_bucket_name(T0, USAGE_HOUR, b);
    assert_string_equal(b, "2026120721");
    usage_bucket_name(T0, USAGE_DAY, b);
    assert_string_equal(b, "20261207");
    usage_bucket_label(T0, USAGE_HOUR, l);
    assert_string_equal(l, "2026-12-07T21:00:00Z");
    usage_bucket_label(T0, USAGE_DAY, l);
    assert_string_equal(l, "2026-12-07");
    usage_time_format(T0, l);
    assert_string_equal(l, "2026-12-07T21:34:56Z");
    usage_time_format(0, l);
    assert_string_equal(l, "1970-01-01T00:00:00Z");
    /* a leap day and the turn of a year */
    usage_bucket_name(1709164800LL, USAGE_DAY, b);   /* 2024-02-29 */
    assert_string_equal(b, "20240229");
    usage_bucket_name(1798761599LL, USAGE_HOUR, b);  /* 2026-12-31T23:59:59Z */
    assert_string_equal(b, "2026123123");
}

static void test_time_parse(void **st)
{
    (void)st;
    long long t = -1;
    assert_int_equal(usage_time_parse("1796679296", 0, &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(usage_time_parse("2026-12-07T21:34:56Z", 0, &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(usage_time_parse("2026-12-07t21:34:56.123z", 0, &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(usage_time_parse("2026-12-07T22:34:56+01:00", 0, &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(usage_time_parse("2026-12-07T22:34:56 01:00", 0, &t), 0);  /* '+' as space */
    assert_int_equal(t, T0);
    assert_int_equal(usage_time_parse("2026-12-07T20:04:56-01:30", 0, &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(usage_time_parse("2026-12-07", 0, &t), 0);
    assert_int_equal(t, usage_bucket_start(T0, USAGE_DAY));
    assert_int_equal(usage_time_parse("2026-12-07", 1, &t), 0);   /* to=<day>: the whole day */
    assert_int_equal(t, usage_bucket_start(T0, USAGE_DAY) + 86400);
    assert_int_equal(usage_time_parse("2024-02-29", 0, &t), 0);
    static const char *const bad[] = {
        "", "abc", "2026-13-01", "2026-02-29", "2026-12-07T25:00:00Z", "2026-12-07T21:00Z",
        "2026-12-07T21:00:00", "2026-12-07T21:00:00+0100", "2026/12/07", "1234567890123",
        "-5", "2026-12-07T21:00:00.Z", "1969-12-31", "2026-12-07X", NULL,
    };
    for (const char *const *b = bad; *b; b++)
        assert_int_equal(usage_time_parse(*b, 0, &t), -EINVAL);
}

static void test_fields(void **st)
{
    (void)st;
    char id[USAGE_ID_MAX + 1], f[USAGE_FIELD_MAX], p[USAGE_ID_MAX + 1], a[USAGE_ID_MAX + 1];
    const char *m = NULL;
    usage_id_clean("static:0123abcd", id);
    assert_string_equal(id, "static:0123abcd");
    usage_id_clean("apiman:a|b c/d", id);
    assert_string_equal(id, "apiman:a_b_c_d");
    usage_id_clean(NULL, id);
    assert_string_equal(id, "-");
    usage_id_clean("", id);
    assert_string_equal(id, "-");
    char longs[300];
    memset(longs, 'x', sizeof(longs) - 1);
    longs[sizeof(longs) - 1] = '\0';
    usage_id_clean(longs, id);
    assert_int_equal(strlen(id), USAGE_ID_MAX);

    assert_int_equal(usage_field(f, sizeof(f), "key_00112233445566aa", "helper", "t:demo"), 0);
    assert_string_equal(f, "key_00112233445566aa|helper|t:demo");
    assert_int_equal(usage_field_split(f, p, a, &m), 0);
    assert_string_equal(p, "key_00112233445566aa");
    assert_string_equal(a, "helper");
    assert_string_equal(m, "t:demo");
    assert_int_equal(usage_field(f, 7, "a", "b", "req"), -ENOSPC);
    assert_int_equal(usage_field_split("a|b", p, a, &m), -EINVAL);
    assert_int_equal(usage_field_split("a|b|", p, a, &m), -EINVAL);
    assert_int_equal(usage_field_split("|b|req", p, a, &m), -EINVAL);
}

static int parse(const usage_params_t *p, usage_query_t *q, const char **param)
{
    char err[256];
    *param = NULL;
    return usage_query_parse(p, T0, q, err, sizeof(err), param);
}

static void test_query(void **st)
{
    (void)st;
    usage_query_t q;
    const char *param;
    usage_params_t p;

    memset(&p, 0, sizeof(p));
    assert_int_equal(parse(&p, &q, &param), 0);   /* the last 24 h, by hour */
    assert_int_equal(q.to, T0);
    assert_int_equal(q.from, T0 - 86400);
    assert_int_equal(q.gran, USAGE_HOUR);
    assert_int_equal(q.nbuckets, 25);
    assert_int_equal(q.group, USAGE_G_KEY | USAGE_G_ASSISTANT | USAGE_G_TIME);
    assert_null(q.key);
    assert_false(q.csv);

    p.from = "2026-11-01";
    p.to = "2026-11-30";
    assert_int_equal(parse(&p, &q, &param), 0);   /* > 48 h: by day, to's day included */
    assert_int_equal(q.gran, USAGE_DAY);
    assert_int_equal(q.nbuckets, 30);
    p.granularity = "hour";
    assert_int_equal(parse(&p, &q, &param), 0);
    assert_int_equal(q.nbuckets, 30 * 24);
    p.from = "2026-01-01";
    assert_int_equal(parse(&p, &q, &param), -EINVAL);  /* past CAP_USAGE_BUCKETS hours */
    assert_string_equal(param, "from");
    p.granularity = "day";
    assert_int_equal(parse(&p, &q, &param), 0);
    p.granularity = "week";
    assert_int_equal(parse(&p, &q, &param), -EINVAL);
    assert_string_equal(param, "granularity");

    memset(&p, 0, sizeof(p));
    p.from = "1796679296";
    p.to = "1796679296";
    assert_int_equal(parse(&p, &q, &param), -EINVAL);
    assert_string_equal(param, "from");
    p.from = "yesterday";
    p.to = NULL;
    assert_int_equal(parse(&p, &q, &param), -EINVAL);
    assert_string_equal(param, "from");
    p.from = NULL;
    p.to = "soon";
    assert_int_equal(parse(&p, &q, &param), -EINVAL);
    assert_string_equal(param, "to");

    memset(&p, 0, sizeof(p));
    p.group_by = "assistant,key";
    p.key = "static:0123abcd";
    p.assistant = "helper";
    p.format = "csv";
    assert_int_equal(parse(&p, &q, &param), 0);
    assert_int_equal(q.group, USAGE_G_KEY | USAGE_G_ASSISTANT);
    assert_string_equal(q.key, "static:0123abcd");
    assert_string_equal(q.assistant, "helper");
    assert_true(q.csv);
    p.group_by = "";
    assert_int_equal(parse(&p, &q, &param), 0);
    assert_int_equal(q.group, 0);
    p.group_by = "key,model";
    assert_int_equal(parse(&p, &q, &param), -EINVAL);
    assert_string_equal(param, "group_by");
    p.group_by = NULL;
    p.key = "a|b";
    assert_int_equal(parse(&p, &q, &param), -EINVAL);
    assert_string_equal(param, "key");
    p.key = NULL;
    p.assistant = "../x";
    assert_int_equal(parse(&p, &q, &param), -EINVAL);
    assert_string_equal(param, "assistant");
    p.assistant = "-";
    assert_int_equal(parse(&p, &q, &param), 0);
    p.format = "xml";
    assert_int_equal(parse(&p, &q, &param), -EINVAL);
    assert_string_equal(param, "format");
    p.format = NULL;
    p.accept = "text/csv";
    assert_int_equal(parse(&p, &q, &param), 0);
    assert_true(q.csv);
}

static long long jint(json_object *o, const char *k)
{
    json_object *v = NULL;
    assert_true(json_object_object_get_ex(o, k, &v));
    return json_object_get_int64(v);
}

static void test_agg(void **st)
{
    (void)st;
    usage_params_t p;
    usage_query_t q;
    const char *param;
    long long h0 = usage_bucket_start(T0, USAGE_HOUR) - 3600, h1 = h0 + 3600;

    memset(&p, 0, sizeof(p));
    assert_int_equal(parse(&p, &q, &param), 0);
    usage_agg_t *g = usage_agg_new(&q);
    assert_non_null(g);
    assert_int_equal(usage_agg_add(g, h1, "static:bb|helper|req", "2"), 0);
    assert_int_equal(usage_agg_add(g, h1, "static:bb|helper|pt", "10"), 0);
    assert_int_equal(usage_agg_add(g, h1, "static:bb|helper|ct", "5"), 0);
    assert_int_equal(usage_agg_add(g, h1, "static:bb|helper|uus", "1600"), 0);
    assert_int_equal(usage_agg_add(g, h1, "static:bb|helper|t:demo", "3"), 0);
    assert_int_equal(usage_agg_add(g, h1, "static:bb|helper|tc", "3"), 0);
    assert_int_equal(usage_agg_add(g, h0, "static:aa|-|req", "1"), 0);
    assert_int_equal(usage_agg_add(g, h0, "static:aa|-|err", "1"), 0);
    assert_int_equal(usage_agg_add(g, h0, "static:aa|-|bogus", "1"), 0);   /* skipped */
    assert_int_equal(usage_agg_add(g, h0, "static:aa|-|req", "x"), 0);     /* skipped */
    assert_int_equal(usage_agg_add(g, h0, "not a field", "1"), 0);         /* skipped */
    json_object *doc = usage_agg_json(g, "a note");
    assert_non_null(doc);
    assert_string_equal(json_object_get_string(json_object_object_get(doc, "object")), "usage");
    assert_string_equal(json_object_get_string(json_object_object_get(doc, "granularity")),
                        "hour");
    assert_string_equal(json_object_get_string(json_object_object_get(doc, "note")), "a note");
    json_object *rows = json_object_object_get(doc, "rows");
    assert_int_equal(json_object_array_length(rows), 2);
    json_object *r0 = json_object_array_get_idx(rows, 0), *r1 = json_object_array_get_idx(rows, 1);
    assert_string_equal(json_object_get_string(json_object_object_get(r0, "key")), "static:aa");
    assert_int_equal(jint(r0, "errors"), 1);
    assert_int_equal(jint(r1, "requests"), 2);
    assert_int_equal(jint(r1, "total_tokens"), 15);
    assert_int_equal(jint(r1, "upstream_ms"), 2);   /* 1600 µs, rounded */
    assert_int_equal(jint(json_object_object_get(r1, "tool_calls"), "demo"), 3);
    json_object *tot = json_object_object_get(doc, "totals");
    assert_int_equal(jint(tot, "requests"), 3);
    assert_int_equal(jint(tot, "prompt_tokens"), 10);
    assert_false(json_object_object_get_ex(tot, "key", NULL));
    json_object_put(doc);

    size_t len = 0;
    char *csv = usage_agg_csv(g, &len);
    assert_non_null(csv);
    char want[1024];
    snprintf(want, sizeof(want),
             "key,assistant,time,requests,errors,prompt_tokens,completion_tokens,total_tokens,"
             "upstream_ms,tool_calls_total,tool_calls.demo\r\n"
             "static:aa,-,%s,1,1,0,0,0,0,0,0\r\n"
             "static:bb,helper,%s,2,0,10,5,15,2,3,3\r\n",
             "2026-12-07T20:00:00Z", "2026-12-07T21:00:00Z");
    assert_string_equal(csv, want);
    assert_int_equal(len, strlen(want));
    free(csv);
    assert_int_equal(usage_agg_add(g, h0, "static:aa|-|req", "1"), -EALREADY);
    usage_agg_free(g);

    /* filters, and grouping by key only sums over assistants and hours */
    p.group_by = "key";
    p.assistant = "helper";
    assert_int_equal(parse(&p, &q, &param), 0);
    g = usage_agg_new(&q);
    assert_int_equal(usage_agg_add(g, h0, "static:bb|helper|req", "1"), 0);
    assert_int_equal(usage_agg_add(g, h1, "static:bb|helper|req", "2"), 0);
    assert_int_equal(usage_agg_add(g, h1, "static:bb|other|req", "7"), 0);
    csv = usage_agg_csv(g, &len);
    assert_string_equal(csv, "key,requests,errors,prompt_tokens,completion_tokens,total_tokens,"
                             "upstream_ms,tool_calls_total\r\nstatic:bb,3,0,0,0,0,0,0\r\n");
    free(csv);
    usage_agg_free(g);
}

/* settings: usage: {retention_hours, retention_days, flush_ms}, and the admin route */
static void test_settings(void **st)
{
    (void)st;
    char err[512];
    json_object *s = json_tokener_parse("{\"usage\": {\"retention_days\": 30.0}}");
    assert_int_equal(cfg_check_settings(s, err, sizeof(err)), 0);
    json_object *u = json_object_object_get(s, "usage");
    assert_int_equal(jint(u, "retention_hours"), 48);
    assert_int_equal(jint(u, "retention_days"), 30);
    assert_false(json_object_object_get_ex(u, "flush_ms", NULL));   /* no default written */
    json_object_put(s);
    s = json_tokener_parse("{\"usage\": {\"flush_ms\": 0}}");
    assert_int_equal(cfg_check_settings(s, err, sizeof(err)), 0);
    assert_int_equal(jint(json_object_object_get(s, "usage"), "flush_ms"), 0);
    json_object_put(s);
    static const char *const bad[] = {
        "{\"usage\": {\"flush_ms\": -1}}", "{\"usage\": {\"flush_ms\": 600001}}",
        "{\"usage\": {\"flush_ms\": 1.5}}",
        "{\"usage\": {\"retention_hours\": 0}}", "{\"usage\": {\"retention_days\": 1.5}}",
        "{\"usage\": {\"retention_days\": \"90\"}}", "{\"usage\": {\"keep\": 1}}",
        "{\"usage\": 48}", NULL,
    };
    for (const char *const *b = bad; *b; b++) {
        s = json_tokener_parse(*b);
        assert_int_equal(cfg_check_settings(s, err, sizeof(err)), -EINVAL);
        assert_memory_equal(err, "usage", 5);
        json_object_put(s);
    }
    s = json_tokener_parse("{}");
    assert_int_equal(cfg_check_settings(s, err, sizeof(err)), 0);
    assert_false(json_object_object_get_ex(s, "usage", NULL));
    json_object_put(s);

    admin_route_t r;
    assert_int_equal(admin_route_parse("/admin/usage", &r), 0);
    assert_int_equal(r.target, ADMIN_T_USAGE);
    assert_true(admin_route_allows(&r, "GET"));
    assert_false(admin_route_allows(&r, "POST"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_agg),
        cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
