/* metrics: the Prometheus text (HELP/TYPE once, escaping, cumulative
 * histograms with +Inf == _count), the shared series table (interning,
 * overflow into "other"), and a request's figures rendered. */
#include "fcgi/metrics/metrics.h"
#include "fcgi/metrics/mstore.h"
#include "shared/mtext.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

static void test_family_and_escaping(void **state)
{
    const char *ln[2] = { "route", "tool" };
    const char *lv[2] = { "/v1/x", "a\"b\\c\nd" };
    buf_t b;

    (void)state;
    buf_init(&b, 4096);
    assert_int_equal(mtext_family(&b, "x_total", "counter", "back\\slash and\nnewline \"kept\""), 0);
    assert_int_equal(mtext_sample(&b, "x_total", ln, lv, 2, "3"), 0);
    assert_int_equal(mtext_sample(&b, "y", NULL, NULL, 0, "1"), 0);
    assert_string_equal(buf_str(&b),
                        "# HELP x_total back\\\\slash and\\nnewline \"kept\"\n"
                        "# TYPE x_total counter\n"
                        "x_total{route=\"/v1/x\",tool=\"a\\\"b\\\\c\\nd\"} 3\n"
                        "y 1\n");
    buf_free(&b);
}

static void test_histogram_cumulative(void **state)
{
    const char *ln[1] = { "server" };
    const char *lv[1] = { "demo" };
    const double bounds[3] = { 0.1, 1, 2.5 };
    const uint64_t counts[4] = { 2, 0, 3, 1 };
    buf_t b;

    (void)state;
    buf_init(&b, 4096);
    assert_int_equal(mtext_histogram(&b, "t", ln, lv, 1, bounds, 3, counts, 4.25), 0);
    assert_string_equal(buf_str(&b),
                        "t_bucket{server=\"demo\",le=\"0.1\"} 2\n"
                        "t_bucket{server=\"demo\",le=\"1\"} 2\n"
                        "t_bucket{server=\"demo\",le=\"2.5\"} 5\n"
                        "t_bucket{server=\"demo\",le=\"+Inf\"} 6\n"
                        "t_sum{server=\"demo\"} 4.25\n"
                        "t_count{server=\"demo\"} 6\n");
    buf_reset(&b);
    assert_int_equal(mtext_histogram(&b, "r", NULL, NULL, 0, bounds, 1, counts, 0), 0);
    assert_string_equal(buf_str(&b), "r_bucket{le=\"0.1\"} 2\nr_bucket{le=\"+Inf\"} 2\n"
                                     "r_sum 0\nr_count 2\n");
    buf_free(&b);
}

static void test_cap_is_an_error(void **state)
{
    buf_t b;

    (void)state;
    buf_init(&b, 16);
    assert_int_equal(mtext_family(&b, "a_long_metric_name", "gauge", "help"), -ENOSPC);
    buf_free(&b);
}

static void test_numbers(void **state)
{
    char s[32];

    (void)state;
    assert_string_equal(mtext_f(0.005, s, sizeof s), "0.005");
    assert_string_equal(mtext_f(1.0 / 0.0, s, sizeof s), "+Inf");
    assert_string_equal(mtext_u64(18446744073709551615ull, s, sizeof s), "18446744073709551615");
}

static void test_store_interns_and_overflows(void **state)
{
    const char *a[2] = { "x", "y" }, *c[2] = { "x", "z" };
    char longv[200];
    const char *l[1] = { longv };
    uint64_t *r1, *r2, *r3, before;

    (void)state;
    assert_int_equal(mstore_init(), 0);
    assert_true(mstore_on());
    r1 = mstore_row(20, a, 2);
    r2 = mstore_row(20, a, 2);
    r3 = mstore_row(20, c, 2);
    assert_non_null(r1);
    assert_ptr_equal(r1, r2);
    assert_ptr_not_equal(r1, r3);
    assert_null(mstore_row(MSTORE_FAMS, a, 2));
    mstore_add(r1, 0, 5);
    mstore_add(r2, 0, 2);
    assert_int_equal(mstore_get(r1, 0), 7);
    memset(longv, 'v', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    before = mstore_dropped();
    assert_non_null(mstore_row(21, l, 1));   /* too long: the family's "other" row */
    assert_int_equal(mstore_dropped(), before + 1);
    mstore_worker(3);
    mstore_gauge_add(1, 4);
    mstore_gauge_add(1, -1);
    assert_int_equal(mstore_gauge_sum(1), 3);
    mstore_worker(3);                        /* a new worker in the slot starts at 0 */
    assert_int_equal(mstore_gauge_sum(1), 0);
}

static void test__count(void *ud, const char *key, const uint64_t *row)
{
    int *n = ud;

    (void)row;
    n[key ? 0 : 1]++;
}

/* Past the table's capacity every observation still lands: in the
 * family's "other" row, counted as dropped. */
static void test_table_full(void **state)
{
    char name[32];
    const char *v[1] = { name };
    uint64_t before;
    int n[2] = { 0, 0 };

    (void)state;
    assert_int_equal(mstore_init(), 0);
    before = mstore_dropped();
    for (int i = 0; i < MSTORE_SERIES + 100; i++) {
        snprintf(name, sizeof name, "s%d", i);
        mstore_add(mstore_row(23, v, 1), 0, 1);
    }
    assert_true(mstore_dropped() >= before + 100);
    mstore_each(23, test__count, n);
    assert_true(n[0] <= MSTORE_SERIES);
    assert_int_equal(n[1], 1);           /* the overflow row, once */
}

/* Two forked workers intern the same series and add into it: the parent,
 * like a scrape in any worker, sees both, and each child's gauge slot. */
static void test_shared_across_fork(void **state)
{
    const char *v[1] = { "forked" };
    pid_t kids[2];
    int status;

    (void)state;
    assert_int_equal(mstore_init(), 0);
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            mstore_worker(10 + k);
            for (int i = 0; i < 1000; i++)
                mstore_add(mstore_row(22, v, 1), 0, 1);
            mstore_gauge_add(2, 5);
            _exit(0);
        }
    }
    for (int k = 0; k < 2; k++) {
        assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
        assert_int_equal(status, 0);
    }
    assert_int_equal(mstore_get(mstore_row(22, v, 1), 0), 2000);
    assert_int_equal(mstore_gauge_sum(2), 10);
    mstore_worker_gone(10);                  /* the master reaped one */
    assert_int_equal(mstore_gauge_sum(2), 5);
}

static void test_request_rendered(void **state)
{
    http_req_t req;
    agent_event_t ev;
    buf_t b;
    const char *t;

    (void)state;
    assert_int_equal(metrics_init(), 0);
    memset(&req, 0, sizeof req);
    req.status = 200;
    req.info.t0_us = reqinfo_now_us();
    req.info.route = "/v1/chat/completions";
    req.info.assistant = "helper";
    req.info.backend = "fake";
    req.info.stream = 1;
    req.info.ttft_us = 1500;
    req.info.upstream_turns = 2;
    req.info.tool_rounds = 1;
    req.info.prompt_tokens = 11;
    req.info.completion_tokens = 7;
    memset(&ev, 0, sizeof ev);
    ev.kind = AGENT_EV_TOOL_DONE;
    ev.server = "demo";
    ev.tool = "add";
    ev.ms = 3;
    ev.outcome = AGENT_TOOL_TIMEOUT;
    metrics_event(&req.info, &ev);
    ev.kind = AGENT_EV_TURN_DONE;
    ev.status = 502;
    ev.us = 2000;
    metrics_event(&req.info, &ev);
    metrics_after(&req, NULL);
    req.status = 401;
    req.info.upstream_turns = 0;
    req.info.assistant = NULL;
    metrics_after(&req, NULL);
    buf_init(&b, 1 << 20);
    assert_int_equal(metrics_render(&b, 1, 42), 0);
    t = buf_str(&b);
    assert_non_null(strstr(t, "aiproxy_requests_total{route=\"/v1/chat/completions\","
                              "assistant=\"helper\",status=\"2xx\"} 1\n"));
    assert_non_null(strstr(t, "aiproxy_requests_total{route=\"/v1/chat/completions\","
                              "assistant=\"\",status=\"4xx\"} 1\n"));
    assert_non_null(strstr(t, "aiproxy_refused_total{reason=\"401\"} 1\n"));
    assert_non_null(strstr(t, "aiproxy_tokens_total{assistant=\"helper\",backend=\"fake\","
                              "type=\"completion\"} 7\n"));
    assert_non_null(strstr(t, "aiproxy_tool_calls_total{server=\"demo\",tool=\"add\","
                              "outcome=\"timeout\"} 1\n"));
    assert_non_null(strstr(t, "aiproxy_upstream_errors_total{backend=\"fake\",status=\"502\"} 1\n"));
    assert_non_null(strstr(t, "aiproxy_ttft_seconds_bucket{assistant=\"helper\",le=\"0.005\"} 1\n"));
    assert_non_null(strstr(t, "aiproxy_ttft_seconds_sum{assistant=\"helper\"} 0.0015\n"));
    assert_non_null(strstr(t, "aiproxy_tool_rounds_bucket{le=\"1\"} 1\n"));
    assert_non_null(strstr(t, "aiproxy_registry_version 42\n"));
    assert_non_null(strstr(t, "# TYPE aiproxy_request_duration_seconds histogram\n"));
    /* HELP and TYPE once per family */
    assert_null(strstr(strstr(t, "# TYPE aiproxy_requests_total") + 1,
                       "# TYPE aiproxy_requests_total"));
    assert_int_equal(t[strlen(t) - 1], '\n');
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_family_and_escaping),
        cmocka_unit_test(test_histogram_cumulative),
        cmocka_unit_test(test_cap_is_an_error),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_store_interns_and_overflows),
        cmocka_unit_test(test_shared_across_fork),
        cmocka_unit_test(test_request_rendered),
        cmocka_unit_test(test_table_full),     /* last: it fills the shared table */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
