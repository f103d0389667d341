/* Unit tests for shared/otel: traceparent parsing and formatting (W3C Trace
 * Context), span records, the OTLP/HTTP JSON encoding, and the settings
 * read from the OTEL_* environment (sampler, headers, endpoint). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shared/otel.h"
#include "tests/unit/support/tsrv.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static void tp_parses_version_00(void **state)
{
    otel_ctx_t c;
    char out[OTEL_TP_LEN + 1];

    (void)state;
    assert_int_equal(otel_tp_parse(TP, &c), 0);
    assert_int_equal(c.trace_id[0], 0x4b);
    assert_int_equal(c.span_id[7], 0xb7);
    assert_int_equal(c.flags, 1);
    otel_tp_format(&c, out);
    assert_string_equal(out, TP);
    /* surrounding blanks (a header value's OWS) are not part of it */
    assert_int_equal(otel_tp_parse(" \t" TP " ", &c), 0);
    assert_int_equal(otel_tp_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &c), 0);
    assert_int_equal(c.flags, 0);
}

static void tp_refuses_what_the_spec_refuses(void **state)
{
    otel_ctx_t c;
    static const char *bad[] = {
        "",
        "00",
        /* upper-case hex */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        /* all-zero trace id, all-zero span id */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        /* version ff is invalid */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        /* version 00 with more after it */
        TP "-what",
        TP "0",
        /* a later version whose extra part does not start with '-' */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        /* bad separators and digits */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(otel_tp_parse(bad[i], &c), -EINVAL);
    assert_int_equal(otel_tp_parse(NULL, &c), -EINVAL);
}

static void tp_reads_a_later_version_as_00(void **state)
{
    otel_ctx_t c;

    (void)state;
    assert_int_equal(otel_tp_parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-later",
                                   &c), 0);
    assert_int_equal(c.flags, 1);   /* unknown flag bits are not passed on */
    assert_int_equal(otel_tp_parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                                   &c), 0);
}

static void span_children_share_the_trace(void **state)
{
    otel_span_t root, child;
    otel_ctx_t parent;

    (void)state;
    assert_int_equal(otel_tp_parse(TP, &parent), 0);
    otel_span_start(&root, &parent, "POST /v1/chat/completions", OTEL_KIND_SERVER);
    assert_memory_equal(root.ctx.trace_id, parent.trace_id, 16);
    assert_memory_equal(root.parent_id, parent.span_id, 8);
    assert_memory_not_equal(root.ctx.span_id, parent.span_id, 8);
    otel_span_start(&child, &root.ctx, "chat gpt-4o", OTEL_KIND_CLIENT);
    assert_memory_equal(child.ctx.trace_id, parent.trace_id, 16);
    assert_memory_equal(child.parent_id, root.ctx.span_id, 8);
    /* a root gets a new trace, sampled */
    otel_span_start(&root, NULL, "x", OTEL_KIND_INTERNAL);
    assert_memory_not_equal(root.ctx.trace_id, parent.trace_id, 16);
    assert_int_equal(root.ctx.flags, 1);
}

static void span_attributes_stop_at_the_caps(void **state)
{
    otel_span_t sp;
    char big[OTEL_SPAN_TEXT];

    (void)state;
    otel_span_start(&sp, NULL, "s", OTEL_KIND_INTERNAL);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    otel_span_str(&sp, "too.big", big);     /* does not fit: dropped */
    assert_int_equal(sp.nattrs, 0);
    otel_span_str(&sp, "null", NULL);
    assert_int_equal(sp.nattrs, 0);
    for (int i = 0; i < OTEL_ATTRS + 5; i++)
        otel_span_int(&sp, "n", i);
    assert_int_equal(sp.nattrs, OTEL_ATTRS);
}

static json_object *path(json_object *o, const char *k)
{
    json_object *v = NULL;

    assert_true(json_object_object_get_ex(o, k, &v));
    return v;
}

static const char *attr(json_object *span, const char *key, const char *kind)
{
    json_object *a = path(span, "attributes");

    for (size_t i = 0; i < json_object_array_length(a); i++) {
        json_object *e = json_object_array_get_idx(a, i);
        if (strcmp(json_object_get_string(path(e, "key")), key) == 0)
            return json_object_to_json_string_ext(path(path(e, "value"), kind),
                                                  JSON_C_TO_STRING_PLAIN);
    }
    return NULL;
}

static void encode_is_otlp_json(void **state)
{
    otel_span_t a, b;
    otel_ctx_t parent;
    const otel_span_t *spans[2] = { &a, &b };
    char *text, tid[33];
    json_object *doc, *rs, *ss, *sp, *res;

    (void)state;
    assert_int_equal(otel_tp_parse(TP, &parent), 0);
    otel_span_start(&a, &parent, "chat \"m\"\n", OTEL_KIND_CLIENT);
    otel_span_str(&a, "gen_ai.operation.name", "chat");
    otel_span_int(&a, "gen_ai.usage.input_tokens", 9007199254740993LL);
    otel_span_double(&a, "d", 0.5);
    otel_span_bool(&a, "b", 1);
    otel_span_status(&a, OTEL_STATUS_ERROR, "boom");
    a.start_ns = 1700000000000000001LL;
    a.end_ns = 1700000000000000002LL;
    otel_span_start(&b, NULL, "root", OTEL_KIND_SERVER);
    b.end_ns = b.start_ns + 1;
    text = otel_encode(spans, 2, "svc\"x");
    assert_non_null(text);
    doc = json_tokener_parse(text);
    assert_non_null(doc);
    rs = json_object_array_get_idx(path(doc, "resourceSpans"), 0);
    res = json_object_array_get_idx(path(path(rs, "resource"), "attributes"), 0);
    assert_string_equal(json_object_get_string(path(res, "key")), "service.name");
    assert_string_equal(json_object_get_string(path(path(res, "value"), "stringValue")), "svc\"x");
    ss = json_object_array_get_idx(path(rs, "scopeSpans"), 0);
    sp = json_object_array_get_idx(path(ss, "spans"), 0);
    otel_hex(parent.trace_id, 16, tid);
    assert_string_equal(json_object_get_string(path(sp, "traceId")), tid);
    assert_string_equal(json_object_get_string(path(sp, "parentSpanId")), "00f067aa0ba902b7");
    assert_int_equal(strlen(json_object_get_string(path(sp, "spanId"))), 16);
    assert_string_equal(json_object_get_string(path(sp, "name")), "chat \"m\"\n");
    assert_int_equal(json_object_get_int(path(sp, "kind")), 3);
    /* int64 as strings: no precision lost on the way */
    assert_true(json_object_is_type(path(sp, "startTimeUnixNano"), json_type_string));
    assert_string_equal(json_object_get_string(path(sp, "startTimeUnixNano")),
                        "1700000000000000001");
    assert_string_equal(attr(sp, "gen_ai.usage.input_tokens", "intValue"), "\"9007199254740993\"");
    assert_string_equal(attr(sp, "gen_ai.operation.name", "stringValue"), "\"chat\"");
    assert_string_equal(attr(sp, "d", "doubleValue"), "0.5");
    assert_string_equal(attr(sp, "b", "boolValue"), "true");
    assert_int_equal(json_object_get_int(path(path(sp, "status"), "code")), 2);
    assert_string_equal(json_object_get_string(path(path(sp, "status"), "message")), "boom");
    /* a root span has no parentSpanId */
    sp = json_object_array_get_idx(path(ss, "spans"), 1);
    assert_false(json_object_object_get_ex(sp, "parentSpanId", NULL));
    json_object_put(doc);
    free(text);
}

static void clear_env(void)
{
    static const char *names[] = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_SDK_DISABLED",
        "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_SERVICE_NAME",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        unsetenv(names[i]);
}

static void config_from_the_environment(void **state)
{
    char err[256];
    otel_ctx_t p;
    uint8_t tid[16];

    (void)state;
    clear_env();
    assert_int_equal(otel_init("svc", err, sizeof err), 0);   /* no endpoint: off */
    assert_false(otel_enabled());
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/", 1);
    setenv("OTEL_TRACES_EXPORTER", "none", 1);
    assert_int_equal(otel_init("svc", err, sizeof err), 0);
    setenv("OTEL_TRACES_EXPORTER", "zipkin", 1);
    assert_int_equal(otel_init("svc", err, sizeof err), -EINVAL);
    unsetenv("OTEL_TRACES_EXPORTER");
    setenv("OTEL_TRACES_SAMPLER", "jaeger_remote", 1);
    assert_int_equal(otel_init("svc", err, sizeof err), -EINVAL);
    setenv("OTEL_TRACES_SAMPLER", "traceidratio", 1);
    setenv("OTEL_TRACES_SAMPLER_ARG", "1.5", 1);
    assert_int_equal(otel_init("svc", err, sizeof err), -EINVAL);
    /* the header's value is a secret: the error names the key only */
    unsetenv("OTEL_TRACES_SAMPLER");
    unsetenv("OTEL_TRACES_SAMPLER_ARG");
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "bad key=sekrit", 1);
    assert_int_equal(otel_init("svc", err, sizeof err), -EINVAL);
    assert_null(strstr(err, "sekrit"));
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20x,,x-a = b ", 1);
    assert_int_equal(otel_init("svc", err, sizeof err), 1);
    assert_true(otel_enabled());

    /* default: parentbased_always_on */
    memset(tid, 0xab, sizeof tid);
    assert_int_equal(otel_tp_parse(TP, &p), 0);
    assert_int_equal(otel_sample(NULL, tid), 1);
    assert_int_equal(otel_sample(&p, tid), 1);
    p.flags = 0;
    assert_int_equal(otel_sample(&p, tid), 0);
    /* traceidratio 0 without a parent's say: never; 1: always */
    unsetenv("OTEL_EXPORTER_OTLP_HEADERS");
    setenv("OTEL_TRACES_SAMPLER", "traceidratio", 1);
    setenv("OTEL_TRACES_SAMPLER_ARG", "0", 1);
    assert_int_equal(otel_init("svc", err, sizeof err), 1);
    p.flags = 1;
    assert_int_equal(otel_sample(&p, tid), 0);   /* not parent-based */
    assert_int_equal(otel_sample(NULL, tid), 0);
    setenv("OTEL_TRACES_SAMPLER", "parentbased_always_off", 1);
    assert_int_equal(otel_init("svc", err, sizeof err), 1);
    assert_int_equal(otel_sample(&p, tid), 1);
    assert_int_equal(otel_sample(NULL, tid), 0);
    setenv("OTEL_TRACES_SAMPLER", "traceidratio", 1);
    setenv("OTEL_TRACES_SAMPLER_ARG", "0.5", 1);
    assert_int_equal(otel_init("svc", err, sizeof err), 1);
    memset(tid, 0, sizeof tid);
    tid[15] = 1;
    assert_int_equal(otel_sample(NULL, tid), 1);
    memset(tid, 0xff, sizeof tid);
    assert_int_equal(otel_sample(NULL, tid), 0);
    clear_env();
}

static void span_end_without_exporter_drops_and_counts(void **state)
{
    otel_span_t sp;
    char err[256];
    unsigned long long before;

    (void)state;
    clear_env();
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:1/v1/traces", 1);
    assert_int_equal(otel_init("svc", err, sizeof err), 1);
    before = otel_dropped();
    otel_span_start(&sp, NULL, "s", OTEL_KIND_INTERNAL);
    otel_span_end(&sp);    /* no exporter running in this process */
    assert_int_equal(otel_dropped(), before + 1);
    /* started and stopped: what it could not deliver is dropped, within the bound */
    assert_int_equal(otel_start(), 0);
    assert_int_equal(otel_start(), -EALREADY);
    otel_span_start(&sp, NULL, "s", OTEL_KIND_INTERNAL);
    otel_span_end(&sp);
    otel_stop(2000);
    assert_int_equal(otel_dropped(), before + 2);
    assert_int_equal(otel_exported(), 0);
    clear_env();
}

/* The collector: answers `first` to the first POST, 200 to the others, and
 * keeps the last request's text. */
typedef struct collector {
    int first;
    atomic_int posts;
    char last[8192];
} collector_t;

static void collector_handle(void *ud, int fd, const char *req, const char *body)
{
    collector_t *c = ud;
    int n = atomic_fetch_add(&c->posts, 1);
    char line[160];

    (void)body;
    snprintf(c->last, sizeof c->last, "%s", req);
    snprintf(line, sizeof line, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
             "Content-Length: 2\r\nConnection: close\r\n\r\n{}", n == 0 ? c->first : 200);
    tsrv_say(fd, line);
}

/* Polls cond for at most 10 s. */
static int wait_until(int (*cond)(void *), void *ud)
{
    struct timespec ts = { 0, 20 * 1000 * 1000 };

    for (int i = 0; i < 500; i++) {
        if (cond(ud))
            return 1;
        nanosleep(&ts, NULL);
    }
    return cond(ud);
}

static unsigned long long exported_at_start, dropped_at_start;

static int exported_one(void *ud)
{
    (void)ud;
    return otel_exported() == exported_at_start + 1;
}

static int dropped_one(void *ud)
{
    (void)ud;
    return otel_dropped() == dropped_at_start + 1;
}

/* One exporter run against a collector answering `first` to the first POST. */
static void export_once(collector_t *c, int (*cond)(void *))
{
    tsrv_t *srv = tsrv_start(collector_handle, c);
    char url[128], err[256];
    otel_span_t sp;

    assert_non_null(srv);
    clear_env();
    snprintf(url, sizeof url, "http://127.0.0.1:%d", tsrv_port(srv));
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url, 1);
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-key=k%3Dv", 1);
    setenv("OTEL_SERVICE_NAME", "unit", 1);
    assert_int_equal(otel_init("svc", err, sizeof err), 1);
    exported_at_start = otel_exported();
    dropped_at_start = otel_dropped();
    assert_int_equal(otel_start(), 0);
    otel_span_start(&sp, NULL, "exported span", OTEL_KIND_INTERNAL);
    otel_span_end(&sp);
    assert_true(wait_until(cond, NULL));
    otel_stop(2000);
    tsrv_stop(srv);
    clear_env();
}

static void exporter_retries_503_then_delivers(void **state)
{
    static collector_t c = { .first = 503 };

    (void)state;
    export_once(&c, exported_one);
    assert_int_equal(atomic_load(&c.posts), 2);
    assert_non_null(strstr(c.last, "POST /v1/traces HTTP/1.1"));
    assert_non_null(strstr(c.last, "Content-Type: application/json"));
    assert_non_null(strstr(c.last, "x-collector-key: k=v"));
    assert_non_null(strstr(c.last, "\"exported span\""));
    assert_non_null(strstr(c.last, "\"unit\""));
    assert_int_equal(otel_dropped(), dropped_at_start);
}

static void exporter_does_not_retry_400(void **state)
{
    static collector_t c = { .first = 400 };

    (void)state;
    export_once(&c, dropped_one);
    assert_int_equal(atomic_load(&c.posts), 1);
    assert_int_equal(otel_exported(), exported_at_start);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tp_parses_version_00),
        cmocka_unit_test(tp_refuses_what_the_spec_refuses),
        cmocka_unit_test(tp_reads_a_later_version_as_00),
        cmocka_unit_test(span_children_share_the_trace),
        cmocka_unit_test(span_attributes_stop_at_the_caps),
        cmocka_unit_test(encode_is_otlp_json),
        cmocka_unit_test(config_from_the_environment),
        cmocka_unit_test(span_end_without_exporter_drops_and_counts),
        cmocka_unit_test(exporter_retries_503_then_delivers),
        cmocka_unit_test(exporter_does_not_retry_400),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
