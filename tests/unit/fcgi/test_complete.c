/* Unit tests for fcgi/core/complete: the one completion runner. Every
 * completion route runs it with its surface's hooks, and the errors the
 * runner makes (a bad body, an unknown assistant) come out in the shape of
 * the surface that was asked: OpenAI's {"error":{...,"param"}} on
 * /v1/chat/completions, Anthropic's {"type":"error",...} on /v1/messages.
 * The registry is a real one on a private redis-server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fcgi/core/complete.h"
#include "fcgi/routes.h"
#include "shared/cfg.h"
#include "shared/reg.h"
#include "tests/unit/support/tredis.h"

#include <stdio.h>
#include <string.h>

static reg_t *g_reg;

static int setup(void **state)
{
    static const char y[] = "backends:\n  b: {kind: openai, api_key: k}\n"
                            "assistants:\n  - {name: a, backend: b, model: m}\n"
                            "proxy_api_keys: [p1]\n";
    char err[1024] = "";
    json_object *doc = NULL;
    int seeded = 0;

    (void)state;
    if (tredis_start("complete") < 0)
        return -1;
    if (reg_open(&g_reg, tredis_url(), "tc:", err, sizeof err) != 0 ||
        cfg_load_yaml(y, strlen(y), "t", &doc, err, sizeof err) != 0 ||
        reg_seed(g_reg, doc, 1, &seeded) != 0 || reg_refresh(g_reg) != 0) {
        print_error("setup: %s\n", err);
        json_object_put(doc);
        return -1;
    }
    json_object_put(doc);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    reg_close(g_reg);
    tredis_stop();
    return 0;
}

/* Runs `body` through the route POST `path` (no agent: the runner must
 * answer before it); returns the status and the JSON body (caller puts it). */
static int run(const char *path, const char *body, json_object **out)
{
    http_req_t req;
    route_t r;
    svc_t svc;
    buf_t cap;
    const char *b;
    int status;

    memset(&req, 0, sizeof(req));
    memset(&svc, 0, sizeof(svc));
    buf_init(&cap, 1 << 16);
    req.arena = arena_new(4096);
    req.capture = &cap;
    req.method = "POST";
    req.path = path;
    req.query = "";
    req.body = body;
    req.body_len = strlen(body);
    svc.reg = g_reg;
    assert_int_equal(route_find(routes_table, "POST", path, &r), 0);
    assert_ptr_equal(r.def->handler, complete_handle);
    assert_int_equal(r.def->handler(&req, &r, &svc), 0);
    status = req.status;
    b = strstr(cap.data, "\r\n\r\n");
    assert_non_null(b);
    *out = json_tokener_parse(b + 4);
    assert_non_null(*out);
    buf_free(&cap);
    arena_free(req.arena);
    return status;
}

static const char *field(json_object *o, const char *a, const char *b)
{
    json_object *x = NULL, *y = NULL;

    if (!json_object_object_get_ex(o, a, &x))
        return NULL;
    if (!b)
        return json_object_get_string(x);
    if (!json_object_object_get_ex(x, b, &y) || json_object_is_type(y, json_type_null))
        return NULL;
    return json_object_get_string(y);
}

/* Every completion route (ROUTE_LONG) runs the runner with a full table of
 * hooks: a surface with one missing would crash at its first request. */
static void every_completion_route_has_its_hooks(void **state)
{
    const route_def_t *d;
    int n = 0;

    (void)state;
    for (d = routes_table; d->path; d++) {
        const complete_surface_t *cs;

        if (d->handler != complete_handle)
            continue;
        n++;
        assert_true(d->flags & ROUTE_LONG);
        assert_non_null(d->surface);
        cs = d->surface->complete;
        assert_non_null(cs);
        assert_non_null(cs->name);
        assert_true(cs->run_size > 0);
        assert_true(cs->parse && cs->clear && cs->begin && cs->delta && cs->flush &&
                    cs->started && cs->stream_end && cs->answer && cs->start &&
                    cs->keepalive);
    }
    assert_int_equal(n, 3);   /* chat, messages, responses */
}

static void unknown_assistant_in_each_shape(void **state)
{
    json_object *o = NULL;

    (void)state;
    assert_int_equal(run("/v1/chat/completions",
                         "{\"model\":\"nope\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                         &o), 404);
    assert_string_equal(field(o, "error", "type"), "invalid_request_error");
    assert_string_equal(field(o, "error", "code"), "model_not_found");
    assert_string_equal(field(o, "error", "param"), "model");
    assert_string_equal(field(o, "error", "message"),
                        "The model 'nope' does not exist: no assistant has that name. "
                        "GET /v1/models lists the assistants.");
    json_object_put(o);

    assert_int_equal(run("/v1/messages",
                         "{\"model\":\"nope\",\"max_tokens\":10,"
                         "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &o), 404);
    assert_string_equal(field(o, "type", NULL), "error");
    assert_string_equal(field(o, "error", "type"), "not_found_error");
    /* Anthropic's error has no param: the field leads the message */
    assert_string_equal(field(o, "error", "message"),
                        "model: The model 'nope' does not exist: no assistant has that name. "
                        "GET /v1/models lists the assistants.");
    json_object_put(o);
}

static void bad_body_in_each_shape(void **state)
{
    json_object *o = NULL;

    (void)state;
    assert_int_equal(run("/v1/chat/completions", "{\"model\":\"a\",\"messages\":5}", &o), 400);
    assert_string_equal(field(o, "error", "type"), "invalid_request_error");
    assert_string_equal(field(o, "error", "param"), "messages");
    json_object_put(o);

    assert_int_equal(run("/v1/messages", "{\"model\":\"a\",\"max_tokens\":10,\"messages\":5}", &o),
                     400);
    assert_string_equal(field(o, "error", "type"), "invalid_request_error");
    assert_null(field(o, "error", "param"));
    assert_int_equal(strncmp(field(o, "error", "message"), "messages: ", 10), 0);
    json_object_put(o);
}

/* The keep-alive interval: the assistant's stream_keepalive_ms when set (0
 * turns them off), else the process-wide one (AIPROXY_STREAM_KEEPALIVE_MS,
 * default 5 s). */
static void keepalive_interval_per_assistant_and_global(void **state)
{
    json_object *plain = json_tokener_parse("{\"name\":\"a\",\"stream_keepalive_ms\":null}");
    json_object *fast = json_tokener_parse("{\"name\":\"a\",\"stream_keepalive_ms\":250}");
    json_object *off = json_tokener_parse("{\"name\":\"a\",\"stream_keepalive_ms\":0}");

    (void)state;
    assert_int_equal(complete_keepalive_ms(plain), COMPLETE_KEEPALIVE_DEFAULT_MS);
    assert_int_equal(complete_keepalive_ms(NULL), 5000);
    assert_int_equal(complete_keepalive_ms(fast), 250);
    assert_int_equal(complete_keepalive_ms(off), 0);
    complete_set_keepalive_ms(1200);
    assert_int_equal(complete_keepalive_ms(plain), 1200);
    assert_int_equal(complete_keepalive_ms(fast), 250);
    assert_int_equal(complete_keepalive_ms(off), 0);
    complete_set_keepalive_ms(0);
    assert_int_equal(complete_keepalive_ms(plain), 0);
    complete_set_keepalive_ms(COMPLETE_KEEPALIVE_DEFAULT_MS);
    json_object_put(plain);
    json_object_put(fast);
    json_object_put(off);
}

/* A keep-alive is due once nothing was written for the interval, counted
 * from the last write; an interval of 0 is never due. */
static void keepalive_due_after_idle_interval(void **state)
{
    complete_pace_t p = {1000, 0};
    complete_pace_t none = {0, 0};

    (void)state;
    complete_pace_touch(&p, 5000);
    assert_false(complete_pace_due(&p, 5000));
    assert_false(complete_pace_due(&p, 5999));
    assert_true(complete_pace_due(&p, 6000));
    complete_pace_touch(&p, 5800);            /* a content write in between */
    assert_false(complete_pace_due(&p, 6000));
    assert_true(complete_pace_due(&p, 6800));
    assert_false(complete_pace_due(&none, 1000000));
}

/* Each surface's start hook sends the headers and its first event at once
 * (OpenAI: the role chunk; Anthropic: message_start) and its keepalive hook
 * an event its SDKs skip; the content after starts no second stream. */
static void start_and_keepalive_in_each_shape(void **state)
{
    static const struct { const char *path, *body, *first, *ka, *once; } cases[] = {
        { "/v1/chat/completions",
          "{\"model\":\"a\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
          "data: {\"id\":", ": keep-alive\n\n", "\"role\":\"assistant\"" },
        { "/v1/messages",
          "{\"model\":\"a\",\"stream\":true,\"max_tokens\":9,"
          "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
          "event: message_start\n", "event: ping\ndata: {\"type\": \"ping\"}\n\n",
          "message_start" },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const complete_surface_t *cs;
        complete_req_t cr;
        http_req_t req;
        route_t r;
        aip_err_t err;
        buf_t cap;
        void *run;
        const char *b;

        memset(&req, 0, sizeof(req));
        memset(&cr, 0, sizeof(cr));
        buf_init(&cap, 1 << 16);
        req.arena = arena_new(4096);
        req.capture = &cap;
        assert_int_equal(route_find(routes_table, "POST", cases[i].path, &r), 0);
        cs = r.def->surface->complete;
        run = arena_alloc(req.arena, cs->run_size);
        memset(run, 0, cs->run_size);
        assert_int_equal(cs->parse(run, cases[i].body, strlen(cases[i].body), &cr, &err), 0);
        assert_true(cr.stream);
        cs->begin(run, &req, &cr, 1);
        assert_int_equal(cs->keepalive(run), 0);
        assert_int_equal(cap.len, 0);                /* not before start */
        assert_int_equal(cs->start(run), 0);
        assert_true(cs->started(run));
        assert_int_equal(req.status, 200);
        b = strstr(buf_str(&cap), "\r\n\r\n");
        assert_non_null(b);
        assert_int_equal(strncmp(b + 4, cases[i].first, strlen(cases[i].first)), 0);
        assert_int_equal(cs->keepalive(run), 0);
        assert_non_null(strstr(b, cases[i].ka));
        assert_int_equal(cs->delta(run, "x", 1), 0);
        assert_int_equal(cs->flush(run), 0);
        b = strstr(buf_str(&cap), "\r\n\r\n");   /* the buffer may have moved */
        assert_non_null(strstr(b, cases[i].once));
        assert_null(strstr(strstr(b, cases[i].ka), cases[i].once));
        assert_non_null(strstr(strstr(b, cases[i].ka), "x\""));
        cs->clear(run);
        buf_free(&cap);
        arena_free(req.arena);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_completion_route_has_its_hooks),
        cmocka_unit_test(unknown_assistant_in_each_shape),
        cmocka_unit_test(bad_body_in_each_shape),
        cmocka_unit_test(keepalive_interval_per_assistant_and_global),
        cmocka_unit_test(keepalive_due_after_idle_interval),
        cmocka_unit_test(start_and_keepalive_in_each_shape),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
