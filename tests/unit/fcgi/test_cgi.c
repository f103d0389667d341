/* cgi: plain CGI mode (issue 14). Streams over file descriptors that deliver
 * each flush at once and report a reader that went away; CGI detection from
 * the environment and fd 0; and one request served through the real serve
 * path, routed on PATH_INFO (what follows the script's URL). */
#include "fcgi/core/cgi.h"
#include "fcgi/core/http.h"
#include "fcgi/routes.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

/* What is in the pipe now, without waiting (the test reads what a flush
 * already delivered, not what would arrive later). */
static size_t test__drain(int fd, char *out, size_t cap)
{
    size_t got = 0;
    ssize_t n;
    int fl = fcntl(fd, F_GETFL);

    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    while (got + 1 < cap && (n = read(fd, out + got, cap - 1 - got)) > 0)
        got += (size_t)n;
    fcntl(fd, F_SETFL, fl);
    out[got] = '\0';
    return got;
}

/* Buffered until a flush; each flush is on the pipe at once, small or
 * larger than the stream's buffer. */
static void test_flush_delivers_at_once(void **state)
{
    int out[2], in[2];
    char got[65536], big[40000];
    cgi_io_t *io;
    FCGX_Request *r;

    (void)state;
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(in), 0);
    io = cgi_io_new(in[0], out[1], out[1]);
    assert_non_null(io);
    r = cgi_io_request(io, NULL);
    assert_int_equal(r->ipcFd, -1);
    assert_int_equal(FCGX_PutStr("data: one\n\n", 11, r->out), 11);
    assert_int_equal(test__drain(out[0], got, sizeof(got)), 0);   /* buffered */
    assert_int_equal(FCGX_FFlush(r->out), 0);
    assert_int_equal(test__drain(out[0], got, sizeof(got)), 11);
    assert_string_equal(got, "data: one\n\n");
    memset(big, 'x', sizeof(big));
    assert_int_equal(FCGX_PutStr(big, (int)sizeof(big), r->out), (int)sizeof(big));
    assert_int_equal(FCGX_FFlush(r->out), 0);
    assert_int_equal(test__drain(out[0], got, sizeof(got)), sizeof(big));
    /* the body side: what is there, then EOF */
    assert_int_equal(write(in[1], "{\"a\":1}", 7), 7);
    close(in[1]);
    assert_int_equal(FCGX_GetStr(got, 100, r->in), 7);
    assert_int_equal(FCGX_GetStr(got, 100, r->in), 0);
    assert_int_equal(FCGX_GetError(r->in), 0);
    assert_int_equal(cgi_io_close(io), 0);
    cgi_io_free(io);
    close(in[0]);
    close(out[0]);
    close(out[1]);
}

/* The web server stopped reading (client gone): the next flush fails and the
 * HTTP layer marks the request client_gone, which ends a stream. */
static void test_reader_gone_is_client_gone(void **state)
{
    int out[2], in[2];
    cgi_io_t *io;
    http_req_t req;

    (void)state;
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(in), 0);
    io = cgi_io_new(in[0], out[1], out[1]);
    assert_non_null(io);
    memset(&req, 0, sizeof(req));
    req.fcgx = cgi_io_request(io, NULL);
    assert_int_equal(http_send_headers(&req, 200, "text/event-stream", NULL), 0);
    assert_int_equal(http_write(&req, "data: a\n\n", 9, 1), 0);
    close(out[0]);
    assert_int_equal(http_write(&req, "data: b\n\n", 9, 1), -EPIPE);
    assert_int_equal(req.client_gone, 1);
    assert_int_equal(cgi_io_close(io), -EPIPE);
    cgi_io_free(io);
    close(out[1]);
    close(in[0]);
    close(in[1]);
}

/* An answer given from the headers leaves the body unread; the process
 * reads and drops it before exit (mod_cgid resets the socket of a program
 * that exits with input unread, and the answer is lost): exactly the rest of
 * CONTENT_LENGTH, or to EOF for a chunked upload. A GET without a length is
 * not read at all: a server need not close stdin then (the write end stays
 * open here, so a read would block the test). */
static void test_discard_unread_body(void **state)
{
    int out[2], in[2];
    char got[64];
    cgi_io_t *io;
    FCGX_Request *r;

    (void)state;
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(in), 0);
    io = cgi_io_new(in[0], out[1], out[1]);
    r = cgi_io_request(io, NULL);
    assert_int_equal(write(in[1], "0123", 4), 4);
    assert_int_equal(FCGX_GetStr(got, 4, r->in), 4);   /* the request read 4 */
    assert_int_equal(write(in[1], "456789abcdef", 12), 12);
    assert_int_equal(cgi_io_discard(io, "10", "POST"), 0);   /* 6 more: "456789" */
    assert_int_equal(test__drain(in[0], got, sizeof(got)), 6);
    assert_string_equal(got, "abcdef");
    assert_int_equal(cgi_io_discard(io, NULL, "GET"), 0);      /* no read: no hang */
    assert_int_equal(write(in[1], "chunked body", 12), 12);
    close(in[1]);
    assert_int_equal(cgi_io_discard(io, NULL, "POST"), 0);     /* to EOF */
    assert_int_equal(test__drain(in[0], got, sizeof(got)), 0);
    assert_int_equal(cgi_io_close(io), 0);
    cgi_io_free(io);
    close(in[0]);
    close(out[0]);
    close(out[1]);
}

/* Runs cgi_detect with `fd` as fd 0. */
static int test__detect_with_stdin(int fd)
{
    int saved = dup(0), rc;

    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, 0), 0);
    rc = cgi_detect();
    assert_int_equal(dup2(saved, 0), 0);
    close(saved);
    return rc;
}

/* GATEWAY_INTERFACE and a stdin that is no listen socket: CGI. A listening
 * fd 0 (mod_fcgid, lighttpd's spawn) stays FastCGI whatever the environment;
 * no GATEWAY_INTERFACE (a shell) is not CGI either. */
static void test_detect(void **state)
{
    int p[2], ls;
    struct sockaddr_in a;

    (void)state;
    assert_int_equal(pipe(p), 0);
    unsetenv("GATEWAY_INTERFACE");
    assert_int_equal(test__detect_with_stdin(p[0]), 0);
    setenv("GATEWAY_INTERFACE", "CGI/1.1", 1);
    assert_int_equal(test__detect_with_stdin(p[0]), 1);
    ls = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(ls, 4), 0);
    assert_int_equal(test__detect_with_stdin(ls), 0);
    unsetenv("GATEWAY_INTERFACE");
    close(ls);
    close(p[0]);
    close(p[1]);
}

/* One request through serve_handle_req: routed on PATH_INFO, so the script's
 * own URL (REQUEST_URI /cgi-bin/aiproxy.cgi/...) does not make every route
 * 404; the answer is CGI's ("Status:" header) in OpenAI's shape. No Redis is
 * needed to reach the route table. */
static void test_serve_routes_on_path_info(void **state)
{
    char *envp[] = { "GATEWAY_INTERFACE=CGI/1.1", "REQUEST_METHOD=DELETE",
                     "SCRIPT_NAME=/cgi-bin/aiproxy.cgi", "PATH_INFO=/v1/models",
                     "REQUEST_URI=/cgi-bin/aiproxy.cgi/v1/models", "CONTENT_LENGTH=0", NULL };
    serve_cfg_t sc;
    serve_thread_t *t;
    cgi_io_t *io;
    int out[2], in[2];
    char got[8192];

    (void)state;
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(in), 0);
    close(in[1]);
    memset(&sc, 0, sizeof(sc));
    sc.max_body = 1024;
    sc.redis_url = "unix:///nonexistent/redis.sock";
    sc.prefix = "t:";
    sc.routes = routes_table;
    sc.path_info = 1;
    t = serve_thread_new(&sc, -1);
    io = cgi_io_new(in[0], out[1], out[1]);
    assert_non_null(t);
    assert_non_null(io);
    serve_handle_req(t, cgi_io_request(io, envp));
    assert_int_equal(cgi_io_close(io), 0);
    test__drain(out[0], got, sizeof(got));
    assert_true(strncmp(got, "Status: 405 ", 12) == 0);
    assert_non_null(strstr(got, "Allow: GET"));
    assert_non_null(strstr(got, "\"type\":\"invalid_request_error\""));
    assert_non_null(strstr(got, "DELETE is not allowed on /v1/models"));
    cgi_io_free(io);
    serve_thread_free(t);
    close(in[0]);
    close(out[0]);
    close(out[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flush_delivers_at_once),
        cmocka_unit_test(test_reader_gone_is_client_gone),
        cmocka_unit_test(test_discard_unread_body),
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_serve_routes_on_path_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
