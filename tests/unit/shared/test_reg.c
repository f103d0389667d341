/* The registry against a real, private redis-server on a unix socket: seed
 * rules, refresh after writes, optimistic concurrency, change messages, and
 * reconnection after a Redis restart. Redis is killed at teardown, and with
 * PR_SET_PDEATHSIG if this process dies first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/support/tredis.h"
#include "shared/cfg.h"
#include "shared/rconn.h"
#include "shared/reg.h"


static int group_setup(void **state)
{
    (void)state;
    if (tredis_start("reg") < 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tredis_stop();
    return 0;
}

/* Each test on its own key prefix, so they do not see each other. */
static reg_t *open_reg(const char *prefix)
{
    reg_t *r = NULL;
    char err[512] = "";
    if (reg_open(&r, tredis_url(), prefix, err, sizeof err) != 0)
        fail_msg("reg_open: %s", err);
    return r;
}

static json_object *cfg(const char *model)
{
    char y[1024], err[1024];
    json_object *d = NULL;
    snprintf(y, sizeof y,
             "backends:\n  b: {kind: openai, api_key: k}\n"
             "mcp_servers:\n  s: {command: /bin/true}\n"
             "assistants:\n  - {name: a, backend: b, model: %s}\n"
             "proxy_api_keys: [p1]\n", model);
    if (cfg_load_yaml(y, strlen(y), "t", &d, err, sizeof err) != 0)
        fail_msg("%s", err);
    return d;
}

static const char *model_of(reg_t *r, const char *name)
{
    json_object *a = reg_get(r, "assistants", name), *m = NULL;
    if (!a || !json_object_object_get_ex(a, "model", &m))
        return NULL;
    return json_object_get_string(m);
}

static void test_open_unreachable(void **state)
{
    reg_t *r = NULL;
    char err[512] = "";
    (void)state;
    assert_int_equal(reg_open(&r, "unix:///nonexistent/x.sock", "t0:", err, sizeof err),
                     -ECONNREFUSED);
    assert_null(r);
    assert_non_null(strstr(err, "cannot reach Redis at unix:///nonexistent/x.sock"));
}

static void test_seed_no_overwrite(void **state)
{
    reg_t *r = open_reg("t1:");
    json_object *d1 = cfg("m1"), *d2 = cfg("m2");
    int seeded = -1;
    (void)state;
    assert_int_equal(reg_refresh(r), -ENOENT);
    assert_non_null(strstr(reg_errstr(r), "no registry"));
    assert_int_equal(reg_seed(r, d1, 0, &seeded), 0);
    assert_int_equal(seeded, 1);
    assert_int_equal(reg_refresh(r), 0);
    assert_string_equal(model_of(r, "a"), "m1");
    assert_int_equal(reg_version(r), 1);
    /* Redis wins: a second seed without reseed changes nothing */
    assert_int_equal(reg_seed(r, d2, 0, &seeded), 0);
    assert_int_equal(seeded, 0);
    assert_int_equal(reg_refresh(r), 0);
    assert_string_equal(model_of(r, "a"), "m1");
    assert_int_equal(reg_version(r), 1);
    /* reseed replaces */
    assert_int_equal(reg_seed(r, d2, 1, &seeded), 0);
    assert_int_equal(seeded, 1);
    assert_int_equal(reg_refresh(r), 0);
    assert_string_equal(model_of(r, "a"), "m2");
    assert_int_equal(reg_version(r), 2);
    /* the snapshot is the whole document, equal to what was seeded */
    assert_true(json_object_equal(reg_all(r, "backends"), json_object_object_get(d2, "backends")));
    assert_true(json_object_equal(reg_settings(r), json_object_object_get(d2, "settings")));
    assert_non_null(reg_get(r, "mcp_servers", "s"));
    assert_null(reg_get(r, "assistants", "zz"));
    json_object_put(d1);
    json_object_put(d2);
    reg_close(r);
}

static void test_refresh_sees_other_writer(void **state)
{
    reg_t *w = open_reg("t2:"), *rd = open_reg("t2:");
    json_object *d = cfg("m1"), *a;
    int seeded;
    (void)state;
    assert_int_equal(reg_seed(w, d, 0, &seeded), 0);
    assert_int_equal(reg_refresh(rd), 0);
    assert_string_equal(model_of(rd, "a"), "m1");
    a = json_tokener_parse("{\"name\":\"a2\",\"backend\":\"b\",\"model\":\"x\"}");
    assert_int_equal(reg_put(w, "assistants", "a2", a, 0), 0);
    assert_null(reg_get(rd, "assistants", "a2"));          /* until refreshed */
    assert_int_equal(reg_refresh(rd), 0);
    assert_string_equal(model_of(rd, "a2"), "x");
    assert_int_equal(reg_version(rd), 2);
    /* an unchanged version keeps the very same snapshot object */
    json_object *snap = reg_doc(rd);
    assert_int_equal(reg_refresh(rd), 0);
    assert_ptr_equal(reg_doc(rd), snap);
    /* settings are written as a whole */
    json_object *s = json_tokener_parse("{\"proxy_api_keys\":[\"z\"],\"apiman\":null}");
    assert_int_equal(reg_put(w, "settings", "", s, 0), 0);
    assert_int_equal(reg_refresh(rd), 0);
    assert_true(json_object_equal(reg_settings(rd), s));
    assert_int_equal(reg_put(w, "widgets", "x", s, 0), -EINVAL);
    json_object_put(s);
    json_object_put(a);
    json_object_put(d);
    reg_close(w);
    reg_close(rd);
}

static void test_put_del_expect_version(void **state)
{
    reg_t *r = open_reg("t3:");
    json_object *d = cfg("m1"), *a;
    long long v;
    int seeded;
    (void)state;
    assert_int_equal(reg_seed(r, d, 0, &seeded), 0);
    assert_int_equal(reg_refresh(r), 0);
    v = reg_version(r);
    a = json_tokener_parse("{\"name\":\"a\",\"backend\":\"b\",\"model\":\"new\"}");
    assert_int_equal(reg_put(r, "assistants", "a", a, v), 0);
    /* the same expectation again is stale now */
    assert_int_equal(reg_put(r, "assistants", "a", a, v), -EAGAIN);
    assert_non_null(strstr(reg_errstr(r), "changed"));
    assert_int_equal(reg_del(r, "assistants", "a", v), -EAGAIN);
    assert_int_equal(reg_refresh(r), 0);
    assert_string_equal(model_of(r, "a"), "new");
    assert_int_equal(reg_del(r, "assistants", "a", reg_version(r)), 0);
    assert_int_equal(reg_del(r, "assistants", "a", 0), -ENOENT);
    assert_int_equal(reg_del(r, "backends", "nope", 0), -ENOENT);
    assert_int_equal(reg_refresh(r), 0);
    assert_null(reg_get(r, "assistants", "a"));
    assert_int_equal(reg_version(r), v + 2);
    json_object_put(a);
    json_object_put(d);
    reg_close(r);
}

/* Reads one pub/sub message within the connection's timeout. */
static json_object *next_msg(redisContext *sub)
{
    void *vp = NULL;
    redisReply *m;
    json_object *o = NULL;
    if (redisGetReply(sub, &vp) != REDIS_OK)
        return NULL;
    m = vp;
    if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 && !strcmp(m->element[0]->str, "message"))
        o = json_tokener_parse(m->element[2]->str);
    freeReplyObject(m);
    return o;
}

static void expect_msg(redisContext *sub, long long version, const char *kind, const char *name,
                       const char *op)
{
    json_object *o = next_msg(sub);
    if (!o)
        fail_msg("no change message for %s %s", op, name);
    assert_int_equal(json_object_get_int64(json_object_object_get(o, "version")), version);
    assert_string_equal(json_object_get_string(json_object_object_get(o, "kind")), kind);
    assert_string_equal(json_object_get_string(json_object_object_get(o, "name")), name);
    assert_string_equal(json_object_get_string(json_object_object_get(o, "op")), op);
    json_object_put(o);
}

static void test_change_messages(void **state)
{
    reg_t *r = open_reg("t4:");
    json_object *d = cfg("m1"), *a;
    redisContext *sub;
    redisReply *rep;
    char err[256];
    int seeded;
    (void)state;
    sub = rconn_connect(tredis_url(), 2000, err, sizeof err);
    assert_non_null(sub);
    rep = redisCommand(sub, "SUBSCRIBE t4:reg:changed");
    assert_non_null(rep);
    freeReplyObject(rep);
    assert_int_equal(reg_seed(r, d, 0, &seeded), 0);
    expect_msg(sub, 1, "all", "", "seed");
    a = json_tokener_parse("{\"name\":\"q\\\"x\",\"backend\":\"b\",\"model\":\"m\"}");
    assert_int_equal(reg_put(r, "assistants", "q\"x", a, 0), 0);
    expect_msg(sub, 2, "assistants", "q\"x", "put");
    assert_int_equal(reg_del(r, "mcp_servers", "s", 0), 0);
    expect_msg(sub, 3, "mcp_servers", "s", "del");
    /* a refused write publishes nothing: the next message is the next write */
    assert_int_equal(reg_del(r, "mcp_servers", "s", 0), -ENOENT);
    assert_int_equal(reg_put(r, "backends", "b2", json_object_object_get(json_object_object_get(d, "backends"), "b"), 0), 0);
    expect_msg(sub, 4, "backends", "b2", "put");
    redisFree(sub);
    json_object_put(a);
    json_object_put(d);
    reg_close(r);
}

static void test_reconnect_after_restart(void **state)
{
    reg_t *r = open_reg("t5:");
    json_object *d = cfg("m1");
    int seeded;
    (void)state;
    assert_int_equal(reg_seed(r, d, 0, &seeded), 0);
    assert_int_equal(reg_refresh(r), 0);
    tredis_stop();
    /* Redis gone: an error, and the old snapshot stays usable */
    assert_true(reg_refresh(r) < 0);
    assert_string_equal(model_of(r, "a"), "m1");
    assert_int_equal(tredis_start("reg"), 0);
    /* back, empty (no persistence): calls reconnect on their own, once the
     * short retry pause after the failed attempt is over (bounded wait) */
    {
        int rc = -ECONNREFUSED;
        for (int i = 0; i < 300 && rc == -ECONNREFUSED; i++) {
            rc = reg_refresh(r);
            if (rc == -ECONNREFUSED)
                usleep(10000);
        }
        assert_int_equal(rc, -ENOENT);
    }
    assert_int_equal(reg_seed(r, d, 0, &seeded), 0);
    assert_int_equal(seeded, 1);
    assert_int_equal(reg_refresh(r), 0);
    assert_non_null(reg_redis(r));
    assert_string_equal(reg_prefix(r), "t5:");
    /* a restart between two calls on a live connection is invisible */
    tredis_stop();
    assert_int_equal(tredis_start("reg"), 0);
    assert_int_equal(reg_seed(r, d, 0, &seeded), 0);
    assert_int_equal(seeded, 1);
    json_object_put(d);
    reg_close(r);
}

/* Redis lost the registry (restarted empty): the keys of `prefix` go. */
static void drop_registry(const char *prefix)
{
    assert_int_equal(tredis_drop_registry(prefix), 0);
}

typedef struct healer {
    const char *seed;
    pthread_barrier_t *go;
    int rc;
    long long version;
    char model[32];
} healer_t;

static void *heal_thread(void *arg)
{
    healer_t *h = arg;
    reg_t *r = NULL;
    char err[512];
    const char *m;

    h->rc = reg_open(&r, tredis_url(), "t6:", err, sizeof err);
    if (h->rc == 0) {
        reg_set_seed(r, h->seed);
        pthread_barrier_wait(h->go);
        h->rc = reg_refresh(r);
        h->version = reg_version(r);
        m = model_of(r, "a");
        snprintf(h->model, sizeof h->model, "%s", m ? m : "");
        reg_close(r);
    } else {
        pthread_barrier_wait(h->go);
    }
    return NULL;
}

/* A registry that disappears is written back from the seed document, exactly
 * once even when many readers notice at the same moment: the version is 1
 * after all of them (a second seed would have made it 2). */
static void test_heal_from_seed(void **state)
{
    enum { N = 8 };
    reg_t *r = open_reg("t6:");
    json_object *d = cfg("m1"), *a;
    char *seed = strdup(json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN));
    pthread_t th[N];
    pthread_barrier_t go;
    healer_t hs[N];
    (void)state;
    assert_non_null(seed);
    reg_set_seed(r, seed);
    /* an empty Redis at the first look: seeded, then read */
    assert_int_equal(reg_refresh(r), 0);
    assert_string_equal(model_of(r, "a"), "m1");
    assert_int_equal(reg_version(r), 1);
    /* an edit, then the registry is lost */
    a = json_tokener_parse("{\"name\":\"a\",\"backend\":\"b\",\"model\":\"edited\"}");
    assert_int_equal(reg_put(r, "assistants", "a", a, reg_version(r)), 0);
    assert_int_equal(reg_refresh(r), 0);
    assert_string_equal(model_of(r, "a"), "edited");
    drop_registry("t6:");
    pthread_barrier_init(&go, NULL, N);
    for (int i = 0; i < N; i++) {
        memset(&hs[i], 0, sizeof hs[i]);
        hs[i].seed = seed;
        hs[i].go = &go;
        assert_int_equal(pthread_create(&th[i], NULL, heal_thread, &hs[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(hs[i].rc, 0);
        assert_int_equal(hs[i].version, 1);
        assert_string_equal(hs[i].model, "m1");
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(reg_refresh(r), 0);
    assert_int_equal(reg_version(r), 1);
    assert_string_equal(model_of(r, "a"), "m1");
    /* without a seed nothing heals: -ENOENT, as before */
    reg_set_seed(r, NULL);
    drop_registry("t6:");
    assert_int_equal(reg_refresh(r), -ENOENT);
    json_object_put(a);
    json_object_put(d);
    free(seed);
    reg_close(r);
}

/* On a registry that vanished (no seed), the snapshot is the empty registry
 * at version 0: a write with the snapshot's version creates the registry
 * instead of failing as a conflict with the vanished one. */
static void test_empty_registry_put_creates(void **state)
{
    reg_t *r = open_reg("t7:");
    json_object *d = cfg("m1"), *b;
    int seeded;
    (void)state;
    assert_int_equal(reg_seed(r, d, 0, &seeded), 0);
    assert_int_equal(reg_refresh(r), 0);
    assert_int_equal(reg_version(r), 1);
    drop_registry("t7:");
    assert_int_equal(reg_refresh(r), -ENOENT);
    assert_int_equal(reg_version(r), 0);
    assert_null(reg_get(r, "assistants", "a"));
    assert_non_null(reg_all(r, "backends"));
    b = json_tokener_parse("{\"kind\":\"openai\",\"api_key\":\"k\"}");
    assert_int_equal(reg_put(r, "backends", "b2", b, reg_version(r)), 0);
    assert_int_equal(reg_refresh(r), 0);
    assert_int_equal(reg_version(r), 1);
    assert_non_null(reg_get(r, "backends", "b2"));
    assert_null(reg_get(r, "backends", "b"));
    json_object_put(b);
    json_object_put(d);
    reg_close(r);
}

/* A fake Redis on a loopback port whose first connection is no master any
 * more: it answers every command with `bad` (READONLY, LOADING); later
 * connections answer EVAL with a script success and GET with nil. */
typedef struct fakered {
    int lfd, port, conns;
    const char *bad;
    pthread_t th;
} fakered_t;

static void *fakered_run(void *arg)
{
    fakered_t *f = arg;
    int fd;

    while ((fd = accept(f->lfd, NULL, NULL)) >= 0) {
        int first = f->conns++ == 0;
        char in[8192];
        ssize_t n;
        while ((n = read(fd, in, sizeof in - 1)) > 0) {
            const char *out = NULL;
            in[n] = '\0';
            if (strstr(in, "EVAL"))
                out = first ? f->bad : "*2\r\n:1\r\n:7\r\n";
            else if (strstr(in, "GET"))
                out = first ? f->bad : "$-1\r\n";
            if (out && write(fd, out, strlen(out)) < 0)
                break;
        }
        close(fd);
    }
    return NULL;
}

static void fakered_start(fakered_t *f, const char *bad, char *url, size_t n)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;

    memset(f, 0, sizeof *f);
    f->bad = bad;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(f->lfd, 4), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sa, &len), 0);
    f->port = ntohs(sa.sin_port);
    snprintf(url, n, "redis://127.0.0.1:%d/0", f->port);
    assert_int_equal(pthread_create(&f->th, NULL, fakered_run, f), 0);
}

static void fakered_stop(fakered_t *f)
{
    shutdown(f->lfd, SHUT_RDWR);
    pthread_join(f->th, NULL);
    close(f->lfd);
}

/* A write refused with READONLY (the old master after a failover) is retried
 * once on a new connection: the script never ran, so nothing is doubled. */
static void test_readonly_write_reconnects(void **state)
{
    fakered_t f;
    reg_t *r = NULL;
    json_object *d = cfg("m1");
    json_object *a = json_object_object_get(json_object_object_get(d, "assistants"), "a");
    char url[64], err[512] = "";
    (void)state;
    fakered_start(&f, "-READONLY You can't write against a read only replica.\r\n", url, sizeof url);
    if (reg_open(&r, url, "t:ro:", err, sizeof err) != 0)
        fail_msg("reg_open: %s", err);
    assert_int_equal(reg_put(r, "assistants", "a", a, 0), 0);
    reg_close(r);
    fakered_stop(&f);
    assert_int_equal(f.conns, 2);
    json_object_put(d);
}

/* LOADING on the version read: dropped like a lost connection, and the same
 * refresh reconnects and reads (here: no registry). */
static void test_loading_read_reconnects(void **state)
{
    fakered_t f;
    reg_t *r = NULL;
    char url[64], err[512] = "";
    (void)state;
    fakered_start(&f, "-LOADING Redis is loading the dataset in memory\r\n", url, sizeof url);
    if (reg_open(&r, url, "t:ld:", err, sizeof err) != 0)
        fail_msg("reg_open: %s", err);
    assert_int_equal(reg_refresh(r), -ENOENT);
    reg_close(r);
    fakered_stop(&f);
    assert_int_equal(f.conns, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_unreachable),
        cmocka_unit_test(test_seed_no_overwrite),
        cmocka_unit_test(test_refresh_sees_other_writer),
        cmocka_unit_test(test_put_del_expect_version),
        cmocka_unit_test(test_change_messages),
        cmocka_unit_test(test_reconnect_after_restart),
        cmocka_unit_test(test_heal_from_seed),
        cmocka_unit_test(test_empty_registry_put_creates),
        cmocka_unit_test(test_readonly_write_reconnects),
        cmocka_unit_test(test_loading_read_reconnects),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
