/* bench-upstream — a fast scripted OpenAI-compatible upstream for benchmarks.
 *
 * One thread, epoll, HTTP/1.1 keep-alive. POST …/chat/completions answers a
 * fixed chat.completion, or, when the body asks for "stream":true, an SSE
 * stream of `--chunks` content chunks spaced `--chunk-ms` apart (0: all at
 * once), then a usage chunk and [DONE]. Made to be the baseline the gateway is
 * compared against, so it must cost as little as possible per request.
 *
 *   bench-upstream --port N [--chunks 4] [--chunk-ms 0]
 * Prints "listening on PORT" once ready. Stops on SIGTERM/SIGINT, printing
 * "max concurrent streams N" (the most SSE answers in progress at once, so a
 * hold test can show its streams really overlapped). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAXCONN 4096
#define RBUF 65536

struct conn {
    int fd;
    size_t rlen;
    char rbuf[RBUF];
    int streaming;      /* chunks left to send; 0 = not streaming */
    long long next_ms;  /* when the next chunk is due */
};

static volatile sig_atomic_t stop;
static int nchunks = 4, chunk_ms;
static struct conn *conns[MAXCONN];
static int active_streams, max_streams;   /* SSE answers in progress; the peak */

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                /* benchmark replies are small; wait briefly for room */
                struct timespec ts = { 0, 100000 };
                nanosleep(&ts, NULL);
                continue;
            }
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static const char completion[] =
    "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1700000000,"
    "\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":\"Hello from the benchmark upstream.\"},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":7,\"total_tokens\":16}}";

static int send_chunk(struct conn *c)
{
    char body[512];
    char frame[600];
    int n;

    if (c->streaming > 1)
        n = snprintf(body, sizeof(body),
                     "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\","
                     "\"created\":1700000000,\"model\":\"bench-model\",\"choices\":[{\"index\":0,"
                     "\"delta\":{\"content\":\"tok%d \"},\"finish_reason\":null}]}\n\n",
                     c->streaming);
    else
        n = snprintf(body, sizeof(body),
                     "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\","
                     "\"created\":1700000000,\"model\":\"bench-model\",\"choices\":[{\"index\":0,"
                     "\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":9,"
                     "\"completion_tokens\":7,\"total_tokens\":16}}\n\ndata: [DONE]\n\n");
    /* chunked transfer encoding frame */
    int m = snprintf(frame, sizeof(frame), "%x\r\n%.*s\r\n%s", n, n, body,
                     c->streaming == 1 ? "0\r\n\r\n" : "");
    if (--c->streaming == 0)
        active_streams--;
    return send_all(c->fd, frame, (size_t)m);
}

/* Handles every complete request in the read buffer. -1 closes the conn. */
static int serve(struct conn *c)
{
    for (;;) {
        char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
        size_t hlen, clen = 0, total;
        char *cl;

        if (!end || c->streaming)
            return 0;
        hlen = (size_t)(end - c->rbuf) + 4;
        cl = memmem(c->rbuf, hlen, "Content-Length:", 15);
        if (!cl)
            cl = memmem(c->rbuf, hlen, "content-length:", 15);
        if (cl)
            clen = strtoul(cl + 15, NULL, 10);
        total = hlen + clen;
        if (total > RBUF)
            return -1;
        if (c->rlen < total)
            return 0;
        if (memmem(c->rbuf + hlen, clen, "\"stream\":true", 13) ||
            memmem(c->rbuf + hlen, clen, "\"stream\": true", 14)) {
            static const char hdr[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                      "Transfer-Encoding: chunked\r\n\r\n";
            if (send_all(c->fd, hdr, sizeof(hdr) - 1) < 0)
                return -1;
            c->streaming = nchunks + 1;
            if (++active_streams > max_streams)
                max_streams = active_streams;
            c->next_ms = now_ms();
            if (!chunk_ms)
                while (c->streaming)
                    if (send_chunk(c) < 0)
                        return -1;
        } else {
            char hdr[160];
            int n = snprintf(hdr, sizeof(hdr),
                             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             "Content-Length: %zu\r\n\r\n", sizeof(completion) - 1);
            if (send_all(c->fd, hdr, (size_t)n) < 0 ||
                send_all(c->fd, completion, sizeof(completion) - 1) < 0)
                return -1;
        }
        memmove(c->rbuf, c->rbuf + total, c->rlen - total);
        c->rlen -= total;
    }
}

static void drop(int ep, struct conn *c)
{
    if (c->streaming)
        active_streams--;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conns[c->fd] = NULL;
    free(c);
}

int main(int argc, char **argv)
{
    int port = 0, one = 1, lfd, ep, tfd;
    struct sockaddr_in sa = { .sin_family = AF_INET };
    struct epoll_event ev, evs[256];
    socklen_t sl = sizeof(sa);

    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port"))
            port = (int)strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--chunks"))
            nchunks = (int)strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--chunk-ms"))
            chunk_ms = (int)strtol(argv[i + 1], NULL, 10);
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((unsigned short)port);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1024) < 0) {
        perror("bench-upstream: bind/listen");
        return 1;
    }
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    ep = epoll_create1(EPOLL_CLOEXEC);
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (chunk_ms > 0) {
        struct itimerspec its = { { 0, 5000000 }, { 0, 5000000 } };
        timerfd_settime(tfd, 0, &its, NULL);
        ev.data.fd = tfd;
        epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    }
    printf("listening on %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    while (!stop) {
        int n = epoll_wait(ep, evs, 256, 200);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int cfd;
                while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    struct conn *c;
                    if (cfd >= MAXCONN || !(c = calloc(1, sizeof(*c)))) {
                        close(cfd);
                        continue;
                    }
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    c->fd = cfd;
                    conns[cfd] = c;
                    ev.events = EPOLLIN;
                    ev.data.fd = cfd;
                    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
                }
            } else if (fd == tfd) {
                unsigned long long x;
                long long t = now_ms();
                if (read(tfd, &x, sizeof(x)) < 0) {
                    /* spurious wake-up */
                }
                for (int k = 0; k < MAXCONN; k++) {
                    struct conn *c = conns[k];
                    if (c && c->streaming && c->next_ms <= t) {
                        c->next_ms = t + chunk_ms;
                        if (send_chunk(c) < 0)
                            drop(ep, c);
                        else if (!c->streaming && serve(c) < 0)
                            drop(ep, c);
                    }
                }
            } else {
                struct conn *c = conns[fd];
                ssize_t r;
                if (!c)
                    continue;
                r = recv(fd, c->rbuf + c->rlen, RBUF - c->rlen, 0);
                if (r <= 0) {
                    if (r < 0 && errno == EAGAIN)
                        continue;
                    drop(ep, c);
                    continue;
                }
                c->rlen += (size_t)r;
                if (serve(c) < 0)
                    drop(ep, c);
            }
        }
    }
    for (int k = 0; k < MAXCONN; k++)
        if (conns[k])
            drop(ep, conns[k]);
    close(tfd);
    close(ep);
    close(lfd);
    printf("max concurrent streams %d\n", max_streams);
    return 0;
}
