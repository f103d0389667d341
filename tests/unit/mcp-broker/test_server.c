/* server.c through its ops table, with a fake host instead of the broker:
 * what it publishes and writes for a server that cannot start, a server
 * whose child dies before it is ready (the waiting "start" gets the reason),
 * its list links, and retirement (ops.gone once the server has freed
 * itself). A real libuv loop; no Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "mcp-broker/server.h"
#include "shared/wire.h"

#define ID1 "0123456789abcdef0123456789abcdef"

typedef struct fake_host {
    int publishes, set_keys, gone;
    char channel[256], text[2048];
    char key[256], value[2048];
} fake_host_t;

static void fake_publish(void *data, const char *channel, const char *text)
{
    fake_host_t *h = data;

    h->publishes++;
    snprintf(h->channel, sizeof(h->channel), "%s", channel);
    snprintf(h->text, sizeof(h->text), "%s", text);
}

static void fake_set_key(void *data, const char *key, const char *text)
{
    fake_host_t *h = data;

    h->set_keys++;
    snprintf(h->key, sizeof(h->key), "%s", key);
    snprintf(h->value, sizeof(h->value), "%s", text);
}

static void fake_gone(void *data)
{
    fake_host_t *h = data;

    h->gone++;
}

static server_t *new_server(fake_host_t *h, uv_loop_t *loop, const char *name, const char *cfg_json)
{
    server_ops_t ops = {fake_publish, fake_set_key, fake_gone, h};
    json_object *cfg = json_tokener_parse(cfg_json);
    server_t *s;

    assert_non_null(cfg);
    s = server_new(&ops, loop, "p:", name, cfg);
    json_object_put(cfg); /* copied */
    assert_non_null(s);
    return s;
}

static void make_req(wire_req_t *req, enum wire_op op, const char *server)
{
    char err[128];
    char *t = wire_req_encode(op, ID1, "p:reply:1", server, "add", NULL, 4102444800000LL);

    assert_non_null(t);
    assert_int_equal(wire_req_decode(t, strlen(t), req, err, sizeof(err)), 0);
    free(t);
}

/* Runs the loop until *counter reaches want (bounded in iterations: a
 * loop with a pending timer or child never returns 0 early). */
static void run_until(uv_loop_t *loop, const int *counter, int want)
{
    for (int i = 0; i < 100000 && *counter < want; i++)
        uv_run(loop, UV_RUN_ONCE);
    assert_int_equal(*counter, want);
}

/* Lets the handles still closing (the session's pipes, its child) finish. */
static void close_loop(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_cannot_start(void **state)
{
    fake_host_t h = {0};
    uv_loop_t loop;
    server_t *s;
    wire_req_t req;

    (void)state;
    uv_loop_init(&loop);
    s = new_server(&h, &loop, "x", "{\"transport\":\"bogus\"}");
    assert_string_equal(server_name(s), "x");
    assert_string_equal(server_catalog_key(s), "p:mcp:catalog:x");
    make_req(&req, WIRE_OP_START, "x");
    server_handle(s, &req);
    wire_req_clear(&req);
    /* the catalog says why, and the request is answered at once, on its
     * reply channel, with the reason */
    assert_int_equal(h.set_keys, 1);
    assert_string_equal(h.key, "p:mcp:catalog:x");
    assert_non_null(strstr(h.value, "\"status\":\"error\""));
    assert_non_null(strstr(h.value, "unknown transport"));
    assert_int_equal(h.publishes, 1);
    assert_string_equal(h.channel, "p:reply:1");
    assert_non_null(strstr(h.text, ID1));
    assert_non_null(strstr(h.text, "retrying in the background"));
    /* retired: frees itself on the loop, then tells the host */
    server_retire(s);
    assert_int_equal(h.gone, 0);
    run_until(&loop, &h.gone, 1);
    close_loop(&loop);
}

static void test_dies_before_ready(void **state)
{
    fake_host_t h = {0};
    uv_loop_t loop;
    server_t *s;
    wire_req_t req;

    (void)state;
    uv_loop_init(&loop);
    /* starts (a child runs) but exits at once: never ready */
    s = new_server(&h, &loop, "f", "{\"transport\":\"stdio\",\"command\":\"/bin/false\"}");
    make_req(&req, WIRE_OP_START, "f");
    server_handle(s, &req);
    wire_req_clear(&req);
    assert_int_equal(h.publishes, 0);   /* waits for the catalog */
    run_until(&loop, &h.publishes, 1);
    assert_string_equal(h.channel, "p:reply:1");
    assert_non_null(strstr(h.text, ID1));
    assert_non_null(strstr(h.text, "\"error\""));
    assert_non_null(strstr(h.value, "\"status\":\"error\""));
    server_retire(s);
    run_until(&loop, &h.gone, 1);
    close_loop(&loop);
}

static void test_list_links(void **state)
{
    fake_host_t h = {0};
    uv_loop_t loop;
    server_t *a, *b;

    (void)state;
    uv_loop_init(&loop);
    a = new_server(&h, &loop, "a", "{\"transport\":\"bogus\"}");
    b = new_server(&h, &loop, "b", "{\"transport\":\"bogus\"}");
    assert_null(server_next(a));
    server_set_next(b, a);
    assert_ptr_equal(server_find(b, "a"), a);
    assert_ptr_equal(server_find(b, "b"), b);
    assert_null(server_find(b, "c"));
    assert_int_equal(server_owned(a), 0);
    server_set_owned(a, 1);
    assert_int_equal(server_owned(a), 1);
    /* nothing was started: nothing was published or written */
    assert_int_equal(h.publishes + h.set_keys, 0);
    server_retire(a);
    server_retire(b);
    assert_int_equal(server_owned(a), 0);
    run_until(&loop, &h.gone, 2);
    close_loop(&loop);
}

int main(void)
{
    /* as the daemon does: a write to a child that has exited is an error
     * to handle, not a signal that ends the process */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cannot_start),
        cmocka_unit_test(test_dies_before_ready),
        cmocka_unit_test(test_list_links),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
