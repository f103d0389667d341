/* bench-streams — concurrent streaming chat requests, measuring time to first
 * content token (TTFT) and completion, for `make bench` and the issue-8 hold
 * test (many slow streams open at once).
 *
 *   bench-streams --port P [--path /v1/chat/completions] [-c 32] [-n 2000]
 *                 [--model NAME] [--key KEY] [--hold]
 *
 * Each of -c threads runs requests back to back (one connection per request,
 * Connection: close) until -n are done; with --hold every thread runs exactly
 * one request and all start together, so -c streams are open at once. A
 * request counts as an error unless it answers 200 and ends with [DONE].
 * Prints one JSON line: {"requests","errors","ttft_p50_us","ttft_p99_us",
 * "total_p50_us","total_p99_us","wall_ms"}. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port, conc = 32, total = 2000, hold;
static const char *path = "/v1/chat/completions", *model = "bench", *key;
static long *ttft, *tot;
static int next_req, errors;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t start_line;

static long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

/* A first content piece: "content":"x with x not the closing quote. */
static int has_content(const char *p, size_t n)
{
    static const char pat[] = "\"content\":\"";
    const char *end = p + n;
    while ((p = memmem(p, (size_t)(end - p), pat, sizeof(pat) - 1))) {
        p += sizeof(pat) - 1;
        if (p < end && *p != '"')
            return 1;
    }
    return 0;
}

static int one_request(long *t_first, long *t_total)
{
    char req[1024], body[512], buf[65536];
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
    size_t have = 0;
    int fd, one = 1, blen, rlen, ok = 0;
    long t0 = now_us();

    *t_first = -1;
    blen = snprintf(body, sizeof(body),
                    "{\"model\":\"%s\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                    "\"content\":\"hello\"}]}", model);
    rlen = snprintf(req, sizeof(req),
                    "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\nConnection: close\r\n%s%s%s\r\n%s",
                    path, blen, key ? "Authorization: Bearer " : "", key ? key : "",
                    key ? "\r\n" : "", body);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        send(fd, req, (size_t)rlen, MSG_NOSIGNAL) != rlen)
        goto out;
    for (;;) {
        ssize_t r;
        if (have == sizeof(buf) - 1) {
            /* keep the tail: [DONE] detection only needs the last bytes */
            memmove(buf, buf + sizeof(buf) / 2, sizeof(buf) - 1 - sizeof(buf) / 2);
            have = sizeof(buf) - 1 - sizeof(buf) / 2;
        }
        r = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (*t_first < 0 && has_content(buf + (have > 16 ? have - 16 : 0),
                                        (size_t)r + (have > 16 ? 16 : have)))
            *t_first = now_us() - t0;
        have += (size_t)r;
        buf[have] = '\0';
        /* [DONE] ends the stream: don't wait for the server to close */
        {
            size_t from = have > (size_t)r + 16 ? have - (size_t)r - 16 : 0;
            if (memmem(buf + from, have - from, "data: [DONE]", 12))
                break;
        }
    }
    ok = memmem(buf, have, "data: [DONE]", 12) != NULL && *t_first >= 0;
out:
    *t_total = now_us() - t0;
    close(fd);
    return ok ? 0 : -1;
}

static void *worker(void *arg)
{
    (void)arg;
    if (hold)
        pthread_barrier_wait(&start_line);
    for (;;) {
        long a, b;
        int i, rc;
        pthread_mutex_lock(&mu);
        i = next_req < total ? next_req++ : -1;
        pthread_mutex_unlock(&mu);
        if (i < 0)
            break;
        rc = one_request(&a, &b);
        pthread_mutex_lock(&mu);
        if (rc < 0)
            errors++;
        ttft[i] = rc < 0 ? -1 : a;
        tot[i] = rc < 0 ? -1 : b;
        pthread_mutex_unlock(&mu);
        if (hold)
            break;
    }
    return NULL;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

static long pct(long *v, int n, double p)
{
    int k = 0;
    long *s = malloc(sizeof(long) * (size_t)(n ? n : 1));
    long r;
    for (int i = 0; i < n; i++)
        if (v[i] >= 0)
            s[k++] = v[i];
    if (!k) {
        free(s);
        return -1;
    }
    qsort(s, (size_t)k, sizeof(long), cmp_long);
    r = s[(int)((k - 1) * p)];
    free(s);
    return r;
}

int main(int argc, char **argv)
{
    pthread_t *th;
    pthread_attr_t at;
    long t0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--hold")) { hold = 1; continue; }
        if (!v) break;
        if (!strcmp(a, "--port")) port = (int)strtol(v, NULL, 10);
        else if (!strcmp(a, "--path")) path = v;
        else if (!strcmp(a, "-c")) conc = (int)strtol(v, NULL, 10);
        else if (!strcmp(a, "-n")) total = (int)strtol(v, NULL, 10);
        else if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--key")) key = v;
        else { fprintf(stderr, "bench-streams: unknown option %s\n", a); return 2; }
        i++;
    }
    if (port <= 0 || conc <= 0) {
        fprintf(stderr, "usage: bench-streams --port P [-c N] [-n N] [--hold] ...\n");
        return 2;
    }
    if (hold)
        total = conc;
    ttft = calloc((size_t)total, sizeof(long));
    tot = calloc((size_t)total, sizeof(long));
    th = calloc((size_t)conc, sizeof(*th));
    pthread_barrier_init(&start_line, NULL, (unsigned)conc);
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 256 * 1024);
    t0 = now_us();
    for (int i = 0; i < conc; i++)
        if (pthread_create(&th[i], &at, worker, NULL) != 0) {
            fprintf(stderr, "bench-streams: cannot start thread %d\n", i);
            return 1;
        }
    for (int i = 0; i < conc; i++)
        pthread_join(th[i], NULL);
    printf("{\"requests\":%d,\"errors\":%d,\"ttft_p50_us\":%ld,\"ttft_p99_us\":%ld,"
           "\"total_p50_us\":%ld,\"total_p99_us\":%ld,\"wall_ms\":%ld}\n",
           total, errors, pct(ttft, total, 0.5), pct(ttft, total, 0.99), pct(tot, total, 0.5),
           pct(tot, total, 0.99), (now_us() - t0) / 1000);
    free(ttft);
    free(tot);
    free(th);
    return errors ? 1 : 0;
}
