/* broker — Redis side of the mcp-broker daemon (see broker.h).
 *
 * Flow of a call: a message on <prefix>mcp:calls → wire_req_decode → the
 * server_t (created from the registry on first mention) → ownership: a server
 * whose lease we hold runs at once; otherwise the lease script decides (taken
 * → run; a live broker has it → ignore, that broker answers) → the session →
 * answer PUBLISHed on the request's reply channel. */
#include "mcp-broker/broker.h"
#include "mcp-broker/lease.h"
#include "mcp-broker/ondemand.h"
#include "mcp-broker/redisuv.h"
#include "mcp-broker/regasync.h"
#include "mcp-broker/server.h"
#include "shared/log.h"
#include "shared/rconn.h"
#include "shared/rid.h"
#include "shared/reg.h"
#include "shared/url.h"
#include "shared/wire.h"
#include "shared/caps.h"

#include <errno.h>
#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* After a lost connection the broker reconnects at once (a CLIENT KILL or a
 * Redis restart must not leave the calls channel without a listener for a
 * beat); only repeated failures back off: 50 ms, 100 ms, … up to the cap. */
#define BROKER_RECONNECT_FIRST_MS 50
#define BROKER_RECONNECT_MAX_MS   1000
/* With a Sentinel URL, the master found is checked (ROLE) on a connection
 * bounded by this; the whole resolution blocks the loop (docs/redis.md). */
#define BROKER_RESOLVE_MS 1000
/* CLIENT SETNAME of the connection that PUBLISHes calls' answers */
#define BROKER_ANS_NAME "mcp-broker-answers"

typedef struct broker_pending broker_pending_t;

struct broker {
    uv_loop_t *loop;
    char prefix[128];
    char url[1024];
    char id[WIRE_ID_LEN + 1];
    char ch_calls[192], ch_reg[192], k_alive[192];
    rconn_addr_t addr;
    rconn_addr_t at;            /* the master's address found at the last connect */
    int ans_lost;               /* answer connections closed since the last connect */
    redisAsyncContext *sub, *cmd;
    redisAsyncContext *ans;     /* answers only, CLIENT REPLY OFF; NULL: they go on cmd */
    uv_timer_t beat;            /* liveness key + lease renewal */
    uv_timer_t retry;           /* reconnects */
    int fails;                  /* reconnect attempts since the last success */
    unsigned epoch;             /* rconn_epoch() at the last connect (Sentinel) */
    server_t *servers;
    regasync_t *reg;            /* the registry, read on cmd */
    broker_pending_t *pending;  /* requests waiting for a registry read, oldest first */
    broker_pending_t **pending_tail;
    int npending, reg_apply;    /* reg_apply: a change waits for the read in flight */
    int stopping;
    int retiring;               /* servers retired but not yet freed */
    int beat_closed, retry_closed;
    void (*done)(void *);
    void *done_ud;
    /* started on demand / idle exit (ondemand.h) */
    char k_ondemand[192], od_token[72], od_record[256];   /* "": not on demand */
    uint64_t idle_ms, last_active;           /* idle_ms 0: never idle out */
    unsigned long calls_seen, calls_at_unsub;
    int unsubscribing, superfluous, idle_fired;
    void (*idle)(void *);
    void *idle_ud;
};

/* --- Redis plumbing ---------------------------------------------------------- */

static void broker__maybe_done(broker_t *b);
static void broker__publish(broker_t *b, const char *channel, const char *text);
static void broker__connect(broker_t *b);
static void broker__claim(broker_t *b);
static void broker__idle_check(broker_t *b);
static void broker__on_unsubscribed(broker_t *b);

/* Lets go of *pp. A connected context is closed after what is queued (its
 * disconnect callback clears *pp); one that never connected is freed at once,
 * because hiredis 0.14 frees such a context without any callback, which would
 * leave *pp dangling and the broker waiting for a callback that never comes. */
static void broker__close(redisAsyncContext **pp)
{
    redisAsyncContext *ac = *pp;

    if (!ac)
        return;
    if (!(ac->c.flags & REDIS_CONNECTED)) {
        *pp = NULL;
        redisAsyncFree(ac);
    } else if (!(ac->c.flags & REDIS_DISCONNECTING)) {
        redisAsyncDisconnect(ac);
    }
}

static void broker__on_retry(uv_timer_t *t)
{
    broker__connect(t->data);
}

/* Once both connections are gone, a reconnect: at once after a success,
 * then backing off while Redis stays away. */
static void broker__schedule(broker_t *b)
{
    uint64_t ms;

    if (b->stopping || b->sub || b->cmd || uv_is_active((uv_handle_t *)&b->retry))
        return;
    ms = b->fails == 0 ? 0 : (uint64_t)BROKER_RECONNECT_FIRST_MS << (b->fails < 5 ? b->fails - 1 : 4);
    if (ms > BROKER_RECONNECT_MAX_MS)
        ms = BROKER_RECONNECT_MAX_MS;
    b->fails++;
    uv_timer_start(&b->retry, broker__on_retry, ms, 0);
}

static void broker__on_disconnect(const redisAsyncContext *c, int status)
{
    broker_t *b = c->data;

    if (c == b->ans) {
        /* optional: answers go on cmd until the next (re)connect opens it again */
        b->ans = NULL;
        if (b->stopping)
            broker__maybe_done(b);
        else if (status != REDIS_OK && b->ans_lost++ == 0)
            log_warn("the answer connection to Redis at %s closed: %s (answers go on the command "
                     "connection)", b->url, c->errstr);
        return;
    }
    if (c == b->sub)
        b->sub = NULL;
    if (c == b->cmd)
        b->cmd = NULL;
    if (b->stopping) {
        broker__maybe_done(b);
        return;
    }
    if (status != REDIS_OK)
        log_error("lost Redis at %s: %s (reconnecting)", b->url, c->errstr);
    /* one connection without the other is of no use */
    broker__close(&b->sub);
    broker__close(&b->cmd);
    broker__close(&b->ans);
    broker__schedule(b);
}

static void broker__on_connect(const redisAsyncContext *c, int status)
{
    broker_t *b = c->data;

    if (status != REDIS_OK && c == b->ans) {
        b->ans = NULL;              /* optional (see broker__on_disconnect) */
        broker__maybe_done(b);
        return;
    }
    if (status != REDIS_OK) {
        log_error("cannot reach Redis at %s: %s", b->url, c->errstr);
        if (c == b->sub)
            b->sub = NULL;
        if (c == b->cmd)
            b->cmd = NULL;
        broker__close(&b->sub);
        broker__close(&b->cmd);
        broker__maybe_done(b);
        broker__schedule(b);
    }
}

/* A reply saying cmd no longer reaches a usable master (READONLY after a
 * failover, LOADING, MASTERDOWN): closing cmd closes both connections and
 * reconnects (broker__on_disconnect), which re-resolves the master. */
static void broker__check_lost(broker_t *b, const redisReply *rep)
{
    if (!rconn_reply_lost(rep) || b->stopping)
        return;
    log_error("Redis at %s: %s (reconnecting)", b->url, rep->str);
    broker__close(&b->cmd);
}

static void broker__on_alive(redisAsyncContext *c, void *r, void *priv)
{
    (void)priv;
    if (r)
        broker__check_lost(c->data, r);
}

/* An async connection to the plain address a (the master, resolved). */
static redisAsyncContext *broker__open(broker_t *b, const rconn_addr_t *a)
{
    redisAsyncContext *c = a->path[0] ? redisAsyncConnectUnix(a->path)
                                      : redisAsyncConnect(a->host, a->port);
    if (!c)
        return NULL;
    if (c->err) {
        log_error("cannot reach Redis at %s: %s", b->url, c->errstr);
        redisAsyncFree(c);
        return NULL;
    }
    c->data = b;
    if (redisuv_attach(c, b->loop) != 0) {
        log_error("cannot watch the Redis connection on the event loop");
        redisAsyncFree(c);
        return NULL;
    }
    redisAsyncSetConnectCallback(c, broker__on_connect);
    redisAsyncSetDisconnectCallback(c, broker__on_disconnect);
    if (a->password[0]) {
        if (a->user[0])
            redisAsyncCommand(c, NULL, NULL, "AUTH %s %s", a->user, a->password);
        else
            redisAsyncCommand(c, NULL, NULL, "AUTH %s", a->password);
    }
    if (a->db)
        redisAsyncCommand(c, NULL, NULL, "SELECT %d", a->db);
    return c;
}

/* Answers and catalogs: no-ops when Redis is disconnected (an answer lost
 * that way surfaces to the responder as its own timeout, never as a wrong
 * answer). */
/* A call's final answer, on the answer connection when there is one: Redis
 * does not reply to its PUBLISH, so the broker is not woken once more per
 * call to read the ":1" nobody needs, and Redis writes one reply fewer
 * before the message. Otherwise as broker__publish. */
static void broker__answer(broker_t *b, const char *channel, const char *text)
{
    char *cmd = NULL;
    int len;

    if (b->ans && text && (b->ans->c.flags & REDIS_CONNECTED) &&
        (len = redisFormatCommand(&cmd, "PUBLISH %s %b", channel, text, strlen(text))) > 0) {
        int rc = redisuv_send_noreply(b->ans, cmd, (size_t)len);
        redisFreeCommand(cmd);
        if (rc == 0) {
            redisuv_flush(b->ans);      /* may clear b->ans */
            return;
        }
    }
    broker__publish(b, channel, text);
}

static void broker__publish(broker_t *b, const char *channel, const char *text)
{
    if (!b->cmd || !text) {
        log_warn("answer on %s lost: Redis is not connected", channel);
        return;
    }
    redisAsyncCommand(b->cmd, NULL, NULL, "PUBLISH %s %b", channel, text, strlen(text));
    /* an answer is what a responder waits for: written now, not after
     * whatever else this loop iteration does (may clear b->cmd) */
    redisuv_flush(b->cmd);
}

static void broker__reply_error(broker_t *b, const char *reply, const char *id, const char *error)
{
    char *t = wire_reply_error(id, error);
    broker__publish(b, reply, t);
    free(t);
}

static void broker__set_key(broker_t *b, const char *key, const char *text)
{
    if (b->cmd && text)
        redisAsyncCommand(b->cmd, NULL, NULL, "SET %s %b", key, text, strlen(text));
}

static void broker__del_key(broker_t *b, const char *key)
{
    if (b->cmd)
        redisAsyncCommand(b->cmd, NULL, NULL, "DEL %s", key);
}

/* --- the services handed to server.c (server_ops_t) ------------------------------- */

static void broker__op_publish(void *data, const char *channel, const char *text)
{
    broker__publish(data, channel, text);
}

static void broker__op_answer(void *data, const char *channel, const char *text)
{
    broker__answer(data, channel, text);
}

static void broker__op_set_key(void *data, const char *key, const char *text)
{
    broker__set_key(data, key, text);
}

static void broker__server_gone(void *data)
{
    broker_t *b = data;

    b->retiring--;
    broker__maybe_done(b);
}

/* --- leases ------------------------------------------------------------------ */

typedef struct acquire {
    broker_t *b;
    char server[256];
    wire_req_t req;
} acquire_t;

static void broker__owner_key(broker_t *b, const char *server, char *out, size_t n)
{
    snprintf(out, n, "%smcp:owner:%s", b->prefix, server);
}

static void broker__on_acquire(redisAsyncContext *c, void *r, void *priv)
{
    acquire_t *a = priv;
    redisReply *rep = r;
    server_t *s;

    (void)c;
    if (!rep || a->b->stopping)
        goto out;
    s = server_find(a->b->servers, a->server);
    if (rep->type == REDIS_REPLY_ERROR) {
        log_error("lease script failed: %s", rep->str);
        broker__check_lost(a->b, rep);
        goto out;
    }
    if (rep->type != REDIS_REPLY_INTEGER || rep->integer != 1 || !s) {
        log_debug("'%s' is owned by another live broker: request %s left to it", a->server, a->req.id);
        if (s)
            server_set_owned(s, 0);
        goto out;
    }
    if (!server_owned(s))
        log_info("took the lease on MCP server '%s'", a->server);
    server_set_owned(s, 1);
    if (a->req.root) /* NULL for a renewal */
        server_handle(s, &a->req);
out:
    wire_req_clear(&a->req);
    free(a);
}

/* Runs the lease script for server s; with req (moved in), handles it when won. */
static void broker__acquire(broker_t *b, server_t *s, wire_req_t *req)
{
    acquire_t *a = calloc(1, sizeof(*a));
    char key[512], alive_prefix[192], ttl[32];

    if (!a || !b->cmd) {
        if (req) {
            if (b->cmd)
                broker__reply_error(b, req->reply, req->id, "mcp-broker: out of memory");
            wire_req_clear(req);
        }
        free(a);
        return;
    }
    a->b = b;
    snprintf(a->server, sizeof(a->server), "%s", server_name(s));
    if (req) {
        a->req = *req;
        memset(req, 0, sizeof(*req));
    }
    broker__owner_key(b, server_name(s), key, sizeof(key));
    snprintf(alive_prefix, sizeof(alive_prefix), "%sbroker:", b->prefix);
    snprintf(ttl, sizeof(ttl), "%d", LEASE_TTL_MS);
    if (redisAsyncCommand(b->cmd, broker__on_acquire, a, "EVAL %s 1 %s %s %s %s", lease_acquire_lua,
                          key, b->id, ttl, alive_prefix) != REDIS_OK) {
        /* the connection is closing (this may run from one of its last
         * callbacks): the callback will not fire, so a is ours to free */
        wire_req_clear(&a->req);
        free(a);
    }
}

/* --- registry ------------------------------------------------------------------ */

struct broker_pending {
    struct broker_pending *next;
    wire_req_t req;
};

static const server_ops_t broker__server_ops_proto = {broker__op_publish, broker__op_set_key,
                                                      broker__server_gone, NULL, broker__op_answer};

/* A request for server s: run at once when we hold its lease, else the lease
 * script decides. req is moved in. */
static void broker__dispatch(broker_t *b, server_t *s, wire_req_t *req)
{
    if (server_owned(s)) {
        server_handle(s, req);
        wire_req_clear(req);
        return;
    }
    broker__acquire(b, s, req);
}

/* A request for a server not seen before, looked up in the snapshot just
 * read (req moved in). */
static void broker__serve_new(broker_t *b, wire_req_t *req)
{
    server_t *s = server_find(b->servers, req->server);
    json_object *cfg;

    if (!s) {
        server_ops_t ops = broker__server_ops_proto;
        cfg = regasync_get(b->reg, "mcp_servers", req->server);
        if (!cfg) {
            char msg[400];
            snprintf(msg, sizeof(msg), "unknown MCP server '%s' (not in the registry)", req->server);
            broker__reply_error(b, req->reply, req->id, msg);
            wire_req_clear(req);
            return;
        }
        ops.data = b;
        s = server_new(&ops, b->loop, b->prefix, req->server, cfg);
        if (!s) {
            broker__reply_error(b, req->reply, req->id, "mcp-broker: out of memory");
            wire_req_clear(req);
            return;
        }
        server_set_next(s, b->servers);
        b->servers = s;
    }
    broker__dispatch(b, s, req);
}

/* The registry may have changed: servers removed from it stop, the others
 * take their (maybe new) settings. */
static void broker__apply_registry(broker_t *b)
{
    server_t *prev = NULL, *s = b->servers, *next;

    for (; s; s = next) {
        json_object *cfg = regasync_get(b->reg, "mcp_servers", server_name(s));
        next = server_next(s);
        if (cfg) {
            server_update(s, cfg);
            prev = s;
            continue;
        }
        log_info("MCP server '%s' was removed from the registry: stopping it", server_name(s));
        if (server_owned(s) && b->cmd) {
            char key[512];
            broker__owner_key(b, server_name(s), key, sizeof(key));
            redisAsyncCommand(b->cmd, NULL, NULL, "EVAL %s 1 %s %s", lease_release_lua, key, b->id);
        }
        if (prev)
            server_set_next(prev, next);
        else
            b->servers = next;
        broker__del_key(b, server_catalog_key(s));
        b->retiring++;
        server_retire(s); /* frees itself once its session is closed */
    }
}

/* A registry read settled (regasync's callback): apply a change when one
 * was announced, then serve the requests that waited for it, in order. */
static void broker__on_registry(void *data, int rc)
{
    broker_t *b = data;
    broker_pending_t *p = b->pending;

    b->pending = NULL;
    b->pending_tail = &b->pending;
    b->npending = 0;
    if (b->reg_apply) {
        b->reg_apply = 0;
        if (rc != 0)
            log_warn("registry changed but cannot be read: %s", regasync_errstr(b->reg));
        else if (!b->stopping)
            broker__apply_registry(b);
    } else if (p && rc != 0 && rc != -ENOENT) {
        log_warn("registry: %s", regasync_errstr(b->reg));
    }
    while (p) {
        broker_pending_t *next = p->next;
        if (b->stopping)
            wire_req_clear(&p->req);   /* nobody to answer it: Redis is going */
        else
            broker__serve_new(b, &p->req);
        free(p);
        p = next;
    }
}

/* A change was announced on <prefix>reg:changed (or we are back on Redis
 * and may have missed one): read the registry, then apply it. */
static void broker__reg_changed(broker_t *b)
{
    b->reg_apply = 1;
    if (regasync_refresh(b->reg, b->cmd) < 0) {
        b->reg_apply = 0;
        log_warn("registry changed but cannot be read: Redis is not connected");
    }
}

/* --- incoming messages ------------------------------------------------------ */

static void broker__on_call(broker_t *b, const char *text, size_t len)
{
    wire_req_t req;
    char err[256];
    server_t *s;
    broker_pending_t *p;
    int rc;

    b->calls_seen++;
    b->last_active = uv_now(b->loop);
    if (wire_req_decode(text, len, &req, err, sizeof(err)) != 0) {
        log_warn("ignored a malformed request on %s: %s", b->ch_calls, err);
        return;
    }
    s = server_find(b->servers, req.server);
    if (req.op == WIRE_OP_CANCEL || req.op == WIRE_OP_SAMPLED) {
        /* only the broker running the call has it; nothing to answer */
        if (s && server_owned(s) && req.op == WIRE_OP_CANCEL)
            server_cancel(s, req.id);
        else if (s && server_owned(s))
            server_sampled(s, &req);
        wire_req_clear(&req);
        return;
    }
    if (s) {
        broker__dispatch(b, s, &req);
        return;
    }
    /* a server not seen yet: look it up in a registry read at least as new
     * as this request, without waiting for it here */
    if (b->npending >= CAP_BROKER_PENDING) {
        broker__reply_error(b, req.reply, req.id, "mcp-broker is busy reading the registry; try again");
        wire_req_clear(&req);
        return;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        broker__reply_error(b, req.reply, req.id, "mcp-broker: out of memory");
        wire_req_clear(&req);
        return;
    }
    p->req = req;
    *b->pending_tail = p;
    b->pending_tail = &p->next;
    b->npending++;
    rc = regasync_refresh(b->reg, b->cmd);
    if (rc < 0)
        broker__on_registry(b, rc); /* serve it from the snapshot we have */
}

static void broker__on_sub(redisAsyncContext *c, void *r, void *priv)
{
    broker_t *b = c->data;
    redisReply *rep = r, *kind, *ch, *msg;

    (void)priv;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 || b->stopping)
        return;
    kind = rep->element[0];
    ch = rep->element[1];
    msg = rep->element[2];
    if (kind->type == REDIS_REPLY_STRING && strcmp(kind->str, "subscribe") == 0) {
        if (b->fails > 1)
            log_info("back on Redis at %s", b->url);
        b->fails = 0;              /* connected: the next loss reconnects at once */
        return;
    }
    if (kind->type == REDIS_REPLY_STRING && strcmp(kind->str, "unsubscribe") == 0 &&
        ch->type == REDIS_REPLY_STRING && strcmp(ch->str, b->ch_calls) == 0) {
        broker__on_unsubscribed(b);
        return;
    }
    if (kind->type != REDIS_REPLY_STRING || strcmp(kind->str, "message") != 0 ||
        ch->type != REDIS_REPLY_STRING || msg->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(ch->str, b->ch_calls) == 0)
        broker__on_call(b, msg->str, msg->len);
    else if (strcmp(ch->str, b->ch_reg) == 0)
        broker__reg_changed(b);
}

/* The answer connection: AUTH/SELECT as the others, its name (CLIENT
 * LIST shows BROKER_ANS_NAME), then CLIENT REPLY OFF sent without a reply
 * callback (none comes). A Redis that refuses it (before 3.2) answers with
 * an error nobody waits for: hiredis closes the connection and answers go
 * on cmd. */
static void broker__open_ans(broker_t *b, const rconn_addr_t *at)
{
    static const char off[] = "*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$3\r\nOFF\r\n";

    b->ans = broker__open(b, at);
    if (b->ans && (redisAsyncCommand(b->ans, NULL, NULL, "CLIENT SETNAME %s", BROKER_ANS_NAME) != REDIS_OK ||
                   redisuv_send_noreply(b->ans, off, sizeof(off) - 1) != 0))
        broker__close(&b->ans);
}

static void broker__connect(broker_t *b)
{
    rconn_addr_t at;
    char err[512];

    if (b->sub || b->cmd || b->stopping)
        return;
    /* a Sentinel URL: where the master is now, asked on every reconnect
     * (blocking; a plain URL is copied as is) */
    b->epoch = rconn_epoch();
    if (rconn_resolve(&b->addr, BROKER_RESOLVE_MS, &at, err, sizeof err) < 0) {
        log_error("%s (retrying)", err);
        broker__schedule(b);
        return;
    }
    b->cmd = broker__open(b, &at);
    b->sub = broker__open(b, &at);
    if (!b->cmd || !b->sub) {
        broker__close(&b->cmd);       /* just opened: freed at once */
        broker__close(&b->sub);
        broker__schedule(b);
        return;
    }
    b->at = at;
    b->ans_lost = 0;
    if (!b->ans)
        broker__open_ans(b, &at);
    b->unsubscribing = 0;
    redisAsyncCommand(b->sub, broker__on_sub, NULL, "SUBSCRIBE %s %s", b->ch_calls, b->ch_reg);
    redisAsyncCommand(b->cmd, broker__on_alive, NULL, "SET %s 1 PX %d", b->k_alive, LEASE_ALIVE_MS);
    broker__claim(b);
    /* a registry change may have been missed while away (and a Redis that
     * came back empty gets its registry back here, when we have a seed) */
    broker__reg_changed(b);
    /* ... and its catalogs: responders read them before asking us */
    for (server_t *s = b->servers; s; s = server_next(s))
        if (server_owned(s))
            server_republish(s);
}

/* Each beat: a PING on the answer connection (unanswered, but Redis's idle
 * `timeout` counts it), or a new one when it closed (a CLIENT KILL, an idle
 * timeout) while cmd and sub stayed up. */
static void broker__keep_ans(broker_t *b)
{
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";

    if (!b->ans)
        broker__open_ans(b, &b->at);
    else if (b->ans->c.flags & REDIS_CONNECTED)
        redisuv_send_noreply(b->ans, ping, sizeof(ping) - 1);
}

static void broker__on_beat(uv_timer_t *t)
{
    broker_t *b = t->data;

    if (b->stopping || !b->cmd)
        return;
    if (b->epoch != rconn_epoch()) {
        /* Sentinel moved the master: closing cmd closes both and reconnects */
        log_warn("Redis master moved (Sentinel): reconnecting");
        broker__close(&b->cmd);
        return;
    }
    redisAsyncCommand(b->cmd, broker__on_alive, NULL, "SET %s 1 PX %d", b->k_alive, LEASE_ALIVE_MS);
    broker__keep_ans(b);
    for (server_t *s = b->servers; s; s = server_next(s))
        if (server_owned(s))
            broker__acquire(b, s, NULL); /* renews, or learns it was lost */
    broker__claim(b);
    broker__idle_check(b);
}

/* --- on demand: the autostart record, idle exit (ondemand.h) ----------------- */

static void broker__on_claim(redisAsyncContext *c, void *r, void *priv)
{
    broker_t *b = c->data;
    redisReply *rep = r;

    (void)priv;
    if (!rep || b->stopping || b->superfluous)
        return;
    if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 0) {
        log_warn("another mcp-broker started on demand holds %s: this one is not needed and "
                 "stops once idle", b->k_ondemand);
        b->superfluous = 1;
    } else if (rep->type == REDIS_REPLY_ERROR) {
        log_error("cannot claim %s: %s", b->k_ondemand, rep->str);
    }
}

/* Claims, or keeps alive, the autostart record (only when started on demand). */
static void broker__claim(broker_t *b)
{
    char ttl[16];

    if (!b->od_record[0] || !b->cmd || b->stopping || b->superfluous)
        return;
    snprintf(ttl, sizeof ttl, "%d", ONDEMAND_RECORD_MS);
    redisAsyncCommand(b->cmd, broker__on_claim, NULL, "EVAL %s 1 %s %s %s %s", ondemand_claim_lua,
                      b->k_ondemand, b->od_token, b->od_record, ttl);
}

/* Work in hand: a call or start in flight, or requests waiting for the registry. */
static int broker__busy(const broker_t *b)
{
    if (b->npending > 0)
        return 1;
    for (const server_t *s = b->servers; s; s = server_next(s))
        if (server_busy(s))
            return 1;
    return 0;
}

/* Each beat: idle (or one too many) for long enough → stop listening for
 * calls; broker__on_unsubscribed decides once Redis has confirmed. */
static void broker__idle_check(broker_t *b)
{
    uint64_t now = uv_now(b->loop);

    if (!b->idle || b->idle_fired || b->unsubscribing || b->stopping || !b->sub)
        return;
    if (broker__busy(b)) {
        b->last_active = now;
        return;
    }
    if (!b->superfluous && (b->idle_ms == 0 || now - b->last_active < b->idle_ms))
        return;
    b->calls_at_unsub = b->calls_seen;
    /* refused while the connection is not subscribed yet: next beat */
    b->unsubscribing = redisAsyncCommand(b->sub, NULL, NULL, "UNSUBSCRIBE %s", b->ch_calls) == REDIS_OK;
}

/* Redis confirmed the UNSUBSCRIBE: every call published before it has been
 * delivered. One that came meanwhile (or work still in hand) means back to
 * work; else the broker is done, and says so to its host. */
static void broker__on_unsubscribed(broker_t *b)
{
    if (!b->unsubscribing || b->stopping)
        return;
    b->unsubscribing = 0;
    if (b->calls_seen != b->calls_at_unsub || broker__busy(b)) {
        b->last_active = uv_now(b->loop);
        redisAsyncCommand(b->sub, broker__on_sub, NULL, "SUBSCRIBE %s", b->ch_calls);
        return;
    }
    b->idle_fired = 1;
    if (b->superfluous)
        log_info("not needed (another broker started on demand runs): stopping");
    else
        log_info("idle for %llu s: stopping (a responder starts a broker again on demand)",
                 (unsigned long long)(b->idle_ms / 1000));
    b->idle(b->idle_ud);
}

void broker_set_ondemand(broker_t *b, const char *token, int idle_exit_s, void (*idle)(void *ud),
                         void *ud)
{
    b->idle = idle;
    b->idle_ud = ud;
    b->idle_ms = (uint64_t)(idle_exit_s > 0 ? idle_exit_s : 0) * 1000;
    b->last_active = uv_now(b->loop);
    b->od_record[0] = '\0';
    if (token && *token && snprintf(b->od_token, sizeof b->od_token, "%s", token) < (int)sizeof b->od_token &&
        ondemand_record(b->od_record, sizeof b->od_record, b->id, token) != 0)
        b->od_record[0] = '\0';
    if (b->od_record[0]) {
        log_info("started on demand: holding %s as %s", b->k_ondemand, b->od_record);
        broker__claim(b);
    }
    if (b->idle_ms)
        log_info("exits after %d s without a call", idle_exit_s);
}

/* --- lifecycle --------------------------------------------------------------- */

broker_t *broker_new(uv_loop_t *loop, const char *url, const char *prefix, char *err, size_t errlen)
{
    broker_t *b = calloc(1, sizeof(*b)), *res = NULL;
    reg_t *probe = NULL;

    if (!b) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    b->loop = loop;
    snprintf(b->prefix, sizeof(b->prefix), "%s", prefix);
    url_redact(url, b->url, sizeof(b->url));   /* for logs only: no password */
    if (rconn_parse(url, &b->addr, err, errlen) != 0)
        goto out;
    /* Redis must answer at start-up (a wrong URL or password ends the
     * daemon with a message); later the loop only ever reads it async */
    if (reg_open(&probe, url, prefix, err, errlen) != 0)
        goto out;
    reg_close(probe);
    b->reg = regasync_new(prefix, broker__on_registry, b);
    if (!b->reg) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    b->pending_tail = &b->pending;
    rid_hex(b->id, WIRE_ID_LEN);
    snprintf(b->ch_calls, sizeof(b->ch_calls), "%smcp:calls", prefix);
    snprintf(b->ch_reg, sizeof(b->ch_reg), "%sreg:changed", prefix);
    snprintf(b->k_alive, sizeof(b->k_alive), "%sbroker:%s", prefix, b->id);
    snprintf(b->k_ondemand, sizeof(b->k_ondemand), "%s%s", prefix, ONDEMAND_KEY);
    uv_timer_init(loop, &b->beat);
    b->beat.data = b;
    uv_timer_init(loop, &b->retry);
    b->retry.data = b;
    uv_timer_start(&b->beat, broker__on_beat, LEASE_BEAT_MS, LEASE_BEAT_MS);
    log_info("broker %s listening on %s (Redis %s)", b->id, b->ch_calls, b->url);
    broker__connect(b);
    res = b;
    b = NULL;
out:
    if (b) {
        regasync_free(b->reg);
        free(b);
    }
    return res;
}

static void broker__beat_closed(uv_handle_t *h)
{
    broker_t *b = h->data;
    b->beat_closed = 1;
    broker__maybe_done(b);
}

static void broker__retry_closed(uv_handle_t *h)
{
    broker_t *b = h->data;
    b->retry_closed = 1;
    broker__maybe_done(b);
}

void broker_set_seed(broker_t *b, const char *json)
{
    regasync_set_seed(b->reg, json);
}

/* During shutdown: once every session has closed, release what we hold in
 * Redis and disconnect; once disconnected, tell the caller. */
static void broker__maybe_done(broker_t *b)
{
    if (!b->stopping)
        return;
    if (b->servers || b->retiring > 0)
        return;
    if (b->cmd || b->sub || b->ans) {
        broker__close(&b->cmd); /* sends what is queued first */
        broker__close(&b->sub);
        redisuv_flush(b->ans);  /* no replies to wait for: its queue is only written */
        broker__close(&b->ans);
        if (b->cmd || b->sub || b->ans)
            return;             /* their disconnect callbacks bring us back */
    }
    if (!uv_is_closing((uv_handle_t *)&b->beat)) {
        uv_close((uv_handle_t *)&b->beat, broker__beat_closed);
        uv_close((uv_handle_t *)&b->retry, broker__retry_closed);
        return;
    }
    if (b->beat_closed && b->retry_closed && b->done) {
        void (*done)(void *) = b->done;
        b->done = NULL;
        done(b->done_ud);
    }
}

static void broker__release_all(broker_t *b)
{
    char key[512];

    if (!b->cmd)
        return;
    for (server_t *s = b->servers; s; s = server_next(s))
        if (server_owned(s)) {
            broker__owner_key(b, server_name(s), key, sizeof(key));
            redisAsyncCommand(b->cmd, NULL, NULL, "EVAL %s 1 %s %s", lease_release_lua, key, b->id);
        }
    redisAsyncCommand(b->cmd, NULL, NULL, "DEL %s", b->k_alive);
    if (b->od_record[0])
        redisAsyncCommand(b->cmd, NULL, NULL, "EVAL %s 1 %s %s", ondemand_release_lua,
                          b->k_ondemand, b->od_record);
}

void broker_stop(broker_t *b, void (*done)(void *ud), void *ud)
{
    if (b->stopping)
        return;
    log_info("stopping: closing %s MCP sessions", b->servers ? "the" : "no");
    b->done = done;
    b->done_ud = ud;
    b->stopping = 1;
    broker__release_all(b);
    broker__close(&b->sub); /* no new calls from now on */
    while (b->servers) {
        server_t *s = b->servers;
        b->servers = server_next(s);
        b->retiring++;
        server_retire(s);
    }
    broker__maybe_done(b);
}

void broker_free(broker_t *b)
{
    if (!b)
        return;
    while (b->pending) {
        broker_pending_t *p = b->pending;
        b->pending = p->next;
        wire_req_clear(&p->req);
        free(p);
    }
    regasync_free(b->reg);
    free(b);
}

server_t *broker_servers(broker_t *b)
{
    return b->servers;
}
