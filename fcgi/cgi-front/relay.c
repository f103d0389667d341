/* relay — one CGI request to the pool as FastCGI, its answer back (relay.h). */
#include "fcgi/cgi-front/relay.h"

#include "fcgi/cgi-front/fcgirec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

#define RELAY_PARAMS_MAX (1u << 20)     /* the environment as PARAMS; the kernel caps it below */
#define RELAY_CHUNK 32768               /* STDIN record content */
#define RELAY_REQ_ID 1

void relay_error(int status, const char *reason, const char *type, const char *msg)
{
    char out[1024];
    int n = snprintf(out, sizeof(out),
                     "Status: %d %s\r\nContent-Type: application/json\r\n\r\n"
                     "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,"
                     "\"code\":null}}\n", status, reason, msg, type);
    if (n > 0 && (size_t)n < sizeof(out) && write(1, out, (size_t)n) < 0)
        return;
}

static int relay__write_all(int fd, const void *p, size_t len)
{
    const char *c = p;

    while (len) {
        ssize_t n = write(fd, c, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -(n < 0 ? errno : EIO);
        c += n;
        len -= (size_t)n;
    }
    return 0;
}

/* BEGIN_REQUEST and the environment as PARAMS, in records of at most
 * FCGIREC_MAX_CONTENT (a pair may span two: the stream is what counts). */
static int relay__send_params(int fd)
{
    uint8_t *buf = malloc(RELAY_PARAMS_MAX), hdr[16];
    size_t len = 0, at = 0;
    int rc = -ENOMEM, i;

    if (!buf)
        goto out;
    for (i = 0; environ[i]; i++) {
        if ((rc = fcgirec_env_pair(buf, &len, RELAY_PARAMS_MAX, environ[i])) != 0)
            goto out;
    }
    fcgirec_begin(hdr, RELAY_REQ_ID);
    if ((rc = relay__write_all(fd, hdr, 16)) != 0)
        goto out;
    while (at < len) {
        size_t n = len - at > FCGIREC_MAX_CONTENT ? FCGIREC_MAX_CONTENT : len - at;
        fcgirec_header(hdr, FCGIREC_PARAMS, RELAY_REQ_ID, n);
        if ((rc = relay__write_all(fd, hdr, FCGIREC_HEADER_LEN)) != 0 ||
            (rc = relay__write_all(fd, buf + at, n)) != 0)
            goto out;
        at += n;
    }
    fcgirec_header(hdr, FCGIREC_PARAMS, RELAY_REQ_ID, 0);
    rc = relay__write_all(fd, hdr, FCGIREC_HEADER_LEN);
out:
    free(buf);
    return rc;
}

struct relay__state {
    int sock;
    long long body_left;        /* -1: read stdin to EOF */
    int stdin_open, sent_end;   /* stdin still read; the empty STDIN sent */
    uint8_t out[FCGIREC_HEADER_LEN + RELAY_CHUNK + FCGIREC_HEADER_LEN];
    size_t olen, ooff;
    uint8_t in[FCGIREC_HEADER_LEN + FCGIREC_MAX_CONTENT + 255];
    size_t ilen;
    int answered, ended;        /* a STDOUT byte went out; END_REQUEST seen */
};

/* Reads the next piece of the body into one STDIN record (and the empty one
 * that ends the stream once it is all read). */
static void relay__fill_stdin(struct relay__state *r)
{
    size_t want = RELAY_CHUNK;
    ssize_t n = 0;

    if (r->body_left >= 0 && (long long)want > r->body_left)
        want = (size_t)r->body_left;
    if (want) {
        do {
            n = read(0, r->out + FCGIREC_HEADER_LEN, want);
        } while (n < 0 && errno == EINTR);
    }
    r->olen = r->ooff = 0;
    if (n > 0) {
        fcgirec_header(r->out, FCGIREC_STDIN, RELAY_REQ_ID, (size_t)n);
        r->olen = FCGIREC_HEADER_LEN + (size_t)n;
        if (r->body_left > 0)
            r->body_left -= n;
    }
    if (n <= 0 || r->body_left == 0) {   /* all read, or EOF early: the pool sees a short body */
        fcgirec_header(r->out + r->olen, FCGIREC_STDIN, RELAY_REQ_ID, 0);
        r->olen += FCGIREC_HEADER_LEN;
        r->stdin_open = 0;
    }
}

/* Handles the complete records in r->in. Returns 0, 1 at END_REQUEST, or
 * -EPIPE when the web server no longer takes the answer (client gone). */
static int relay__records(struct relay__state *r)
{
    size_t at = 0;
    int rc = 0;

    while (r->ilen - at >= FCGIREC_HEADER_LEN) {
        fcgirec_header_t h;
        size_t total;
        if (fcgirec_parse_header(r->in + at, &h) != 0)
            return -EPROTO;
        total = FCGIREC_HEADER_LEN + h.content_len + h.padding_len;
        if (r->ilen - at < total)
            break;
        if (h.type == FCGIREC_STDOUT && h.content_len) {
            if (relay__write_all(1, r->in + at + FCGIREC_HEADER_LEN, h.content_len) != 0)
                return -EPIPE;
            r->answered = 1;
        } else if (h.type == FCGIREC_STDERR && h.content_len) {
            (void)relay__write_all(2, r->in + at + FCGIREC_HEADER_LEN, h.content_len);
        } else if (h.type == FCGIREC_END_REQUEST) {
            r->ended = 1;
            rc = 1;
        }
        at += total;
    }
    memmove(r->in, r->in + at, r->ilen - at);
    r->ilen -= at;
    return rc;
}

/* The request's body to the pool and its answer to stdout, both as they
 * come. Returns the exit code. */
int relay_run(int sock)
{
    struct relay__state *r = calloc(1, sizeof(*r));
    const char *cl = getenv("CONTENT_LENGTH");
    int rc = 1, fl;

    if (!r) {
        relay_error(500, "Internal Server Error", "server_error", "the CGI front is out of memory");
        return 1;
    }
    r->sock = sock;
    r->body_left = -1;
    if (cl && *cl) {
        char *end;
        errno = 0;
        r->body_left = strtoll(cl, &end, 10);
        if (errno || *end || r->body_left < 0)
            r->body_left = 0;   /* a bad length: no body; the pool answers the request */
    }
    r->stdin_open = 1;
    if (relay__send_params(sock) != 0)
        goto lost;
    /* from here the body and the answer flow both ways at once: never block
     * on a write while the pool waits for us to read */
    fl = fcntl(sock, F_GETFL);
    if (fl < 0 || fcntl(sock, F_SETFL, fl | O_NONBLOCK) != 0)
        goto lost;
    if (r->body_left == 0)
        relay__fill_stdin(r);   /* no body: stdin may never see EOF, do not wait on it */
    for (;;) {
        struct pollfd pf[2];
        int nf = 1, x;
        ssize_t n;

        pf[0].fd = sock;
        pf[0].events = POLLIN | (r->ooff < r->olen ? POLLOUT : 0);
        if (r->ooff >= r->olen && r->stdin_open) {
            pf[1].fd = 0;
            pf[1].events = POLLIN;
            nf = 2;
        }
        if (poll(pf, (nfds_t)nf, -1) < 0) {
            if (errno == EINTR)
                continue;
            goto lost;
        }
        if (nf == 2 && pf[1].revents)
            relay__fill_stdin(r);
        if (pf[0].revents & POLLOUT) {
            n = write(sock, r->out + r->ooff, r->olen - r->ooff);
            if (n > 0) {
                r->ooff += (size_t)n;
            } else if (n < 0 && errno != EINTR && errno != EAGAIN) {
                r->stdin_open = 0;   /* the pool stopped reading: take its answer */
                r->olen = r->ooff = 0;
            }
        }
        if (!(pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        n = read(sock, r->in + r->ilen, sizeof(r->in) - r->ilen);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            goto lost;
        r->ilen += (size_t)n;
        x = relay__records(r);
        if (x == 1) {
            rc = 0;
            goto out;
        }
        if (x == -EPIPE) {
            rc = 0;   /* the client went away: closing the socket tells the pool */
            goto out;
        }
        if (x < 0)
            goto lost;
    }
lost:
    if (!r->answered)
        relay_error(502, "Bad Gateway", "server_error",
                    "the aiproxy responder pool dropped the request; retry, and see the "
                    "pool's log (AIPROXY_CGI_SOCKET.log) if it persists");
out:
    free(r);
    return rc;
}
