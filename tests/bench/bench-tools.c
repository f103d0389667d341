/* bench-tools — the tool round trip of `make bench` (issue 3): the demo
 * server's `echo` called the way a responder calls it (agent/mcpc.h:
 * mcpc_call_many → Redis pub/sub → mcp-broker → MCP stdio session) versus the
 * same call made straight on an MCP stdio session this program holds itself
 * (spawned mcp-demo, initialize, then tools/call over its pipes).
 *
 *   bench-tools --redis URL [--prefix aiproxy:] --demo PATH/mcp-demo
 *               [--server demo] [-n 2000] [--warmup 100]
 *
 * The broker must be running on that Redis with `--server` configured as the
 * demo. Three paths are measured interleaved (one broker call, one direct
 * call, one bare Redis pub/sub ping-pong, …) so machine noise falls on all
 * alike: the ping-pong (PUBLISH -> a forked echo process's subscriber ->
 * PUBLISH back, as bench-pingpong does) is what the broker protocol's two
 * Redis hops cost at least, the floor the broker's added time is read
 * against (issue 20). Both MCP paths call the same tool of the same server
 * on a warm session (the broker's is started and warmed by the catalog read
 * and the warm-up calls). Each answer is checked: the text must come back
 * unchanged, else the call counts as an error.
 * Prints one JSON line: {"calls","errors","broker_p50_us","broker_p99_us",
 * "direct_p50_us","direct_p99_us","pingpong_p50_us","pingpong_p99_us"};
 * exits 1 on any error. */
#include "agent/mcpc.h"
#include "shared/rconn.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BT_LINE_CAP (1u << 20)

/* One MCP stdio session we hold directly: the child, its pipes, and a read
 * buffer for newline-delimited JSON-RPC. */
struct bt_direct {
    pid_t pid;
    int to_fd, from_fd;
    char *buf;
    size_t have;
    long next_id;
};

static long bt__now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

static int bt__write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one line from the session; returns a parsed object (caller owns) or
 * NULL on EOF, an over-long line or JSON that does not parse. */
static json_object *bt__read_msg(struct bt_direct *d)
{
    json_object *o = NULL;

    for (;;) {
        char *nl = memchr(d->buf, '\n', d->have);
        ssize_t r;
        if (nl) {
            size_t len = (size_t)(nl - d->buf);
            *nl = '\0';
            o = json_tokener_parse(d->buf);
            memmove(d->buf, nl + 1, d->have - len - 1);
            d->have -= len + 1;
            goto out;
        }
        if (d->have == BT_LINE_CAP)
            goto out;
        r = read(d->from_fd, d->buf + d->have, BT_LINE_CAP - d->have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto out;
        d->have += (size_t)r;
    }
out:
    return o;
}

/* Sends one JSON-RPC request and waits for the answer with its id (skipping
 * notifications). Returns the answer (caller owns) or NULL. */
static json_object *bt__rpc(struct bt_direct *d, const char *method, const char *params_json)
{
    char line[1024];
    long id = ++d->next_id;
    json_object *ans = NULL;
    int n = snprintf(line, sizeof(line), "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"%s\",\"params\":%s}\n",
                     id, method, params_json);

    if (n < 0 || (size_t)n >= sizeof(line) || bt__write_all(d->to_fd, line, (size_t)n) < 0)
        goto out;
    for (;;) {
        json_object *jid;
        ans = bt__read_msg(d);
        if (!ans)
            goto out;
        if (json_object_object_get_ex(ans, "id", &jid) && json_object_get_int64(jid) == id)
            goto out;
        json_object_put(ans);
        ans = NULL;
    }
out:
    return ans;
}

static void bt__direct_close(struct bt_direct *d)
{
    if (d->to_fd >= 0)
        close(d->to_fd);
    if (d->from_fd >= 0)
        close(d->from_fd);
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        waitpid(d->pid, NULL, 0);
    }
    free(d->buf);
    memset(d, 0, sizeof(*d));
    d->to_fd = d->from_fd = -1;
}

/* Spawns `demo` with its stdio on pipes and runs the MCP handshake.
 * Returns 0, or -errno with err set; on failure d is closed. */
static int bt__direct_open(struct bt_direct *d, const char *demo, char *err, size_t errlen)
{
    int in[2] = { -1, -1 }, outp[2] = { -1, -1 }, rc = -EIO;
    json_object *ans = NULL;

    memset(d, 0, sizeof(*d));
    d->to_fd = d->from_fd = -1;
    d->buf = malloc(BT_LINE_CAP);
    if (!d->buf || pipe2(in, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipes for %s: %s", demo, strerror(errno ? errno : ENOMEM));
        goto out;
    }
    d->pid = fork();
    if (d->pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        goto out;
    }
    if (d->pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(in[0], 0);
        dup2(outp[1], 1);
        if (devnull >= 0)
            dup2(devnull, 2);
        execl(demo, demo, (char *)NULL);
        _exit(127);
    }
    d->to_fd = in[1];
    in[1] = -1;
    d->from_fd = outp[0];
    outp[0] = -1;
    ans = bt__rpc(d, "initialize",
                  "{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},"
                  "\"clientInfo\":{\"name\":\"bench-tools\",\"version\":\"1\"}}");
    if (!ans || !json_object_object_get_ex(ans, "result", NULL)) {
        snprintf(err, errlen, "%s: no answer to initialize", demo);
        goto out;
    }
    {
        static const char note[] = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n";
        if (bt__write_all(d->to_fd, note, sizeof(note) - 1) < 0) {
            snprintf(err, errlen, "%s: write failed", demo);
            goto out;
        }
    }
    rc = 0;
out:
    json_object_put(ans);
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (outp[i] >= 0)
            close(outp[i]);
    }
    if (rc < 0)
        bt__direct_close(d);
    return rc;
}

/* One direct echo: 0 when the flattened result is exactly `text`. Parses and
 * flattens like the responder does, so the comparison is of transport only. */
static int bt__direct_echo(struct bt_direct *d, const char *args_json, const char *text)
{
    char params[512];
    json_object *ans = NULL, *result;
    char *flat = NULL;
    int rc = -EIO;

    snprintf(params, sizeof(params), "{\"name\":\"echo\",\"arguments\":%s}", args_json);
    ans = bt__rpc(d, "tools/call", params);
    if (!ans || !json_object_object_get_ex(ans, "result", &result))
        goto out;
    flat = mcpc_flatten(result);
    if (flat && strcmp(flat, text) == 0)
        rc = 0;
out:
    free(flat);
    json_object_put(ans);
    return rc;
}

/* The ping-pong: our two connections and the echo process. */
struct bt_pp {
    redisContext *sub, *pub;
    pid_t pid;
    char ping[160], pong[160];
};

/* The next message on `sub` (subscribed): 0, or -1 on error. */
static int bt__pp_next(redisContext *sub)
{
    void *v = NULL;
    int rc = -1;

    if (redisGetReply(sub, &v) == REDIS_OK && v) {
        redisReply *r = v;
        rc = r->type == REDIS_REPLY_ARRAY && r->elements == 3 ? 0 : -1;
    }
    freeReplyObject(v);
    return rc;
}

static int bt__pp_subscribe(redisContext *c, const char *chan)
{
    redisReply *r = redisCommand(c, "SUBSCRIBE %s", chan);
    int ok = r && r->type == REDIS_REPLY_ARRAY;

    freeReplyObject(r);
    return ok ? 0 : -1;
}

/* The echo process: every message on ping is PUBLISHed back on pong;
 * "stop" ends it. */
static void bt__pp_echo(const char *url, const struct bt_pp *pp)
{
    char err[256];
    redisContext *sub = rconn_connect(url, 2000, err, sizeof(err));
    redisContext *pub = rconn_connect(url, 2000, err, sizeof(err));

    if (!sub || !pub || bt__pp_subscribe(sub, pp->ping) != 0)
        _exit(1);
    redisSetTimeout(sub, (struct timeval){ 0, 0 });
    freeReplyObject(redisCommand(pub, "PUBLISH %s ready", pp->pong));
    for (;;) {
        void *v = NULL;
        redisReply *r;
        int stop;
        if (redisGetReply(sub, &v) != REDIS_OK || !v)
            _exit(1);
        r = v;
        stop = r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[2]->str &&
               strcmp(r->element[2]->str, "stop") == 0;
        freeReplyObject(v);
        if (stop)
            _exit(0);
        freeReplyObject(redisCommand(pub, "PUBLISH %s pong", pp->pong));
    }
}

/* Connects, forks the echo process and waits until it is subscribed.
 * Returns 0, or -1 with err set. */
static int bt__pp_open(struct bt_pp *pp, const char *url, const char *prefix, char *err, size_t errlen)
{
    snprintf(pp->ping, sizeof(pp->ping), "%sbench:ping:%d", prefix, (int)getpid());
    snprintf(pp->pong, sizeof(pp->pong), "%sbench:pong:%d", prefix, (int)getpid());
    pp->sub = rconn_connect(url, 2000, err, errlen);
    pp->pub = rconn_connect(url, 2000, err, errlen);
    if (!pp->sub || !pp->pub || bt__pp_subscribe(pp->sub, pp->pong) != 0) {
        if (!err[0])
            snprintf(err, errlen, "cannot subscribe to %s", pp->pong);
        return -1;
    }
    redisSetTimeout(pp->sub, (struct timeval){ 10, 0 });
    pp->pid = fork();
    if (pp->pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (pp->pid == 0)
        bt__pp_echo(url, pp);
    if (bt__pp_next(pp->sub) != 0) {   /* "ready": the echo process is subscribed */
        snprintf(err, errlen, "the ping-pong echo process did not answer");
        return -1;
    }
    return 0;
}

/* One ping-pong: 0, or -1 when the answer did not come. */
static int bt__pp_once(struct bt_pp *pp)
{
    redisReply *r = redisCommand(pp->pub, "PUBLISH %s ping", pp->ping);
    int ok = r && r->type == REDIS_REPLY_INTEGER;

    freeReplyObject(r);
    return ok ? bt__pp_next(pp->sub) : -1;
}

static void bt__pp_close(struct bt_pp *pp)
{
    if (pp->pid > 0) {
        if (pp->pub)
            freeReplyObject(redisCommand(pp->pub, "PUBLISH %s stop", pp->ping));
        kill(pp->pid, SIGTERM);
        waitpid(pp->pid, NULL, 0);
    }
    if (pp->sub)
        redisFree(pp->sub);
    if (pp->pub)
        redisFree(pp->pub);
    memset(pp, 0, sizeof(*pp));
}

static int bt__cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;

    return x < y ? -1 : x > y;
}

/* Sorts v in place; the p-quantile of the n values (nearest rank below). */
static long bt__pct(long *v, int n, double p)
{
    if (n <= 0)
        return -1;
    qsort(v, (size_t)n, sizeof(long), bt__cmp_long);
    return v[(int)((n - 1) * p)];
}

static int bt__int_arg(const char *s, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 10000000)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *redis = NULL, *prefix = "aiproxy:", *demo = NULL, *server = "demo";
    const char *text = "hello from bench-tools", *args_json = "{\"text\":\"hello from bench-tools\"}";
    int n = 2000, warmup = 100, errors = 0, nb = 0, nd = 0, np = 0, status = 1;
    long *tb = NULL, *td = NULL, *tp = NULL;
    struct bt_pp pp = { .pid = 0 };
    mcpc_t *c = NULL;
    json_object *tools = NULL;
    struct bt_direct d = { .to_fd = -1, .from_fd = -1 };
    char err[512] = "";
    aip_err_t e;

    signal(SIGPIPE, SIG_IGN);
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--redis"))
            redis = v;
        else if (!strcmp(a, "--prefix"))
            prefix = v;
        else if (!strcmp(a, "--demo"))
            demo = v;
        else if (!strcmp(a, "--server"))
            server = v;
        else if (!strcmp(a, "-n") ? bt__int_arg(v, &n) : !strcmp(a, "--warmup") ? bt__int_arg(v, &warmup) : -1) {
            fprintf(stderr, "bench-tools: bad option %s %s\n", a, v);
            goto out;
        }
    }
    if (!redis || !demo || n <= 0) {
        fprintf(stderr, "usage: bench-tools --redis URL [--prefix P] --demo PATH [--server demo] [-n N] [--warmup N]\n");
        goto out;
    }
    tb = calloc((size_t)n, sizeof(long));
    td = calloc((size_t)n, sizeof(long));
    tp = calloc((size_t)n, sizeof(long));
    c = mcpc_new(redis, prefix);
    if (!tb || !td || !tp || !c) {
        fprintf(stderr, "bench-tools: out of memory\n");
        goto out;
    }
    /* starts the server in the broker if it is not running yet */
    if (mcpc_tools(c, server, 20000, &tools, &e) < 0) {
        fprintf(stderr, "bench-tools: catalog of %s through the broker: %s\n", server, e.msg);
        goto out;
    }
    /* forked before the direct session, so it holds none of its pipes */
    if (bt__pp_open(&pp, redis, prefix, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench-tools: ping-pong: %s\n", err);
        goto out;
    }
    if (bt__direct_open(&d, demo, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench-tools: direct session: %s\n", err);
        goto out;
    }
    for (int i = 0; i < warmup + n; i++) {
        mcpc_call_t call = { .server = server, .tool = "echo", .args_json = args_json };
        long t0 = bt__now_us(), t1;
        int rc = mcpc_call_many(c, &call, 1, 10000, NULL, &e);
        t1 = bt__now_us();
        if (rc < 0 || call.is_error || !call.text || strcmp(call.text, text) != 0) {
            if (errors++ < 3)
                fprintf(stderr, "bench-tools: broker call %d: %s\n", i,
                        rc < 0 ? e.msg : call.text ? call.text : "(no text)");
        } else if (i >= warmup) {
            tb[nb++] = t1 - t0;
        }
        mcpc_calls_clear(&call, 1);
        t0 = bt__now_us();
        rc = bt__direct_echo(&d, args_json, text);
        t1 = bt__now_us();
        if (rc < 0) {
            if (errors++ < 3)
                fprintf(stderr, "bench-tools: direct call %d failed\n", i);
        } else if (i >= warmup) {
            td[nd++] = t1 - t0;
        }
        t0 = bt__now_us();
        rc = bt__pp_once(&pp);
        t1 = bt__now_us();
        if (rc < 0) {
            if (errors++ < 3)
                fprintf(stderr, "bench-tools: ping-pong %d failed\n", i);
        } else if (i >= warmup) {
            tp[np++] = t1 - t0;
        }
    }
    {
        long b50 = bt__pct(tb, nb, 0.5), b99 = bt__pct(tb, nb, 0.99);
        long d50 = bt__pct(td, nd, 0.5), d99 = bt__pct(td, nd, 0.99);
        long p50 = bt__pct(tp, np, 0.5), p99 = bt__pct(tp, np, 0.99);
        printf("{\"calls\":%d,\"errors\":%d,\"broker_p50_us\":%ld,\"broker_p99_us\":%ld,"
               "\"direct_p50_us\":%ld,\"direct_p99_us\":%ld,\"pingpong_p50_us\":%ld,"
               "\"pingpong_p99_us\":%ld}\n",
               n, errors, b50, b99, d50, d99, p50, p99);
    }
    status = errors ? 1 : 0;
out:
    bt__direct_close(&d);
    bt__pp_close(&pp);
    json_object_put(tools);
    mcpc_free(c);
    free(tb);
    free(td);
    free(tp);
    return status;
}
