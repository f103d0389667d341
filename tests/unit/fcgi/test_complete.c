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
                    cs->started && cs->stream_end && cs->answer);
    }
    assert_int_equal(n, 2);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_completion_route_has_its_hooks),
        cmocka_unit_test(unknown_assistant_in_each_shape),
        cmocka_unit_test(bad_body_in_each_shape),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
