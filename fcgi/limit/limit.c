/* limit — the gate and the end hooks (limit.h). What the gate took is kept
 * for the end hooks in a per-thread record: a responder thread serves one
 * request at a time, and routes_end and routes_after run for every request
 * the thread answers, so the record is always consumed by the request that
 * made it (it is matched by the request and its start time, to be sure).
 *
 * The end script is written to Redis in routes_end, before the request is
 * finished, so Redis has it before the client can send its next request;
 * its reply is never waited for: it goes on the process's shared connection
 * (shared/rmux.h), and whoever reads that next hands the reply to
 * limit__end_check. On a machine where a
 * Redis round trip costs ~100 µs of wake-ups, waiting for it held the
 * thread, and so the client's next request on the same FastCGI connection,
 * that long (issue 18's figure 12b). */
#include "fcgi/limit/limit.h"

#include "fcgi/auth/principal.h"
#include "fcgi/core/complete.h"
#include "fcgi/limit/limit_lua.h"
#include "fcgi/limit/limit_wire.h"
#include "shared/jget.h"
#include "shared/log.h"
#include "shared/rmux.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* An in-flight slot lives this long when its request never releases it (a
 * responder killed mid-request): as long as the longest tool call may run
 * (mcp_servers max_timeout's default). */
#define LIMIT__LEASE_MS (3600LL * 1000)
/* A fail-open/closed warning at most this often per process. */
#define LIMIT__WARN_EVERY_US (30LL * 1000000)

typedef struct limit__rec {
    const http_req_t *req;     /* the request that passed the gate with limits */
    long long t0_us;
    limit_pol_t pol;
    char base[256];            /* "<prefix>lim:<id>:" */
    char member[48];           /* its in-flight slot; "" none */
    long long tokens;          /* charged by the end script */
    long long clock_off;       /* Redis's clock at the gate less ours; 0 none */
    char id[40];               /* the principal's id (limit__room) */
    limit_cmd_t cmd;           /* the gate call, kept for EVAL on NOSCRIPT */
    rmux_t *mux;               /* where it went */
    int spec;                  /* limit__send_early: its verdict is still owed... */
    rmux_ticket_t tk;          /* ... to this ticket */
    svc_t *svc;                /* ... and the request's services and route */
    const route_t *route;
} limit__rec_t;

static __thread limit__rec_t limit__cur;

static pthread_once_t limit__once = PTHREAD_ONCE_INIT;
static char limit__sha_gate[41], limit__sha_end[41];
static unsigned long long limit__seed;
static unsigned long long limit__seq;
static long long limit__warned_us;
static unsigned long limit__suppressed;

static void limit__sha1(const char *text, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    out[0] = '\0';
    if (EVP_Digest(text, strlen(text), md, &n, EVP_sha1(), NULL) != 1 || n != 20)
        return;
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void limit__init(void)
{
    limit__sha1(limit_lua_gate, limit__sha_gate);
    limit__sha1(limit_lua_end, limit__sha_end);
    if (getrandom(&limit__seed, sizeof(limit__seed), GRND_NONBLOCK) != (ssize_t)sizeof(limit__seed))
        limit__seed = (unsigned long long)reqinfo_now_us() ^ ((unsigned long long)getpid() << 32);
}

typedef struct limit__pre {
    limit_verdict_t v;
    char member[LIMIT_MEMBER_LEN];
} limit__pre_t;

void limit_member(char out[LIMIT_MEMBER_LEN])
{
    pthread_once(&limit__once, limit__init);
    snprintf(out, LIMIT_MEMBER_LEN, "%016llx-%llx", limit__seed,
             __atomic_add_fetch(&limit__seq, 1, __ATOMIC_RELAXED));
}

long long limit_lease_ms(void)
{
    return LIMIT__LEASE_MS;
}

void *limit_pregate(arena_t *a, const redisReply *rep, const char *member)
{
    limit__pre_t *pre;
    limit_verdict_t v;

    if (limit_parse_gate(rep, &v) < 0 || !(pre = arena_alloc(a, sizeof(*pre))))
        return NULL;
    pre->v = v;
    snprintf(pre->member, sizeof(pre->member), "%s", member ? member : "");
    return pre;
}

/* The process's shared connection for the limiter's scripts: a thread
 * sends its gate and reads the verdict when it needs it, and sends its end
 * script without waiting, holding no pooled connection meanwhile (under
 * load the pool ran dry while verdicts were owed: shared/rmux.h). */
static rmux_t *limit__mux(svc_t *svc)
{
    return reg_mux(svc->reg);
}

/* A warning at most every LIMIT__WARN_EVERY_US, counting the ones skipped:
 * a Redis outage must not write a line per request. */
static void limit__warn(const char *what, const char *why)
{
    long long now = reqinfo_now_us();
    long long last = __atomic_load_n(&limit__warned_us, __ATOMIC_RELAXED);

    if (last && now - last < LIMIT__WARN_EVERY_US) {
        __atomic_fetch_add(&limit__suppressed, 1, __ATOMIC_RELAXED);
        return;
    }
    if (!__atomic_compare_exchange_n(&limit__warned_us, &last, now, 0, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED)) {
        __atomic_fetch_add(&limit__suppressed, 1, __ATOMIC_RELAXED);
        return;
    }
    log_warn("limits: %s (%s; %lu more like it in the last 30 s)", what, why,
             __atomic_exchange_n(&limit__suppressed, 0, __ATOMIC_RELAXED));
}

/* Redis could not count: pass or refuse by the settings (docs/keys.md). */
static int limit__failed(reg_t *reg, const limit_pol_t *pol, const char *why, http_req_t *req,
                         aip_err_t *e)
{
    json_object *ls = jget_obj(reg ? reg_settings(reg) : NULL, "limits");
    int budget = pol->day || pol->month;
    int open_budget = jget_bool(ls, "fail_open_budget", 0);
    int open_rate = jget_bool(ls, "fail_open_rate", 1);

    if ((budget && !open_budget) || ((pol->rpm || pol->tpm || pol->conc) && !open_rate)) {
        limit__warn("Redis could not count a limited key's request: refused (fail closed)", why);
        http_add_header(req, "Retry-After", "1");
        return aip_err_set(e, 503, "api_error", "limits_unavailable",
                           "The rate limiter (Redis) is unavailable and this key has %s: the "
                           "request is refused until it is back. Please retry shortly.",
                           budget && !open_budget ? "a token budget" : "rate limits");
    }
    limit__warn("Redis could not count a limited key's request: let through (fail open)", why);
    return 0;
}

/* --- which keys may have their verdict read beside the upstream call ------ */

/* Per process: keys whose last verdict here, under a second ago, left
 * every limit at least a tenth of its room (limit_headroom). Only they
 * send the gate without waiting for it: a key near or over a limit waits
 * for its verdict before its upstream call, so a refused request reaches
 * the upstream only when the room went in the last second, at most once
 * per thread. A direct-mapped table: a collision forgets a key, which then
 * waits for its verdict once. */
#define LIMIT__ROOM_SLOTS 256
#define LIMIT__ROOM_US 1000000LL

static struct {
    char id[40];
    long long until_us;
} limit__room[LIMIT__ROOM_SLOTS];
static pthread_mutex_t limit__room_mu = PTHREAD_MUTEX_INITIALIZER;

static unsigned limit__room_slot(const char *id)
{
    unsigned h = 2166136261u;   /* FNV-1a */

    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 16777619u;
    return h % LIMIT__ROOM_SLOTS;
}

static int limit__room_ok(const char *id)
{
    unsigned i = limit__room_slot(id);
    int ok;

    pthread_mutex_lock(&limit__room_mu);
    ok = strcmp(limit__room[i].id, id) == 0 && limit__room[i].until_us > reqinfo_now_us();
    pthread_mutex_unlock(&limit__room_mu);
    return ok;
}

static void limit__room_set(const char *id, int ok)
{
    unsigned i = limit__room_slot(id);

    if (strlen(id) >= sizeof(limit__room[i].id))
        return;
    pthread_mutex_lock(&limit__room_mu);
    snprintf(limit__room[i].id, sizeof(limit__room[i].id), "%s", id);
    limit__room[i].until_us = ok ? reqinfo_now_us() + LIMIT__ROOM_US : 0;
    pthread_mutex_unlock(&limit__room_mu);
}

/* --- the gate ---------------------------------------------------------------- */

/* What a verdict means for the request: the x-ratelimit-* headers, the
 * refusal in *e, or the record the end hooks charge. 0 or -EACCES. */
static int limit__apply(limit__rec_t *rec, http_req_t *req, const limit_verdict_t *v,
                        aip_err_t *e)
{
    limit_hdr_t hdr[LIMIT_HDR_MAX];
    size_t n = limit_headers(&rec->pol, v, hdr, LIMIT_HDR_MAX);

    for (size_t i = 0; i < n; i++)
        http_add_header(req, hdr[i].name, "%s", hdr[i].value);
    limit__room_set(rec->id, limit_headroom(&rec->pol, v));
    if (v->verdict != LIMIT_OK) {
        limit_refusal(&rec->pol, v, e);
        return -EACCES;
    }
    rec->req = req;
    rec->t0_us = req->info.t0_us;
    if (v->now_us > 0)
        rec->clock_off = v->now_us - reqinfo_now_us();
    return 0;
}

/* Sends rec->cmd (as EVAL with the script's text when `text`). 0 and
 * rec->tk, or a negative code with why. */
static int limit__send(limit__rec_t *rec, int text, char *why, size_t whylen)
{
    limit_cmd_t cmd = rec->cmd;

    if (!rec->mux) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    if (text) {
        cmd.argv[0] = "EVAL";
        cmd.argv[1] = limit_lua_gate;
    }
    return rmux_send(rec->mux, cmd.argc, cmd.argv, &rec->tk, why, whylen);
}

/* The gate's reply `rep` (owned; NULL: Redis failed): the verdict applied,
 * or the fail-open/closed rules. A NOSCRIPT sends the script's text and
 * waits for that. 0 or -EACCES (*e set). */
static int limit__verdict(limit__rec_t *rec, http_req_t *req, svc_t *svc, redisReply *rep,
                          aip_err_t *e)
{
    char why[256] = "no reply";
    limit_verdict_t v;
    int rc;

    if (rep && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(rep);
        rep = limit__send(rec, 1, why, sizeof why) == 0 ? rmux_wait(rec->mux, rec->tk) : NULL;
    }
    if (limit_parse_gate(rep, &v) < 0) {
        rc = limit__failed(svc->reg, &rec->pol,
                           rep && rep->type == REDIS_REPLY_ERROR ? rep->str
                           : rep ? "unexpected reply" : why, req, e) ? -EACCES : 0;
        limit__room_set(rec->id, 0);
    } else {
        rc = limit__apply(rec, req, &v, e);
    }
    if (rep)
        freeReplyObject(rep);
    return rc;
}

/* Reads the verdict owed to rec->tk (sent by limit__send_early). 0 or
 * -EACCES (*e set). */
static int limit__collect(limit__rec_t *rec, http_req_t *req, aip_err_t *e)
{
    rec->spec = 0;
    return limit__verdict(rec, req, rec->svc, rmux_wait(rec->mux, rec->tk), e);
}

/* http_req_t.settle of a request whose verdict is read beside its upstream
 * call: a refusal is answered here, in the route's shape. */
static int limit__settle(http_req_t *req)
{
    limit__rec_t *rec = &limit__cur;
    const route_surface_t *s = rec->route ? rec->route->def->surface : NULL;
    aip_err_t e;

    if (!rec->spec)
        return 0;
    aip_err_clear(&e);
    if (limit__collect(rec, req, &e) == 0)
        return 0;
    if (s && s->send_error)
        s->send_error(req, &e, NULL);
    else
        http_send_err(req, &e);
    return -EACCES;
}

/* http_req_t.settle_fd: the socket the verdict comes on (others' replies
 * wake it too; settle then waits the little left for its own). */
static int limit__settle_fd(http_req_t *req)
{
    (void)req;
    return limit__cur.spec ? rmux_fd(limit__cur.mux) : -1;
}

/* Sends the gate and leaves its verdict to be read beside the upstream
 * call (http_req_t.settle): for a completion of a key with room
 * (limit__room_ok). 1 when sent; 0 to run the gate the usual way. Sent at
 * once, Redis runs it while this thread reads the body and makes the
 * upstream call; writing it only once the upstream request was out
 * measured worse (figure 12b): a quick upstream answers before the verdict,
 * whose whole round trip then shows. */
static int limit__send_early(limit__rec_t *rec, http_req_t *req, const route_t *r, svc_t *svc)
{
    char why[256];

    if (r->def->handler != complete_handle || !limit__room_ok(rec->id) ||
        limit__send(rec, 0, why, sizeof why) < 0)
        return 0;
    rec->spec = 1;
    rec->svc = svc;
    rec->route = r;
    req->settle = limit__settle;
    req->settle_fd = limit__settle_fd;
    return 1;
}

int limit_gate(http_req_t *req, const route_t *r, svc_t *svc, aip_err_t *e)
{
    const auth_principal_t *p = req->info.auth;
    limit__rec_t *rec = &limit__cur;
    char why[256] = "";

    memset(rec, 0, sizeof(*rec));
    if (!p || !p->id || !limit_pol_from(p->policy, &rec->pol))
        return 0;
    pthread_once(&limit__once, limit__init);
    if (limit_base(rec->base, sizeof(rec->base), reg_prefix(svc->reg), p->id) < 0)
        return 0;
    snprintf(rec->id, sizeof(rec->id), "%s", p->id);
    rec->mux = limit__mux(svc);   /* the gate's and the end's */
    if (p->pregate) {
        /* the lookup's round trip ran the gate already */
        const limit__pre_t *pre = p->pregate;
        if (rec->pol.conc)
            snprintf(rec->member, sizeof(rec->member), "%s", pre->member);
        return limit__apply(rec, req, &pre->v, e) ? -EACCES : 0;
    }
    if (rec->pol.conc)
        snprintf(rec->member, sizeof(rec->member), "%016llx-%llx", limit__seed,
                 __atomic_add_fetch(&limit__seq, 1, __ATOMIC_RELAXED));
    limit_cmd_gate(&rec->cmd, limit__sha_gate, rec->base, &rec->pol, rec->member,
                   LIMIT__LEASE_MS);
    if (limit__send_early(rec, req, r, svc))
        return 0;
    if (limit__send(rec, 0, why, sizeof why) < 0)
        return limit__failed(svc->reg, &rec->pol, why, req, e) ? -EACCES : 0;
    return limit__verdict(rec, req, svc, rmux_wait(rec->mux, rec->tk), e);
}

/* 1 until an end script went out as EVAL in this process, and again after a
 * NOSCRIPT (Redis restarted or its scripts were flushed): the end's reply is
 * read by whoever reads the shared connection next (limit__end_check), too
 * late to re-send that one, so the next end loads the script with EVAL. */
static int limit__end_eval = 1;

/* The end script's reply, read by the next reader of the shared connection
 * (rmux_drop): a failure is logged (rate-limited), a NOSCRIPT makes
 * the next end send the script itself. */
static void limit__end_check(redisReply *rep)
{
    if (rep && rep->type != REDIS_REPLY_ERROR)
        return;
    if (rep && strncmp(rep->str, "NOSCRIPT", 8) == 0)
        __atomic_store_n(&limit__end_eval, 1, __ATOMIC_RELAXED);
    limit__warn("tokens not charged, in-flight slot not freed",
                rep ? rep->str : "connection lost before the reply");
}

void limit_end(const http_req_t *req, svc_t *svc)
{
    limit__rec_t *rec = &limit__cur;
    limit_cmd_t cmd;
    rmux_ticket_t tk;
    char clock[24], why[256] = "";

    if (rec->spec) {
        /* a verdict sent early and never needed (nothing was answered: the
         * client left first): read it now, so a passed request is charged
         * and its slot freed; no answer goes out (headers are past) */
        aip_err_t e;
        aip_err_clear(&e);
        (void)limit__collect(rec, (http_req_t *)req, &e);
    }
    if (rec->req != req || rec->t0_us != req->info.t0_us)
        goto clear;
    rec->tokens = req->info.prompt_tokens + req->info.completion_tokens;
    if (!rec->member[0] &&
        (rec->tokens <= 0 || !(rec->pol.tpm || rec->pol.day || rec->pol.month)))
        goto clear;
    limit_cmd_end(&cmd, limit__sha_end, rec->base, &rec->pol, rec->member, rec->tokens);
    if (__atomic_exchange_n(&limit__end_eval, 0, __ATOMIC_RELAXED)) {
        cmd.argv[0] = "EVAL";
        cmd.argv[1] = limit_lua_end;
    }
    if (rec->clock_off) {
        /* the end's clock: the gate's TIME plus our monotonic time since,
         * so the end script reads no TIME (limit_lua.h) */
        snprintf(clock, sizeof(clock), "%lld", reqinfo_now_us() + rec->clock_off);
        cmd.argv[cmd.argc++] = clock;
    }
    /* written before the request is finished, so Redis has it before the
     * client's next request; its reply is read by whoever reads the shared
     * connection next (limit__end_check), never waited for here */
    if (!rec->mux || rmux_send(rec->mux, cmd.argc, cmd.argv, &tk, why, sizeof why) < 0) {
        if (cmd.argv[0][4] == '\0')   /* "EVAL": the script did not go out */
            __atomic_store_n(&limit__end_eval, 1, __ATOMIC_RELAXED);
        limit__warn("tokens not charged, in-flight slot not freed", why[0] ? why : "no memory");
        goto clear;
    }
    rmux_drop(rec->mux, tk, limit__end_check);
clear:
    memset(rec, 0, sizeof(*rec));
}

void limit_after(const http_req_t *req, svc_t *svc)
{
    (void)req;
    if (limit__cur.spec)     /* not read (limit_end always reads it) */
        rmux_drop(limit__cur.mux, limit__cur.tk, NULL);
    memset(&limit__cur, 0, sizeof(limit__cur));
    /* whatever this request still held goes back (a connection a script
     * left broken is closed by the pool and re-opened by a later borrow) */
    reg_release(svc->reg);
}
