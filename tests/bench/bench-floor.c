/* bench-floor — the floor of aiproxy's design, for `make bench` (issue 20):
 * a minimal libfcgi responder that makes the same hops as aiproxy's
 * pass-through (web server -> FastCGI responder thread -> one kept-alive
 * libcurl handle per thread -> upstream -> back) and nothing else. With
 * --json it also parses and re-serialises the request and the answer with
 * json-c (the model swapped, as aiproxy swaps in the assistant's), which
 * every gateway of this kind must do. aiproxy's figure 1 is read against it.
 *
 *   bench-floor -s /path.sock -u http://127.0.0.1:PORT/v1 [-w 2] [-t 16] [--json]
 * Prints "listening" once every worker accepts. Stops on SIGTERM. */
#include <curl/curl.h>
#include <errno.h>
#include <fcgiapp.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define FLOOR_MAX_BODY (1u << 20)
#define FLOOR_MAX_THREADS 512
#define FLOOR_MAX_WORKERS 64

static int floor_fd = -1, floor_json;
static char floor_url[1024];

struct floor_buf {
    char *p;
    size_t len, cap;
};

static size_t floor__collect(char *ptr, size_t size, size_t n, void *ud)
{
    struct floor_buf *b = ud;
    size_t add = size * n;

    if (b->len + add + 1 > b->cap) {
        size_t cap = (b->len + add + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return 0;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, ptr, add);
    b->len += add;
    b->p[b->len] = '\0';
    return add;
}

/* The request's body re-serialised with the model swapped (--json), or as is. */
static const char *floor__in(const char *body, size_t len, json_object **keep, size_t *outlen)
{
    json_object *o;

    if (!floor_json) {
        *outlen = len;
        return body;
    }
    if (!(o = json_tokener_parse(body)))
        return NULL;
    json_object_object_add(o, "model", json_object_new_string("bench-model"));
    *keep = o;
    return json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, outlen);
}

static void floor__answer(FCGX_Request *r, CURL *c, struct curl_slist *hdr)
{
    const char *cl = FCGX_GetParam("CONTENT_LENGTH", r->envp), *up, *out;
    size_t len = cl ? strtoul(cl, NULL, 10) : 0, uplen = 0, outlen;
    struct floor_buf got = {0};
    json_object *in = NULL, *ans = NULL;
    char *body = NULL, head[160];
    long status = 502;
    int n;

    if (len > FLOOR_MAX_BODY || !(body = malloc(len + 1)))
        goto fail;
    n = FCGX_GetStr(body, (int)len, r->in);
    if (n < 0 || (size_t)n != len)
        goto fail;
    body[len] = '\0';
    if (!(up = floor__in(body, len, &in, &uplen)))
        goto fail;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, up);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)uplen);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, floor__collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
    if (curl_easy_perform(c) != CURLE_OK || !got.p)
        goto fail;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    out = got.p;
    outlen = got.len;
    if (floor_json) {
        if (!(ans = json_tokener_parse(got.p)))
            goto fail;
        json_object_object_add(ans, "model", json_object_new_string("bench"));
        out = json_object_to_json_string_length(ans, JSON_C_TO_STRING_PLAIN, &outlen);
    }
    /* libfcgi's own printf knows no %zu: format the head here */
    n = snprintf(head, sizeof(head),
                 "Status: %ld\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                 status, outlen);
    FCGX_PutStr(head, n, r->out);
    FCGX_PutStr(out, (int)outlen, r->out);
    goto out;
fail:
    FCGX_FPrintF(r->out, "Status: 502\r\nContent-Type: application/json\r\n\r\n{\"error\":{}}");
out:
    json_object_put(in);
    json_object_put(ans);
    free(got.p);
    free(body);
}

static void *floor__thread(void *arg)
{
    FCGX_Request r;
    CURL *c = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    char url[1100];

    (void)arg;
    snprintf(url, sizeof(url), "%s/chat/completions", floor_url);
    if (!c || !hdr || FCGX_InitRequest(&r, floor_fd, 0) != 0)
        return NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    while (FCGX_Accept_r(&r) == 0) {
        floor__answer(&r, c, hdr);
        FCGX_Finish_r(&r);
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    return NULL;
}

static void floor__worker(int threads)
{
    pthread_t tid[FLOOR_MAX_THREADS];

    for (int i = 0; i < threads; i++)
        pthread_create(&tid[i], NULL, floor__thread, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    _exit(0);
}

int main(int argc, char **argv)
{
    const char *sock = NULL;
    int workers = 2, threads = 16;
    pid_t kids[FLOOR_MAX_WORKERS];
    sigset_t set;
    int sig;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-s") && i + 1 < argc)
            sock = argv[++i];
        else if (!strcmp(argv[i], "-u") && i + 1 < argc)
            snprintf(floor_url, sizeof(floor_url), "%s", argv[++i]);
        else if (!strcmp(argv[i], "-w") && i + 1 < argc)
            workers = (int)strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc)
            threads = (int)strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--json"))
            floor_json = 1;
    }
    if (!sock || !floor_url[0] || workers < 1 || workers > FLOOR_MAX_WORKERS || threads < 1 ||
        threads > FLOOR_MAX_THREADS) {
        fprintf(stderr, "usage: bench-floor -s PATH -u URL [-w N] [-t N] [--json]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (FCGX_Init() != 0 || (floor_fd = FCGX_OpenSocket(sock, 1024)) < 0) {
        fprintf(stderr, "bench-floor: cannot listen on %s\n", sock);
        return 1;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    for (int i = 0; i < workers; i++) {
        if ((kids[i] = fork()) == 0) {
            signal(SIGTERM, SIG_DFL);
            /* a master killed outright (SIGKILL) takes its workers along */
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() == 1)
                _exit(0);
            floor__worker(threads);
        }
    }
    sigprocmask(SIG_BLOCK, &set, NULL);
    printf("listening\n");
    fflush(stdout);
    sigwait(&set, &sig);
    for (int i = 0; i < workers; i++)
        if (kids[i] > 0)
            kill(kids[i], SIGTERM);
    for (int i = 0; i < workers; i++)
        if (kids[i] > 0)
            waitpid(kids[i], NULL, 0);
    return 0;
}
