#include "tests/unit/support/tsrv.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct tsrv {
    int lfd, port, stop[2];
    pthread_t th;
    tsrv_handler handler;
    void *ud;
    char req[1 << 16];
};

void tsrv_say(int fd, const char *s)
{
    size_t n = strlen(s);

    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

int tsrv_wait_close(int fd)
{
    struct pollfd p = { fd, POLLIN, 0 };
    char junk[256];

    for (int i = 0; i < 100; i++) {
        if (poll(&p, 1, 100) > 0 && recv(fd, junk, sizeof(junk), 0) <= 0)
            return 1;
    }
    return 0;
}

/* Reads the head and Content-Length bytes of body; returns the body. */
static const char *tsrv__read(tsrv_t *s, int fd)
{
    size_t got = 0;
    const char *body = "";

    s->req[0] = '\0';
    for (;;) {
        ssize_t r = recv(fd, s->req + got, sizeof(s->req) - 1 - got, 0);
        char *end, *cl;
        if (r <= 0)
            break;
        got += (size_t)r;
        s->req[got] = '\0';
        if ((end = strstr(s->req, "\r\n\r\n"))) {
            long want = 0;
            if ((cl = strcasestr(s->req, "Content-Length:")))
                want = strtol(cl + 15, NULL, 10);
            body = end + 4;
            if ((long)(got - (size_t)(body - s->req)) >= want || got == sizeof(s->req) - 1)
                break;
        }
    }
    return body;
}

static void *tsrv__serve(void *arg)
{
    tsrv_t *s = arg;

    for (;;) {
        struct pollfd p[2] = { { s->lfd, POLLIN, 0 }, { s->stop[0], POLLIN, 0 } };
        const char *body;
        int fd;

        if (poll(p, 2, -1) < 0)
            continue;
        if (p[1].revents)
            break;
        if ((fd = accept(s->lfd, NULL, NULL)) < 0)
            continue;
        body = tsrv__read(s, fd);
        s->handler(s->ud, fd, s->req, body);
        close(fd);
    }
    return NULL;
}

tsrv_t *tsrv_start(tsrv_handler handler, void *ud)
{
    tsrv_t *s = calloc(1, sizeof(*s));
    struct sockaddr_in a;
    socklen_t al = sizeof(a);

    if (!s)
        return NULL;
    s->handler = handler;
    s->ud = ud;
    s->stop[0] = s->stop[1] = -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(s->lfd, 16) != 0 || getsockname(s->lfd, (struct sockaddr *)&a, &al) != 0 ||
        pipe(s->stop) != 0)
        goto fail;
    s->port = ntohs(a.sin_port);
    if (pthread_create(&s->th, NULL, tsrv__serve, s) != 0)
        goto fail;
    return s;
fail:
    if (s->lfd >= 0)
        close(s->lfd);
    if (s->stop[0] >= 0) {
        close(s->stop[0]);
        close(s->stop[1]);
    }
    free(s);
    return NULL;
}

int tsrv_port(const tsrv_t *s)
{
    return s->port;
}

void tsrv_stop(tsrv_t *s)
{
    if (!s)
        return;
    if (write(s->stop[1], "x", 1) == 1)
        pthread_join(s->th, NULL);
    close(s->lfd);
    close(s->stop[0]);
    close(s->stop[1]);
    free(s);
}
