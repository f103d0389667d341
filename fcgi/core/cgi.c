/* cgi — one request per process over stdin/stdout (cgi.h). */
#include "fcgi/core/cgi.h"

#include "fcgi/core/http.h"
#include "shared/log.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CGI_BUF 16384   /* per stream; a flush writes what is there at once */
/* The most of an unread body read and dropped before exit (cgi_io_discard). */
#define CGI_DISCARD_MAX (64LL << 20)

extern char **environ;

struct cgi__stream {
    FCGX_Stream s;          /* first: libfcgi calls the procs with &s */
    int fd;
    long long total;        /* bytes read from fd (reader) */
    unsigned char buf[CGI_BUF];
};

struct cgi_io {
    struct cgi__stream in, out, err;
    FCGX_Request req;
};

int cgi_detect(void)
{
    const char *gi = getenv("GATEWAY_INTERFACE");
    int acc = 0;
    socklen_t len = sizeof(acc);

    if (!gi || !*gi)
        return 0;
    /* a listening fd 0 is a FastCGI server's (mod_fcgid's, lighttpd's
     * spawn), whatever the environment says */
    if (getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0 && acc)
        return 0;
    return FCGX_IsCGI();
}

static void cgi__fill(FCGX_Stream *s)
{
    struct cgi__stream *cs = (struct cgi__stream *)s;
    ssize_t n;

    do {
        n = read(cs->fd, cs->buf, sizeof(cs->buf));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        /* EOF, or an error: FCGX_GetStr returns what it has (GetError
         * tells them apart) */
        s->isClosed = 1;
        s->FCGI_errno = n < 0 ? errno : 0;
        s->rdNext = s->stop = cs->buf;
        return;
    }
    cs->total += n;
    s->rdNext = cs->buf;
    s->stop = cs->buf + n;
}

/* Writes the buffer out (libfcgi calls it when the buffer is full, on
 * FCGX_FFlush, and with doClose at FCGX_FClose). A failed write closes the
 * stream: every later PutStr/FFlush then fails, which the HTTP layer reads
 * as "the client is gone". */
static void cgi__empty(FCGX_Stream *s, int doClose)
{
    struct cgi__stream *cs = (struct cgi__stream *)s;
    unsigned char *p = cs->buf;

    (void)doClose;
    while (p < s->wrNext) {
        ssize_t n = write(cs->fd, p, (size_t)(s->wrNext - p));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            s->isClosed = 1;
            s->FCGI_errno = n < 0 ? errno : EPIPE;
            break;
        }
        p += n;
    }
    s->wrNext = cs->buf;
    s->stop = cs->buf + sizeof(cs->buf);
}

static void cgi__init(struct cgi__stream *cs, int fd, int reader)
{
    memset(&cs->s, 0, sizeof(cs->s));
    cs->fd = fd;
    cs->s.isReader = reader;
    cs->s.rdNext = cs->s.stop = cs->s.stopUnget = cs->buf;
    cs->s.wrNext = cs->buf;
    if (!reader)
        cs->s.stop = cs->buf + sizeof(cs->buf);
    cs->s.fillBuffProc = cgi__fill;
    cs->s.emptyBuffProc = cgi__empty;
    cs->s.data = cs;
}

cgi_io_t *cgi_io_new(int in_fd, int out_fd, int err_fd)
{
    cgi_io_t *io = calloc(1, sizeof(*io));

    if (!io)
        return NULL;
    cgi__init(&io->in, in_fd, 1);
    cgi__init(&io->out, out_fd, 0);
    cgi__init(&io->err, err_fd, 0);
    return io;
}

FCGX_Request *cgi_io_request(cgi_io_t *io, char **envp)
{
    memset(&io->req, 0, sizeof(io->req));
    io->req.in = &io->in.s;
    io->req.out = &io->out.s;
    io->req.err = &io->err.s;
    io->req.envp = envp;
    io->req.ipcFd = -1;
    io->req.listen_sock = -1;
    return &io->req;
}

int cgi_io_discard(cgi_io_t *io, const char *content_length, const char *method)
{
    char scratch[16384];
    long long left = CGI_DISCARD_MAX + 1;
    int to_eof = 1;
    char *end;

    if (io->in.s.isClosed)
        return 0;   /* EOF (or an error) already seen */
    if (content_length && *content_length) {
        long long want;
        errno = 0;
        want = strtoll(content_length, &end, 10);
        if (errno || *end || want < 0)
            return 0;
        left = want - io->in.total;
        to_eof = 0;
    } else if (!method || strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
        return 0;   /* no body; a server need not close stdin then */
    }
    if (left <= 0)
        return 0;
    if (!to_eof && left > CGI_DISCARD_MAX)
        return -EFBIG;
    /* the answer first: the client need not wait for the upload to end */
    FCGX_FFlush(&io->out.s);
    while (left > 0) {
        ssize_t n = read(io->in.fd, scratch,
                         left < (long long)sizeof(scratch) ? (size_t)left : sizeof(scratch));
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 && to_eof)
            return 0;
        if (n <= 0)
            return -EIO;
        left -= n;
    }
    return to_eof ? -EFBIG : 0;
}

int cgi_io_close(cgi_io_t *io)
{
    int rc = 0;

    if (FCGX_FClose(&io->err.s) != 0)
        rc = -EPIPE;
    if (FCGX_FClose(&io->out.s) != 0)
        rc = -EPIPE;
    return rc;
}

void cgi_io_free(cgi_io_t *io)
{
    free(io);
}

int cgi_send_error(int status, const char *code, const char *msg)
{
    json_object *o = http_error_json(status, NULL, code, NULL, msg);
    const char *body = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : "{}";
    char head[256];
    int n, rc = -EPIPE;

    n = snprintf(head, sizeof(head), "Status: %d %s\r\nContent-Type: application/json\r\n\r\n",
                 status, http_reason(status));
    if (n > 0 && (size_t)n < sizeof(head) && write(STDOUT_FILENO, head, (size_t)n) == n &&
        write(STDOUT_FILENO, body, strlen(body)) == (ssize_t)strlen(body))
        rc = 0;
    json_object_put(o);
    return rc;
}

int cgi_run(const serve_cfg_t *cfg)
{
    serve_thread_t *t = NULL;
    cgi_io_t *io = NULL;
    int rc = 1;

    /* a client that hangs up is a failed write (EPIPE), not a signal */
    signal(SIGPIPE, SIG_IGN);
    io = cgi_io_new(STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO);
    t = serve_thread_new(cfg, -1);
    if (!io || !t) {
        if (cgi_send_error(500, NULL, "out of memory starting the request") == 0)
            rc = 0;
        goto out;
    }
    serve_handle_req(t, cgi_io_request(io, environ));
    (void)cgi_io_discard(io, getenv("CONTENT_LENGTH"), getenv("REQUEST_METHOD"));
    if (cgi_io_close(io) == 0)
        rc = 0;
    else
        log_info("CGI: the web server stopped reading the answer");
out:
    serve_thread_free(t);
    cgi_io_free(io);
    return rc;
}
