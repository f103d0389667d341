/* Unit tests of the CGI front (fcgi/cgi-front): its FastCGI records
 * (fcgirec.h), the bytes a responder (libfcgi) expects, checked byte for
 * byte, and the name-value pairs decoded back the way the FastCGI spec
 * (section 3.4) does; what of the CGI environment a pool started from it
 * keeps, and the paths beside its socket (poolstart.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "fcgi/cgi-front/fcgirec.h"
#include "fcgi/cgi-front/poolstart.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void test_header_and_begin(void **st)
{
    (void)st;
    uint8_t h[FCGIREC_HEADER_LEN], b[16];
    fcgirec_header_t d;
    static const uint8_t want_h[] = { 1, FCGIREC_STDIN, 0x01, 0x02, 0xff, 0xff, 0, 0 };
    static const uint8_t want_b[] = { 1, FCGIREC_BEGIN_REQUEST, 0, 1, 0, 8, 0, 0,
                                      0, 1, 0, 0, 0, 0, 0, 0 };

    assert_int_equal(fcgirec_header(h, FCGIREC_STDIN, 0x0102, 65535), 0);
    assert_memory_equal(h, want_h, sizeof(want_h));
    assert_int_equal(fcgirec_header(h, FCGIREC_STDIN, 1, 65536), -EINVAL);
    fcgirec_begin(b, 1);
    assert_memory_equal(b, want_b, sizeof(want_b));

    static const uint8_t out[] = { 1, FCGIREC_STDOUT, 0, 1, 0x12, 0x34, 5, 0 };
    assert_int_equal(fcgirec_parse_header(out, &d), 0);
    assert_int_equal(d.type, FCGIREC_STDOUT);
    assert_int_equal(d.request_id, 1);
    assert_int_equal(d.content_len, 0x1234);
    assert_int_equal(d.padding_len, 5);
    static const uint8_t v2[] = { 2, FCGIREC_STDOUT, 0, 1, 0, 0, 0, 0 };
    assert_int_equal(fcgirec_parse_header(v2, &d), -EPROTO);
}

/* Decodes one pair at p; returns the bytes it took. */
static size_t decode_len(const uint8_t *p, size_t *n)
{
    if (p[0] < 128) {
        *n = p[0];
        return 1;
    }
    *n = ((size_t)(p[0] & 0x7f) << 24) | ((size_t)p[1] << 16) | ((size_t)p[2] << 8) | p[3];
    return 4;
}

static void test_pairs(void **st)
{
    (void)st;
    uint8_t buf[1024];
    size_t len = 0, at = 0, nl, vl;
    char big[300];

    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(fcgirec_env_pair(buf, &len, sizeof(buf), "REQUEST_METHOD=POST"), 0);
    assert_int_equal(len, 2 + 14 + 4);
    assert_int_equal(buf[0], 14);
    assert_int_equal(buf[1], 4);
    assert_memory_equal(buf + 2, "REQUEST_METHODPOST", 18);
    /* a value of 299 bytes takes the four-byte length, high bit set */
    assert_int_equal(fcgirec_pair(buf, &len, sizeof(buf), "X", 1, big, strlen(big)), 0);
    /* an entry without '=' is a name with an empty value; '=' in a value stays */
    assert_int_equal(fcgirec_env_pair(buf, &len, sizeof(buf), "EMPTY"), 0);
    assert_int_equal(fcgirec_env_pair(buf, &len, sizeof(buf), "Q=a=b"), 0);

    at += decode_len(buf + at, &nl);
    at += decode_len(buf + at, &vl);
    at += nl + vl;
    at += decode_len(buf + at, &nl);
    assert_int_equal(buf[at], 0x80);
    at += decode_len(buf + at, &vl);
    assert_int_equal(nl, 1);
    assert_int_equal(vl, 299);
    assert_memory_equal(buf + at + 1, big, 299);
    at += nl + vl;
    at += decode_len(buf + at, &nl);
    at += decode_len(buf + at, &vl);
    assert_int_equal(nl, 5);
    assert_int_equal(vl, 0);
    assert_memory_equal(buf + at, "EMPTY", 5);
    at += nl;
    at += decode_len(buf + at, &nl);
    at += decode_len(buf + at, &vl);
    assert_memory_equal(buf + at, "Qa=b", 4);
    at += nl + vl;
    assert_int_equal(at, len);
}

/* A pair that does not fit leaves the buffer as it was: the caller's cap
 * holds, never a partial pair. */
static void test_pair_cap(void **st)
{
    (void)st;
    uint8_t buf[16];
    size_t len = 0;

    memset(buf, 0xee, sizeof(buf));
    assert_int_equal(fcgirec_env_pair(buf, &len, sizeof(buf), "A=1"), 0);
    assert_int_equal(len, 4);
    assert_int_equal(fcgirec_env_pair(buf, &len, sizeof(buf), "LONGER_NAME=value"), -ENOSPC);
    assert_int_equal(len, 4);
    assert_int_equal(buf[4], 0xee);
    assert_int_equal(fcgirec_env_pair(buf, &len, sizeof(buf), "B=123456789"), 0);
    assert_int_equal(len, 16);   /* exactly full */
    assert_int_equal(fcgirec_env_pair(buf, &len, sizeof(buf), "C="), -ENOSPC);
}

/* The pool must not keep the request: no header (a client's Authorization,
 * httpoxy's HTTP_PROXY), no CGI variable (GATEWAY_INTERFACE would make it a
 * one-shot CGI program); the deployment's settings stay. */
static void test_request_vars(void **st)
{
    (void)st;
    static const char *const request[] = {
        "HTTP_AUTHORIZATION=Bearer sk-client", "HTTP_PROXY=http://evil:1", "GATEWAY_INTERFACE=CGI/1.1",
        "PATH_INFO=/v1/models", "QUERY_STRING=a=b", "CONTENT_LENGTH=12", "CONTENT_TYPE=application/json",
        "REQUEST_METHOD=POST", "REQUEST_URI=/v1/models", "REMOTE_ADDR=127.0.0.1", "SCRIPT_NAME=/aiproxy.cgi",
        "SCRIPT_FILENAME=/srv/aiproxy.cgi", "SERVER_PROTOCOL=HTTP/1.1", "REDIRECT_HTTP_AUTHORIZATION=x",
        "REDIRECT_STATUS=200", "DOCUMENT_ROOT=/srv", "SSL_CLIENT_S_DN=x", "HTTPS=on", "AUTH_TYPE=Basic",
        "PATH_TRANSLATED=/srv/v1", "CONTEXT_PREFIX=/", NULL,
    };
    static const char *const deployment[] = {
        "REDIS_URL=unix:///run/redis.sock", "AIPROXY_CONFIG=/etc/aiproxy.yaml", "OPENAI_API_KEY=sk-up",
        "PATH=/usr/bin:/bin", "AIPROXY_IDLE_EXIT_S=60", "HTTPS_PROXY=http://proxy:3128", "LANG=C.UTF-8",
        "ADMIN_API_KEY=k", NULL,
    };
    int i;

    for (i = 0; request[i]; i++)
        assert_true(poolstart_is_request_var(request[i]));
    for (i = 0; deployment[i]; i++)
        assert_false(poolstart_is_request_var(deployment[i]));
}

static void test_paths(void **st)
{
    (void)st;
    poolstart_paths_t p;
    char longp[200];

    setenv("AIPROXY_CGI_SOCKET", "/srv/acct/run/pool.sock", 1);
    assert_int_equal(poolstart_paths(&p), 0);
    assert_string_equal(p.sock, "/srv/acct/run/pool.sock");
    assert_string_equal(p.lock, "/srv/acct/run/pool.sock.lock");
    assert_string_equal(p.start, "/srv/acct/run/pool.sock.start");
    assert_string_equal(p.pid, "/srv/acct/run/pool.sock.pid");
    assert_string_equal(p.log, "/srv/acct/run/pool.sock.log");
    /* a unix socket path is at most 107 bytes: refused, not cut */
    memset(longp, 'a', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    setenv("AIPROXY_CGI_SOCKET", longp, 1);
    assert_int_equal(poolstart_paths(&p), -ENAMETOOLONG);
    unsetenv("AIPROXY_CGI_SOCKET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_and_begin),
        cmocka_unit_test(test_pairs),
        cmocka_unit_test(test_pair_cap),
        cmocka_unit_test(test_request_vars),
        cmocka_unit_test(test_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
