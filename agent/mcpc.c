/* mcpc — the responder's side of the broker protocol (see mcpc.h and
 * docs/broker-protocol.md).
 *
 * Hot path of a tool round: one pipelined batch of PUBLISHes on a command
 * connection borrowed from the process's pool (shared/rpool.h; their
 * receiver counts tell at once whether a broker listens), then answers
 * handed over by the process's reply subscriber (agent/mcphub.h), waited
 * for in slices of at most 100 ms, so the client's departure (alive) and the
 * deadlines are noticed without extra round trips. No Redis connection is
 * held while a call runs.
 *
 * Faults heal here rather than in the caller: a connection Redis closed (a
 * restart, CLIENT KILL) is noticed by the pool before use and re-opened, a
 * command that still fails is retried once on another connection, and a call
 * that reached no broker is published again for a short while (the broker
 * re-subscribes within moments of a reset). A call given up on (client gone,
 * deadline) is cancelled at the broker. Local waits use CLOCK_MONOTONIC; only
 * the deadline on the wire is wall-clock unix ms, for the broker. */
#include "agent/mcpc.h"
#include "agent/agent.h"
#include "agent/autostart.h"
#include "agent/mcphub.h"
#include "shared/buf.h"
#include "shared/log.h"
#include "shared/jtext.h"
#include "shared/rconn.h"
#include "shared/rid.h"
#include "shared/rpool.h"
#include "shared/wire.h"
#include "shared/caps.h"
#include "shared/jget.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MCPC_SLICE_MS      100
#define MCPC_PRESENCE_MS   1000         /* while waiting: is a broker still there? */
#define MCPC_CONNECT_MS    2000
#define MCPC_BROKER_WAIT_MS 2000        /* default of AIPROXY_BROKER_WAIT_MS */
#define MCPC_BROKER_WAIT_MAX 60000
#define MCPC_REPUBLISH_MS  20           /* first pause before publishing again; doubles */
#define MCPC_REPUBLISH_MAX_MS 500
#define MCPC_PROGRESS_GRACE_MS 250      /* past the broker's deadline: its answer says why */
#define MCPC_CEILING_MS    (86400LL * 1000) /* no call outlives the largest max_timeout */

struct mcpc {
    char url[1024];
    char prefix[128];
    char ch_calls[192];
    char reply[320];         /* the process's reply channel (mcphub) */
    int broker_wait_ms;      /* how long a call may wait for a broker to listen */
    rpool_t *pool;           /* the process's command connections (borrowed) */
    mcphub_waiter_t *w;      /* this client's place at the process's subscriber */
    unsigned epoch;          /* rconn_epoch() when the last round began */
};

/* For local waits: immune to wall-clock steps. */
static int64_t mcpc__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Unix ms, only for the deadline the broker reads (another host's clock). */
static int64_t mcpc__unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* AIPROXY_BROKER_WAIT_MS: 0..60000, else the default (with a warning). */
static int mcpc__broker_wait(void)
{
    const char *e = getenv("AIPROXY_BROKER_WAIT_MS");
    char *end;
    long v;

    if (!e || !*e)
        return MCPC_BROKER_WAIT_MS;
    errno = 0;
    v = strtol(e, &end, 10);
    if (errno || *end || v < 0 || v > MCPC_BROKER_WAIT_MAX) {
        fprintf(stderr, "aiproxy: AIPROXY_BROKER_WAIT_MS=%s: want 0..%d ms; using %d\n", e,
                MCPC_BROKER_WAIT_MAX, MCPC_BROKER_WAIT_MS);
        return MCPC_BROKER_WAIT_MS;
    }
    return (int)v;
}

mcpc_t *mcpc_new(const char *url, const char *prefix)
{
    mcpc_t *c = calloc(1, sizeof(*c));
    mcphub_t *hub;

    if (!c)
        return NULL;
    snprintf(c->url, sizeof(c->url), "%s", url ? url : rconn_url());
    snprintf(c->prefix, sizeof(c->prefix), "%s", prefix ? prefix : rconn_prefix());
    snprintf(c->ch_calls, sizeof(c->ch_calls), "%smcp:calls", c->prefix);
    c->broker_wait_ms = mcpc__broker_wait();
    c->pool = rpool_for(c->url);
    hub = mcphub_for(c->url, c->prefix);
    if (!c->pool || !hub || !(c->w = mcphub_waiter_new(hub))) {
        free(c);
        return NULL;
    }
    snprintf(c->reply, sizeof(c->reply), "%s", mcphub_channel(hub));
    return c;
}

void mcpc_free(mcpc_t *c)
{
    if (!c)
        return;
    mcphub_waiter_free(c->w);
    free(c);
}

/* A command connection from the pool, or NULL with *e the 503
 * redis_unavailable error (e reaches /v1 clients: the Redis address and the
 * driver's text go to the log only). Give it back with mcpc__put. */
static redisContext *mcpc__get(mcpc_t *c, aip_err_t *e)
{
    char why[512] = "";
    redisContext *rc = rpool_get(c->pool, why, sizeof why);

    if (!rc) {
        log_warn("mcpc: %s", why);
        aip_err_set(e, 503, "api_error", "redis_unavailable",
                    "cannot reach Redis for the MCP servers (the responder log names the "
                    "cause); retry when Redis is back");
    }
    return rc;
}

static void mcpc__put(mcpc_t *c, redisContext *rc, int broken)
{
    rpool_put(c->pool, rc, broken);
}

/* The reply subscriber up (the process's, shared by its threads). 0, or
 * -ECONNREFUSED with *e the 503 redis_unavailable error. */
static int mcpc__connect(mcpc_t *c, aip_err_t *e)
{
    c->epoch = rconn_epoch();
    if (mcphub_ready(c->w, MCPC_CONNECT_MS) == 0)
        return 0;
    return aip_err_set(e, 503, "api_error", "redis_unavailable",
                       "cannot reach Redis for the MCP servers (the responder log names the "
                       "cause); retry when Redis is back");
}

/* One pipeline of PUBLISHes for the texts[i] not yet `heard` (a broker
 * received them); marks those heard now. 0 when all are heard, -EAGAIN when
 * some reached no one (worth trying again: a broker may be subscribing),
 * -ECONNRESET (connection dropped) or -EIO (Redis refused); the last two
 * fill *e. */
static int mcpc__publish_once(mcpc_t *c, char **texts, unsigned char *heard, size_t n,
                              aip_err_t *e)
{
    int rc = 0;
    size_t sent = 0, i;
    redisContext *cmd = mcpc__get(c, e);

    if (!cmd)
        return -ECONNREFUSED;
    for (i = 0; i < n; i++) {
        if (!texts[i] || heard[i])
            continue;
        if (redisAppendCommand(cmd, "PUBLISH %s %b", c->ch_calls, texts[i], strlen(texts[i])) != REDIS_OK) {
            aip_err_set(e, 503, "api_error", "redis_unavailable",
                        "Redis connection lost while publishing tool calls");
            mcpc__put(c, cmd, 1);
            return -ECONNRESET;
        }
        sent++;
    }
    for (i = 0; i < n && sent > 0; i++) {
        redisReply *r = NULL;
        if (!texts[i] || heard[i])
            continue;
        sent--;
        if (redisGetReply(cmd, (void **)&r) != REDIS_OK || !r) {
            aip_err_set(e, 503, "api_error", "redis_unavailable",
                        "Redis connection lost while publishing tool calls");
            log_warn("mcpc: PUBLISH: %s", cmd->errstr);
            mcpc__put(c, cmd, 1);
            return -ECONNRESET;
        }
        if (r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
            heard[i] = 1;
        } else if (rconn_reply_lost(r)) {
            /* not a master any more (failover) or loading: like a lost
             * connection, so the caller reconnects to the master once */
            aip_err_set(e, 503, "api_error", "redis_unavailable",
                        "Redis is not a usable master right now (a failover, or loading); retry");
            rc = -ECONNRESET;
        } else if (r->type == REDIS_REPLY_ERROR) {
            if (rc != -EIO && rc != -ECONNRESET)
                aip_err_set(e, 503, "api_error", "redis_unavailable", "Redis refused PUBLISH: %s",
                            r->str);
            if (rc != -ECONNRESET)
                rc = -EIO;
        } else if (rc == 0) {
            rc = -EAGAIN;
        }
        freeReplyObject(r);
    }
    mcpc__put(c, cmd, rc == -ECONNRESET);
    return rc;
}

/* Sends the n encoded requests (NULL entries skipped); each must reach a
 * broker. One that reached none is published again, pausing 20 ms, 40 ms, …
 * for up to c->broker_wait_ms in all: a broker re-subscribing after a Redis
 * reset, or starting, is waited for instead of failing the request. A
 * connection Redis dropped is re-opened once. 0, or a negative code with *e
 * the error: 503 mcp_broker_unavailable, 503 redis_unavailable, 500. */
static int mcpc__publish(mcpc_t *c, char **texts, size_t n, aip_err_t *e)
{
    unsigned char *heard = calloc(n ? n : 1, 1);
    int64_t until = mcpc__now() + c->broker_wait_ms;
    autostart_wait_t aw = {0};
    int pause = MCPC_REPUBLISH_MS, reconnected = 0, rc;

    if (!heard)
        return aip_err_oom(e);
    for (;;) {
        int64_t now;
        rc = mcpc__publish_once(c, texts, heard, n, e);
        if (rc == -ECONNRESET && !reconnected) {
            /* the connection died under us: another one, then the same ids
             * again (a request lost with the old one never reached Redis) */
            reconnected = 1;
            continue;
        }
        if (rc != -EAGAIN)
            break;
        now = mcpc__now();
        {
            redisContext *cmd = rpool_get(c->pool, NULL, 0);
            autostart_nudge(&aw, cmd, c->url, c->prefix, now, &until);  /* broker on demand */
            rpool_put(c->pool, cmd, 0);
        }
        if (now >= until)
            break;
        poll(NULL, 0, (int)(until - now < pause ? until - now : pause));
        pause = pause * 2 > MCPC_REPUBLISH_MAX_MS ? MCPC_REPUBLISH_MAX_MS : pause * 2;
    }
    if (rc == -EAGAIN)
        rc = aip_err_set(e, 503, "api_error", "mcp_broker_unavailable", "%s",
                         aw.extended ? "mcp-broker is not running and none started on demand in "
                                       "time (the responder log says why); retry"
                                     : "mcp-broker is not running; start it and retry");
    free(heard);
    return rc;
}

/* Tells the broker that the calls still pending (texts[i] set, no text yet)
 * are abandoned, so it cancels them at the MCP server. Best effort: a lost
 * cancel leaves the call to its own deadline. */
static void mcpc__cancel(mcpc_t *c, mcpc_call_t *calls, char (*ids)[WIRE_ID_LEN + 1], char **texts,
                         size_t n, int64_t deadline_unix)
{
    size_t sent = 0;
    redisContext *cmd = rpool_get(c->pool, NULL, 0);

    if (!cmd)
        return;
    for (size_t i = 0; i < n; i++) {
        char *t;
        if (!texts[i] || calls[i].text)
            continue;
        t = wire_req_encode(WIRE_OP_CANCEL, ids[i], c->reply, calls[i].server ? calls[i].server : "",
                            NULL, NULL, deadline_unix);
        if (!t)
            continue;
        if (redisAppendCommand(cmd, "PUBLISH %s %b", c->ch_calls, t, strlen(t)) == REDIS_OK)
            sent++;
        free(t);
    }
    while (sent-- > 0) {
        redisReply *r = NULL;
        if (redisGetReply(cmd, (void **)&r) != REDIS_OK || !r) {
            rpool_put(c->pool, cmd, 1);
            return;
        }
        freeReplyObject(r);
    }
    rpool_put(c->pool, cmd, 0);
}

/* Reads one reply for this client's calls, waiting at most wait_ms.
 * Returns 1 with *out (decoded; caller clears), 0 when nothing came,
 * -ECONNREFUSED when the subscription was lost meanwhile. */
static int mcpc__next(mcpc_t *c, int wait_ms, wire_reply_t *out)
{
    return mcphub_next(c->w, wait_ms, out);
}

/* "[tool error] " + the formatted text, malloc'd; NULL on ENOMEM. */
static char *mcpc__errtext(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *mcpc__errtext(const char *fmt, ...)
{
    buf_t b;
    va_list ap;

    buf_init(&b, CAP_MCPC_ERRTEXT);
    buf_puts(&b, "[tool error] ");
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap); /* -ENOSPC only truncates an error text */
    va_end(ap);
    return buf_detach(&b);
}

/* Number of brokers subscribed to the calls channel, or -ECONNREFUSED. Used
 * only while waiting (once a second), so a broker killed mid-call turns into
 * an error at once instead of a wait until the deadline. */
static long long mcpc__brokers(mcpc_t *c)
{
    redisContext *cmd = rpool_get(c->pool, NULL, 0);
    redisReply *r = cmd ? redisCommand(cmd, "PUBSUB NUMSUB %s", c->ch_calls) : NULL;
    long long n = -ECONNREFUSED;

    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_INTEGER)
        n = r->element[1]->integer;
    rpool_put(c->pool, cmd, rpool_reply_broken(r));
    if (r)
        freeReplyObject(r);
    return n;
}

/* The "[tool error] … timed out" text of call i: how long it ran, and when
 * progress had kept it alive, for how long it went silent. */
static char *mcpc__timeout_text(const mcpc_call_t *call, int64_t ran_ms, int64_t silent_ms)
{
    const char *tool = call->tool ? call->tool : "";

    if (silent_ms < 0)
        return mcpc__errtext("tool '%s' timed out after %lld s", tool, (long long)((ran_ms + 999) / 1000));
    return mcpc__errtext("tool '%s' timed out after %lld s: no progress reported for %lld s", tool,
                         (long long)((ran_ms + 999) / 1000), (long long)((silent_ms + 500) / 1000));
}

/* A progress report for call i (still waiting): its deadline moves to what
 * the broker says is left (at most timeout_ms: the broker gives the call its
 * timeout again, no more), plus MCPC_PROGRESS_GRACE_MS so that the broker's
 * own timeout answer, which says why, arrives first; never past `cap`, never
 * earlier than it was. Then the caller is told. Returns the hook's answer. */
static int mcpc__progress(const mcpc_hooks_t *h, const wire_reply_t *rep, size_t i, int64_t now,
                          int timeout_ms, int64_t cap, int64_t *due, int64_t *heard)
{
    int64_t left = rep->left_ms < timeout_ms ? rep->left_ms : timeout_ms, want;
    mcpc_progress_t p = {i, rep->progress, rep->total, rep->message};

    want = now + left + MCPC_PROGRESS_GRACE_MS;
    if (want > cap)
        want = cap;
    if (want > due[i])
        due[i] = want;
    heard[i] = now;
    return h->on_progress ? h->on_progress(h->ud, &p) : 0;
}

/* A sampling request for call i: the hook answers (or refuses) and the
 * answer goes back to the broker as op "sampled". Returns 0, -ECONNABORTED
 * when the hook said the client left, or a publish failure with *e. */
static int mcpc__sampling(mcpc_t *c, const mcpc_hooks_t *h, const wire_reply_t *rep, size_t i,
                          const mcpc_call_t *call, int64_t left_ms, int64_t deadline_unix,
                          aip_err_t *e)
{
    json_object *result = NULL;
    char why[300] = "", *t;
    int rc = -ENOTSUP;

    if (h->on_sampling)
        rc = h->on_sampling(h->ud, i, rep->params, (long long)left_ms, &result, why, sizeof why);
    else
        snprintf(why, sizeof why, "sampling/createMessage refused: not served for this request");
    if (rc == 0 && !result)
        rc = -EIO;
    if (rc < 0 && !why[0])
        snprintf(why, sizeof why, "sampling/createMessage failed");
    t = wire_req_sampled(rep->id, c->reply, call->server ? call->server : "", deadline_unix,
                         rep->sid, rc == 0 ? result : NULL, rc == 0 ? NULL : why);
    json_object_put(result);
    if (rc == -ECONNABORTED) {
        free(t);
        return rc;
    }
    if (!t)
        return aip_err_oom(e);
    rc = mcpc__publish(c, &t, 1, e);
    free(t);
    return rc;
}

int mcpc_call_many(mcpc_t *c, mcpc_call_t *calls, size_t n, int timeout_ms,
                   const mcpc_hooks_t *hooks, aip_err_t *e)
{
    static const mcpc_hooks_t none;
    const mcpc_hooks_t *h = hooks ? hooks : &none;
    int64_t sent_at = 0;
    char (*ids)[WIRE_ID_LEN + 1] = NULL;
    char **texts = NULL;
    int64_t *due = NULL, *heard = NULL;   /* per call: deadline, last progress (0: none) */
    size_t left = 0;
    int64_t start, cap, deadline_unix, next_check;
    int rc = 0, published = 0;

    aip_err_clear(e);
    if (n == 0)
        return 0;
    if (timeout_ms <= 0)
        timeout_ms = 300000;
    ids = calloc(n, sizeof(*ids));
    texts = calloc(n, sizeof(char *));
    due = calloc(n, sizeof(*due));
    heard = calloc(n, sizeof(*heard));
    if (!ids || !texts || !due || !heard) {
        rc = aip_err_oom(e);
        goto out;
    }
    rc = mcpc__connect(c, e);
    if (rc)
        goto out;
    start = mcpc__now();
    cap = start + MCPC_CEILING_MS;
    deadline_unix = mcpc__unix_ms() + timeout_ms;
    for (size_t i = 0; i < n; i++) {
        json_object *args = NULL;
        calls[i].text = NULL;
        calls[i].is_error = 0;
        calls[i].outcome = AGENT_TOOL_ERROR;   /* until an answer says otherwise */
        due[i] = start + timeout_ms;
        if (calls[i].args_json && *calls[i].args_json) {
            char why[160];
            /* as written: big integers keep their text on the way to the server */
            if (jtext_parse(calls[i].args_json, strlen(calls[i].args_json),
                            JSON_TOKENER_DEFAULT_DEPTH, &args, why, sizeof why) != 0)
                args = NULL;
            if (!args || !json_object_is_type(args, json_type_object)) {
                json_object_put(args);
                calls[i].text = mcpc__errtext("invalid JSON arguments for tool '%s': expected a JSON object",
                                              calls[i].tool ? calls[i].tool : "");
                calls[i].is_error = 1;
                continue;
            }
        }
        rid_hex(ids[i], WIRE_ID_LEN);
        texts[i] = wire_req_encode_rid(WIRE_OP_CALL, ids[i], c->reply,
                                       calls[i].server ? calls[i].server : "",
                                       calls[i].tool ? calls[i].tool : "", args, deadline_unix,
                                       calls[i].request_id);
        json_object_put(args);
        if (texts[i] && calls[i].traceparent && *calls[i].traceparent)
            texts[i] = wire_req_with(texts[i], "tp", calls[i].traceparent);
        if (!texts[i]) {
            calls[i].text = mcpc__errtext("cannot send the call to tool '%s': bad server or tool name",
                                          calls[i].tool ? calls[i].tool : "");
            calls[i].is_error = 1;
            continue;
        }
        if (mcphub_expect(c->w, ids[i]) != 0) {   /* before it is published */
            rc = aip_err_oom(e);
            goto out;
        }
        left++;
    }
    rc = mcpc__publish(c, texts, n, e);
    if (rc)
        goto out;
    published = 1;
    sent_at = mcpc__now();
    next_check = mcpc__now() + MCPC_PRESENCE_MS;
    while (left > 0) {
        int64_t now = mcpc__now(), first = INT64_MAX;
        wire_reply_t rep;
        int got;

        if (h->alive && !h->alive(h->ud)) {
            aip_err_client_gone(e);
            rc = -ECONNABORTED;
            goto out;
        }
        /* each call has its own deadline (progress moves it): the ones due
         * are cancelled at the broker and answered "timed out" */
        for (size_t i = 0; i < n; i++) {
            if (!texts[i] || calls[i].text)
                continue;
            if (now < due[i]) {
                first = due[i] < first ? due[i] : first;
                continue;
            }
            mcpc__cancel(c, &calls[i], &ids[i], &texts[i], 1, deadline_unix);
            calls[i].text = mcpc__timeout_text(&calls[i], due[i] - start, heard[i] ? now - heard[i] : -1);
            calls[i].is_error = 1;
            calls[i].outcome = AGENT_TOOL_TIMEOUT;
            if (!calls[i].text) {
                rc = aip_err_oom(e);
                goto out;
            }
            left--;
            if (h->on_done && h->on_done(h->ud, i, (long long)(now - sent_at)) != 0) {
                aip_err_client_gone(e);
                rc = -ECONNABORTED;
                goto out;
            }
        }
        if (left == 0)
            break;
        if (now >= next_check) {
            long long nb = mcpc__brokers(c);
            next_check = now + MCPC_PRESENCE_MS;
            if (nb == 0 && c->epoch != rconn_epoch()) {
                /* the broker followed a switchover; our reply channel is on
                 * the old master, where its answer will not come */
                rc = aip_err_set(e, 503, "api_error", "redis_unavailable",
                                 "the Redis master moved (Sentinel failover) during the tool "
                                 "call; retry");
                goto out;
            }
            if (nb == 0) {
                rc = aip_err_set(e, 503, "api_error", "mcp_broker_unavailable",
                                 "mcp-broker is not running (it stopped during the tool "
                                 "call); start it and retry");
                goto out;
            }
            if (nb < 0) {
                rc = aip_err_set(e, 503, "api_error", "redis_unavailable",
                                 "Redis connection lost while waiting for tool results");
                goto out;
            }
        }
        got = mcpc__next(c, (int)(first - now < MCPC_SLICE_MS ? first - now : MCPC_SLICE_MS), &rep);
        if (got < 0) {
            rc = aip_err_set(e, 503, "api_error", "redis_unavailable",
                             "Redis connection lost while waiting for tool results");
            goto out;
        }
        if (got == 0)
            continue;
        for (size_t i = 0; i < n; i++) {
            /* answered, timed out, or not ours: a report for it is dropped
             * (the ordering rule: nothing of a call after its result) */
            if (!texts[i] || calls[i].text || strcmp(ids[i], rep.id) != 0)
                continue;
            if (rep.is_sampling) {
                int r = mcpc__sampling(c, h, &rep, i, &calls[i], due[i] - mcpc__now(), deadline_unix, e);
                if (r < 0) {
                    wire_reply_clear(&rep);
                    if (r == -ECONNABORTED)
                        aip_err_client_gone(e);
                    rc = r;
                    goto out;
                }
                break;
            }
            if (rep.is_progress) {
                if (mcpc__progress(h, &rep, i, mcpc__now(), timeout_ms, cap, due, heard) != 0) {
                    wire_reply_clear(&rep);
                    aip_err_client_gone(e);
                    rc = -ECONNABORTED;
                    goto out;
                }
                break;
            }
            if (rep.ok) {
                calls[i].text = mcpc_flatten(rep.result);
                calls[i].result = json_object_get(rep.result);
                calls[i].is_error = calls[i].text && strncmp(calls[i].text, "[tool error]", 12) == 0;
                calls[i].outcome = calls[i].is_error ? AGENT_TOOL_ERROR : AGENT_TOOL_OK;
            } else {
                calls[i].text = mcpc__errtext("%s", rep.error);
                calls[i].is_error = 1;
                /* the broker's error: its own deadline, or the server unreachable */
                calls[i].outcome = rep.error && strstr(rep.error, "timed out") ? AGENT_TOOL_TIMEOUT
                                                                               : AGENT_TOOL_DOWN;
            }
            if (!calls[i].text) {
                wire_reply_clear(&rep);
                rc = aip_err_oom(e);
                goto out;
            }
            left--;
            if (h->on_done && h->on_done(h->ud, i, (long long)(mcpc__now() - sent_at)) != 0) {
                wire_reply_clear(&rep);
                aip_err_client_gone(e);
                rc = -ECONNABORTED;
                goto out;
            }
            break;
        }
        wire_reply_clear(&rep); /* an id we no longer wait for is dropped here */
    }
    /* only calls that never went out can be left without a text here (their
     * error text could not be allocated) */
    for (size_t i = 0; i < n; i++)
        if (!calls[i].text) {
            calls[i].text = mcpc__timeout_text(&calls[i], timeout_ms, -1);
            calls[i].is_error = 1;
            calls[i].outcome = AGENT_TOOL_TIMEOUT;
            if (!calls[i].text) {
                rc = aip_err_oom(e);
                goto out;
            }
        }
out:
    mcphub_forget(c->w);       /* a late reply for these ids is dropped by the hub */
    if (rc == -ECONNABORTED && published)
        mcpc__cancel(c, calls, ids, texts, n, deadline_unix);    /* the client left */
    if (rc)
        mcpc_calls_clear(calls, n);
    for (size_t i = 0; texts && i < n; i++)
        free(texts[i]);
    free(texts);
    free(ids);
    free(due);
    free(heard);
    return rc;
}

void mcpc_calls_clear(mcpc_call_t *calls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(calls[i].text);
        calls[i].text = NULL;
        calls[i].is_error = 0;
        json_object_put(calls[i].result);
        calls[i].result = NULL;
    }
}

/* Asks the broker to start `server`; waits for its catalog. */
static int mcpc__start(mcpc_t *c, const char *server, int timeout_ms, json_object **tools,
                       aip_err_t *e)
{
    char id[WIRE_ID_LEN + 1];
    char *text = NULL;
    int64_t deadline = mcpc__now() + timeout_ms;
    int rc;

    rc = mcpc__connect(c, e);      /* the reply subscriber, before asking */
    if (rc)
        return rc;
    rid_hex(id, WIRE_ID_LEN);
    text = wire_req_encode(WIRE_OP_START, id, c->reply, server, NULL, NULL, mcpc__unix_ms() + timeout_ms);
    if (!text) {
        aip_err_set(e, 502, "api_error", "mcp_error", "bad MCP server name '%s'", server);
        rc = -EINVAL;
        goto out;
    }
    if (mcphub_expect(c->w, id) != 0) {
        rc = aip_err_oom(e);
        goto out;
    }
    rc = mcpc__publish(c, &text, 1, e);
    if (rc)
        goto out;
    rc = -ETIMEDOUT;
    while (mcpc__now() < deadline) {
        wire_reply_t rep;
        int64_t left = deadline - mcpc__now();
        int got = mcpc__next(c, (int)(left < MCPC_SLICE_MS ? left : MCPC_SLICE_MS), &rep);
        if (got < 0) {
            rc = aip_err_set(e, 503, "api_error", "redis_unavailable",
                             "Redis connection lost while waiting for MCP server '%s'", server);
            goto out;
        }
        if (got == 0)
            continue;
        if (strcmp(rep.id, id) != 0 || rep.is_progress || rep.is_sampling) {
            wire_reply_clear(&rep);
            continue;
        }
        if (rep.ok && rep.tools) {
            *tools = json_object_get(rep.tools);
            rc = 0;
        } else {
            rc = aip_err_set(e, 502, "api_error", "mcp_server_unavailable",
                             "MCP server '%s' cannot start: %s", server,
                             rep.ok ? "the broker answered without a catalog" : rep.error);
        }
        wire_reply_clear(&rep);
        goto out;
    }
    aip_err_set(e, 504, "api_error", "mcp_timeout",
                "MCP server '%s' did not list its tools in time: it did not start within %d ms",
                server, timeout_ms);
out:
    mcphub_forget(c->w);
    free(text);
    return rc;
}

int mcpc_tools(mcpc_t *c, const char *server, int timeout_ms, json_object **tools,
               aip_err_t *e)
{
    return mcpc_tools_ex(c, server, timeout_ms, 1, tools, e);
}

int mcpc_tools_ex(mcpc_t *c, const char *server, int timeout_ms, int ask_broker,
                  json_object **tools, aip_err_t *e)
{
    redisReply *r = NULL;
    json_object *cat = NULL, *v = NULL;
    int rc;

    *tools = NULL;
    aip_err_clear(e);
    if (timeout_ms <= 0)
        timeout_ms = 30000;
    /* a second try on another connection when the one we had died in use */
    for (int attempt = 0; attempt < 2 && !r; attempt++) {
        redisContext *cmd = mcpc__get(c, e);
        if (!cmd) {
            rc = -ECONNREFUSED;
            goto out;
        }
        r = redisCommand(cmd, "GET %smcp:catalog:%s", c->prefix, server);
        mcpc__put(c, cmd, rpool_reply_broken(r));
    }
    if (!r) {
        rc = aip_err_set(e, 503, "api_error", "redis_unavailable",
                         "Redis connection lost reading the catalog of '%s'", server);
        goto out;
    }
    if (r->type == REDIS_REPLY_STRING)
        cat = jtext_parse_peer(r->str, r->len);   /* schemas keep big integers */
    if (cat && json_object_object_get_ex(cat, "status", &v) && json_object_is_type(v, json_type_string) &&
        strcmp(json_object_get_string(v), "ready") == 0 && json_object_object_get_ex(cat, "tools", &v) &&
        json_object_is_type(v, json_type_array)) {
        *tools = json_object_get(v);
        rc = 0;
        goto out;
    }
    /* No catalog, or the last start failed: ask the broker (it answers at
     * once when the server is still failing, and says nothing if absent). */
    if (!ask_broker) {
        rc = -ENOENT;
        aip_err_set(e, 502, "api_error", "mcp_server_unavailable",
                    "MCP server '%s' has no catalog in Redis yet", server);
        goto out;
    }
    rc = mcpc__start(c, server, timeout_ms, tools, e);
out:
    json_object_put(cat);
    if (r)
        freeReplyObject(r);
    return rc;
}

#define MCPC_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* The size in bytes of base64 text of length n (what a placeholder names). */
static size_t mcpc__b64_bytes(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == '=' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    return n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
}

/* An embedded resource: its text, or a placeholder for a blob. */
static int mcpc__resource(buf_t *b, json_object *blk)
{
    json_object *res = jget(blk, "resource"), *t, *blob;
    const char *mime = jget_str(res, "mimeType"), *uri = jget_str(res, "uri");

    if ((t = jget_typed(res, "text", json_type_string)))
        return buf_append(b, json_object_get_string(t), (size_t)json_object_get_string_len(t));
    if ((blob = jget_typed(res, "blob", json_type_string)))
        return buf_printf(b, "[binary %s resource %s omitted, %zu bytes]",
                          mime ? mime : "application/octet-stream", uri ? uri : "(no uri)",
                          mcpc__b64_bytes(json_object_get_string(blob),
                                          (size_t)json_object_get_string_len(blob)));
    return buf_puts(b, json_object_to_json_string_ext(blk, MCPC_JSON_FLAGS));
}

/* A resource_link as one readable line: name, uri, mime, description. */
static int mcpc__link(buf_t *b, json_object *blk)
{
    const char *name = jget_str(blk, "name"), *uri = jget_str(blk, "uri");
    const char *mime = jget_str(blk, "mimeType"), *desc = jget_str(blk, "description");
    int rc = buf_printf(b, "[resource link] %s%s%s", name ? name : "", name ? ": " : "",
                        uri ? uri : "(no uri)");

    if (rc == 0 && mime)
        rc = buf_printf(b, " (%s)", mime);
    if (rc == 0 && desc && *desc)
        rc = buf_printf(b, " - %s", desc);
    return rc;
}

/* One content block as text (the rules of mcpc_flatten). */
static int mcpc__block(buf_t *b, json_object *blk)
{
    const char *type = jget_str(blk, "type") ? jget_str(blk, "type") : "";
    json_object *t;

    if (strcmp(type, "text") == 0 && (t = jget_typed(blk, "text", json_type_string)))
        return buf_append(b, json_object_get_string(t), (size_t)json_object_get_string_len(t));
    if (strcmp(type, "image") == 0 || strcmp(type, "audio") == 0) {
        const char *mime = jget_str(blk, "mimeType");
        return buf_printf(b, "[binary %s content omitted]", mime ? mime : "application/octet-stream");
    }
    if (strcmp(type, "resource_link") == 0)
        return mcpc__link(b, blk);
    if (strcmp(type, "resource") == 0 && json_object_is_type(jget(blk, "resource"), json_type_object))
        return mcpc__resource(b, blk);
    return buf_puts(b, json_object_to_json_string_ext(blk, MCPC_JSON_FLAGS));
}

static json_object *mcpc__content(json_object *result)
{
    json_object *content = jget(result, "content");

    return content && json_object_is_type(content, json_type_array) &&
                   json_object_array_length(content) > 0
               ? content : NULL;
}

static int mcpc__is_error(json_object *result)
{
    json_object *v = jget(result, "isError");

    return v && json_object_get_boolean(v);
}

char *mcpc_flatten(json_object *result)
{
    json_object *content = mcpc__content(result), *v = NULL;
    int is_error = mcpc__is_error(result);
    buf_t b;

    buf_init(&b, CAP_MCPC_TEXT);
    if (is_error && buf_puts(&b, "[tool error] ") != 0)
        goto fail;
    if (content) {
        size_t n = json_object_array_length(content);
        for (size_t i = 0; i < n; i++) {
            int rc = i ? buf_puts(&b, "\n") : 0;
            if (rc == 0)
                rc = mcpc__block(&b, json_object_array_get_idx(content, i));
            if (rc == -ENOSPC) {
                buf_reset(&b);
                buf_printf(&b, "%s[result truncated: larger than %u bytes]", is_error ? "[tool error] " : "", CAP_MCPC_TEXT);
                break;
            }
            if (rc)
                goto fail;
        }
    } else if (result && json_object_object_get_ex(result, "structuredContent", &v)) {
        if (buf_puts(&b, json_object_to_json_string_ext(v, MCPC_JSON_FLAGS)) != 0)
            goto fail;
    }
    return buf_detach(&b);
fail:
    buf_free(&b);
    return NULL;
}

/* The data: URL of an image block, or NULL when it is not one we send: no
 * base64 data, a mime type that is not image/<x> (or could break the URL), or
 * data past `cap`. */
static const char *mcpc__image_data(json_object *blk, size_t cap, const char **mime)
{
    json_object *d = jget_typed(blk, "data", json_type_string);
    const char *type = jget_str(blk, "type");

    *mime = jget_str(blk, "mimeType");
    if (!type || strcmp(type, "image") != 0 || !d || !*mime || strncmp(*mime, "image/", 6) != 0 ||
        strpbrk(*mime, ";, \"\\") || strlen(*mime) > 100 ||
        (size_t)json_object_get_string_len(d) > cap || json_object_get_string_len(d) == 0)
        return NULL;
    return json_object_get_string(d);
}

/* Moves the text gathered in `run` into a text part of `parts`. */
static int mcpc__flush(buf_t *run, json_object *parts)
{
    json_object *p;

    if (!run->len)
        return 0;
    if (!(p = json_object_new_object()))
        return -ENOMEM;
    json_object_object_add(p, "type", json_object_new_string("text"));
    json_object_object_add(p, "text", json_object_new_string_len(run->data, (int)run->len));
    buf_reset(run);
    return json_object_array_add(parts, p) ? (json_object_put(p), -ENOMEM) : 0;
}

static int mcpc__image_part(json_object *parts, const char *mime, const char *data)
{
    json_object *p = NULL, *iu = NULL;
    buf_t url;
    int rc = -ENOMEM;

    buf_init(&url, strlen(mime) + strlen(data) + 32);
    if (buf_printf(&url, "data:%s;base64,", mime) || buf_puts(&url, data) ||
        !(p = json_object_new_object()) || !(iu = json_object_new_object()))
        goto out;
    json_object_object_add(iu, "url", json_object_new_string_len(url.data, (int)url.len));
    json_object_object_add(p, "type", json_object_new_string("image_url"));
    json_object_object_add(p, "image_url", iu);
    iu = NULL;
    if (json_object_array_add(parts, p))
        goto out;
    p = NULL;
    rc = 0;
out:
    json_object_put(iu);
    json_object_put(p);
    buf_free(&url);
    return rc;
}

json_object *mcpc_parts(json_object *result, size_t image_cap, int *nomem)
{
    json_object *content = mcpc__content(result), *parts = NULL;
    size_t n = content ? json_object_array_length(content) : 0, images = 0;
    const char *mime, *data;
    buf_t run;
    int rc = 0;

    *nomem = 0;
    buf_init(&run, CAP_MCPC_TEXT);
    for (size_t i = 0; image_cap && i < n; i++)
        images += mcpc__image_data(json_object_array_get_idx(content, i), image_cap, &mime) != NULL;
    if (!images)
        goto out;
    if (!(parts = json_object_new_array()))
        goto nomem;
    if (mcpc__is_error(result) && buf_puts(&run, "[tool error] "))
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        json_object *blk = json_object_array_get_idx(content, i), *d;
        if ((data = mcpc__image_data(blk, image_cap, &mime))) {
            if (mcpc__flush(&run, parts) || mcpc__image_part(parts, mime, data))
                goto nomem;
            continue;
        }
        rc = run.len ? buf_puts(&run, "\n") : 0;
        d = jget_typed(blk, "data", json_type_string);
        if (rc == 0 && d && mime && jget_str(blk, "type") && strcmp(jget_str(blk, "type"), "image") == 0 &&
            (size_t)json_object_get_string_len(d) > image_cap)
            rc = buf_printf(&run, "[image %s omitted: %zu bytes, over the %zu-byte image cap]", mime,
                            mcpc__b64_bytes(json_object_get_string(d),
                                            (size_t)json_object_get_string_len(d)), image_cap);
        else if (rc == 0)
            rc = mcpc__block(&run, blk);
        if (rc == -ENOSPC) {    /* the flattened text says it best */
            json_object_put(parts);
            parts = NULL;
            goto out;
        }
        if (rc)
            goto nomem;
    }
    if (mcpc__flush(&run, parts))
        goto nomem;
    goto out;
nomem:
    *nomem = 1;
    json_object_put(parts);
    parts = NULL;
out:
    buf_free(&run);
    return parts;
}

/* One command on the command connection, a second try on a new connection
 * when the one we had died in use (as mcpc_tools). NULL with *e set. */
static redisReply *mcpc__command(mcpc_t *c, int argc, const char **argv, const size_t *lens,
                                 aip_err_t *e)
{
    redisReply *r = NULL;

    for (int attempt = 0; attempt < 2 && !r; attempt++) {
        redisContext *cmd = mcpc__get(c, e);
        if (!cmd)
            return NULL;
        r = redisCommandArgv(cmd, argc, argv, lens);
        mcpc__put(c, cmd, rpool_reply_broken(r));
    }
    if (!r)
        aip_err_set(e, 503, "api_error", "redis_unavailable",
                    "Redis connection lost while storing agent state");
    return r;
}

int mcpc_kv_set(mcpc_t *c, const char *key, const char *val, size_t len, int ttl_s,
                aip_err_t *e)
{
    char k[512], ttl[24];
    const char *argv[5];
    size_t lens[5];
    redisReply *r;
    int rc = -EIO;

    snprintf(k, sizeof(k), "%s%s", c->prefix, key);
    snprintf(ttl, sizeof(ttl), "%d", ttl_s > 0 ? ttl_s : 1);
    argv[0] = "SET"; lens[0] = 3;
    argv[1] = k; lens[1] = strlen(k);
    argv[2] = val; lens[2] = len;
    argv[3] = "EX"; lens[3] = 2;
    argv[4] = ttl; lens[4] = strlen(ttl);
    if (!(r = mcpc__command(c, 5, argv, lens, e)))
        return -ECONNREFUSED;
    if (r->type == REDIS_REPLY_STATUS)
        rc = 0;
    else
        aip_err_set(e, 503, "api_error", "redis_unavailable", "Redis refused SET: %s",
                    r->type == REDIS_REPLY_ERROR && r->str ? r->str : "unexpected reply");
    freeReplyObject(r);
    return rc;
}

int mcpc_kv_get(mcpc_t *c, const char *key, size_t cap, char **val, size_t *len,
                aip_err_t *e)
{
    char k[512];
    const char *argv[2];
    size_t lens[2];
    redisReply *r;
    int rc = 0;

    *val = NULL;
    *len = 0;
    snprintf(k, sizeof(k), "%s%s", c->prefix, key);
    argv[0] = "GET"; lens[0] = 3;
    argv[1] = k; lens[1] = strlen(k);
    if (!(r = mcpc__command(c, 2, argv, lens, e)))
        return -ECONNREFUSED;
    if (r->type == REDIS_REPLY_ERROR) {
        rc = aip_err_set(e, 503, "api_error", "redis_unavailable", "Redis refused GET: %s",
                         r->str ? r->str : "");
    } else if (r->type == REDIS_REPLY_STRING) {
        if (r->len > cap) {
            rc = -EFBIG;
        } else if (!(*val = malloc(r->len + 1))) {
            rc = aip_err_oom(e);
        } else {
            memcpy(*val, r->str, r->len);
            (*val)[r->len] = '\0';
            *len = r->len;
            rc = 1;
        }
    }
    freeReplyObject(r);
    return rc;
}

const char *mcpc_url(const mcpc_t *c)
{
    return c->url;
}
