/* REDIS_URL parsing: every accepted form and every refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shared/rconn.h"

static void ok(const char *url, rconn_addr_t *a)
{
    char err[256] = "";
    int rc = rconn_parse(url, a, err, sizeof err);
    if (rc != 0)
        fail_msg("%s: %s", url, err);
}

static void bad(const char *url, const char *needle)
{
    rconn_addr_t a;
    char err[256] = "";
    assert_int_equal(rconn_parse(url, &a, err, sizeof err), -EINVAL);
    if (!strstr(err, needle))
        fail_msg("%s: error '%s' lacks '%s'", url, err, needle);
}

static void test_tcp_forms(void **state)
{
    rconn_addr_t a;
    (void)state;
    ok("redis://localhost", &a);
    assert_string_equal(a.host, "localhost");
    assert_int_equal(a.port, 6379);
    assert_int_equal(a.db, 0);
    assert_string_equal(a.path, "");
    ok("redis://10.0.0.1:7000/3", &a);
    assert_string_equal(a.host, "10.0.0.1");
    assert_int_equal(a.port, 7000);
    assert_int_equal(a.db, 3);
    ok("redis://h:1/", &a);
    assert_int_equal(a.db, 0);
    ok("redis://[::1]:6380/2", &a);
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.port, 6380);
    assert_int_equal(a.db, 2);
}

static void test_auth_forms(void **state)
{
    rconn_addr_t a;
    (void)state;
    ok("redis://:s3cret@h:6379/0", &a);
    assert_string_equal(a.user, "");
    assert_string_equal(a.password, "s3cret");
    ok("redis://alice:pw@h", &a);
    assert_string_equal(a.user, "alice");
    assert_string_equal(a.password, "pw");
    ok("redis://onlypass@h", &a);
    assert_string_equal(a.password, "onlypass");
    ok("redis://:p%40ss%3Aw@h", &a);      /* %-escapes: "p@ss:w" */
    assert_string_equal(a.password, "p@ss:w");
    ok("redis://:a@b@h:1", &a);           /* the last '@' ends the userinfo */
    assert_string_equal(a.password, "a@b");
    assert_string_equal(a.host, "h");
}

static void test_unix_forms(void **state)
{
    rconn_addr_t a;
    (void)state;
    ok("unix:///run/redis.sock", &a);
    assert_string_equal(a.path, "/run/redis.sock");
    assert_string_equal(a.host, "");
    assert_int_equal(a.db, 0);
    ok("unix:///tmp/r.sock?db=5", &a);
    assert_string_equal(a.path, "/tmp/r.sock");
    assert_int_equal(a.db, 5);
    ok("unix://:pw@/tmp/r.sock", &a);
    assert_string_equal(a.password, "pw");
    assert_string_equal(a.path, "/tmp/r.sock");
}

static void test_refusals(void **state)
{
    (void)state;
    bad("", "empty");
    bad("http://h", "scheme");
    bad("rediss://h", "TLS");
    bad("redis://", "no host");
    bad("redis://:6379", "no host");
    bad("redis://h:0", "port");
    bad("redis://h:65536", "port");
    bad("redis://h:12x", "port");
    bad("redis://h:6379/x", "database");
    bad("redis://h:6379/-1", "database");
    bad("redis://[::1", "'['");
    bad("redis://[::1]x", "':port'");
    bad("redis://:%zz@h", "%-escape");
    bad("redis://:%4@h", "%-escape");
    bad("redis://:%00@h", "%00");
    bad("unix://relative.sock", "absolute");
    bad("unix:///", "no socket path");
    bad("unix:///tmp/s?database=1", "?db=N");
    bad("unix:///tmp/s?db=", "?db=N");
}

static void test_too_long(void **state)
{
    char url[2048];
    (void)state;
    memset(url, 'a', sizeof url);
    memcpy(url, "redis://", 8);
    url[sizeof url - 1] = '\0';
    bad(url, "too long");
}

static void test_env_defaults(void **state)
{
    (void)state;
    unsetenv("REDIS_URL");
    unsetenv("AIPROXY_REDIS_PREFIX");
    assert_string_equal(rconn_url(), "redis://127.0.0.1:6379/0");
    assert_string_equal(rconn_prefix(), "aiproxy:");
    setenv("REDIS_URL", "unix:///x.sock", 1);
    setenv("AIPROXY_REDIS_PREFIX", "t1:", 1);
    assert_string_equal(rconn_url(), "unix:///x.sock");
    assert_string_equal(rconn_prefix(), "t1:");
    unsetenv("REDIS_URL");
    unsetenv("AIPROXY_REDIS_PREFIX");
}

static void test_connect_refused_names_url_not_password(void **state)
{
    char err[512] = "";
    redisContext *c;
    (void)state;
    c = rconn_connect("unix://:topsecret@/nonexistent/dir/redis.sock", 500, err, sizeof err);
    assert_null(c);
    assert_non_null(strstr(err, "cannot reach Redis at unix:///nonexistent/dir/redis.sock"));
    assert_null(strstr(err, "topsecret"));
    c = rconn_connect("bogus://x", 500, err, sizeof err);
    assert_null(c);
    assert_non_null(strstr(err, "bad REDIS_URL"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_forms),
        cmocka_unit_test(test_auth_forms),
        cmocka_unit_test(test_unix_forms),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_env_defaults),
        cmocka_unit_test(test_connect_refused_names_url_not_password),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
