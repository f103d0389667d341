/* limit — the gate and the end hooks (limit.h). What the gate took is kept
 * for the end hooks in a per-thread record: a responder thread serves one
 * request at a time, and routes_end and routes_after run for every request
 * the thread answers, so the record is always consumed by the request that
 * made it (it is matched by the request and its start time, to be sure).
 *
 * The end script is written to Redis in routes_end, before the request is
 * finished, so Redis has it before the client can send its next request;
 * its reply is never waited for: the connection goes back to the pool owing
 * it (rpool_put_unread), and whoever borrows that connection next reads it,
 * long arrived, and hands it to limit__end_check. On a machine where a
 * Redis round trip costs ~100 µs of wake-ups, waiting for it held the
 * thread, and so the client's next request on the same FastCGI connection,
 * that long (issue 18's figure 12b). */
#include "fcgi/limit/limit.h"

#include "fcgi/auth/principal.h"
#include "fcgi/limit/limit_lua.h"
#include "fcgi/limit/limit_wire.h"
#include "shared/jget.h"
#include "shared/log.h"
#include "shared/rscript.h"

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

/* The scripts for rscript_run (EVALSHA, EVAL on NOSCRIPT: shared/rscript.h),
 * one per thread as rscript wants, each given the sha limit__init computed,
 * so the first call makes no SCRIPT LOAD and limit_end can pipeline its
 * EVALSHA without a reply. */
static _Thread_local rscript_t limit__gate_rs = { limit_lua_gate, "" };

static rscript_t *limit__rs(rscript_t *s, const char *sha)
{
    if (!s->sha[0])
        memcpy(s->sha, sha, sizeof(s->sha));
    return s;
}

/* Runs a built command (argv: EVALSHA sha 1 base ARGV...) through rscript. */
static redisReply *limit__run(redisContext *c, rscript_t *s, limit_cmd_t *cmd)
{
    return rscript_run(c, s, 1, cmd->argc - 3, cmd->argv + 3, NULL);
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

int limit_gate(http_req_t *req, const route_t *r, svc_t *svc, aip_err_t *e)
{
    const auth_principal_t *p = req->info.auth;
    limit__rec_t *rec = &limit__cur;
    limit_verdict_t v;
    limit_hdr_t hdr[LIMIT_HDR_MAX];
    limit_cmd_t cmd;
    redisContext *c;
    redisReply *rep = NULL;
    size_t n;
    int rc = 0;

    (void)r;
    memset(rec, 0, sizeof(*rec));
    if (!p || !p->id || !limit_pol_from(p->policy, &rec->pol))
        return 0;
    pthread_once(&limit__once, limit__init);
    if (limit_base(rec->base, sizeof(rec->base), reg_prefix(svc->reg), p->id) < 0)
        return 0;
    if (p->pregate) {
        /* the lookup's round trip ran the gate already */
        const limit__pre_t *pre = p->pregate;
        v = pre->v;
        if (rec->pol.conc)
            snprintf(rec->member, sizeof(rec->member), "%s", pre->member);
        goto verdict;
    }
    if (rec->pol.conc)
        snprintf(rec->member, sizeof(rec->member), "%016llx-%llx", limit__seed,
                 __atomic_add_fetch(&limit__seq, 1, __ATOMIC_RELAXED));
    c = reg_redis(svc->reg);   /* borrowed for the script, given back at out */
    if (!c) {
        rc = limit__failed(svc->reg, &rec->pol, "Redis unreachable", req, e);
        goto out;
    }
    limit_cmd_gate(&cmd, limit__sha_gate, rec->base, &rec->pol, rec->member, LIMIT__LEASE_MS);
    rep = limit__run(c, limit__rs(&limit__gate_rs, limit__sha_gate), &cmd);
    if (limit_parse_gate(rep, &v) < 0) {
        rc = limit__failed(svc->reg, &rec->pol, !rep ? (c->errstr[0] ? c->errstr : "no reply")
                           : rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply",
                           req, e);
        goto out;
    }
verdict:
    n = limit_headers(&rec->pol, &v, hdr, LIMIT_HDR_MAX);
    for (size_t i = 0; i < n; i++)
        http_add_header(req, hdr[i].name, "%s", hdr[i].value);
    if (v.verdict != LIMIT_OK) {
        rc = limit_refusal(&rec->pol, &v, e);
        goto out;
    }
    rec->req = req;
    rec->t0_us = req->info.t0_us;
    if (v.now_us > 0)
        rec->clock_off = v.now_us - reqinfo_now_us();
out:
    if (rep)
        freeReplyObject(rep);
    reg_release(svc->reg);
    return rc ? -EACCES : 0;
}

/* 1 until an end script went out as EVAL in this process, and again after a
 * NOSCRIPT (Redis restarted or its scripts were flushed): the end's reply is
 * read by whoever borrows its connection next (limit__end_check), too late
 * to re-send that one, so the next end loads the script with EVAL. */
static int limit__end_eval = 1;

/* The end script's reply, read by the next borrower of its connection
 * (rpool_put_unread): a failure is logged (rate-limited), a NOSCRIPT makes
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
    redisContext *c;
    char clock[24];
    int done = 0;

    if (rec->req != req || rec->t0_us != req->info.t0_us)
        goto clear;
    rec->tokens = req->info.prompt_tokens + req->info.completion_tokens;
    if (!rec->member[0] &&
        (rec->tokens <= 0 || !(rec->pol.tpm || rec->pol.day || rec->pol.month)))
        goto clear;
    /* borrowed and held across FCGX_Finish_r: limit_after reads the reply
     * on it and gives it back */
    c = reg_redis(svc->reg);
    if (!c) {
        limit__warn("tokens not charged, in-flight slot not freed", "Redis unreachable");
        goto clear;
    }
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
    if (redisAppendCommandArgv(c, cmd.argc, cmd.argv, NULL) != REDIS_OK)
        goto failed;
    while (!done)
        if (redisBufferWrite(c, &done) != REDIS_OK)
            goto failed;
    /* sent before the answer is finished, so Redis has it before the
     * client's next request; its reply is read by the connection's next
     * borrower, never waited for here */
    reg_release_unread(svc->reg, 1, limit__end_check);
    goto clear;
failed:
    if (cmd.argv[0][4] == '\0')   /* "EVAL": the script did not go out */
        __atomic_store_n(&limit__end_eval, 1, __ATOMIC_RELAXED);
    limit__warn("tokens not charged, in-flight slot not freed",
                c->errstr[0] ? c->errstr : "write failed");
    reg_release_broken(svc->reg);
clear:
    memset(rec, 0, sizeof(*rec));
}

void limit_after(const http_req_t *req, svc_t *svc)
{
    (void)req;
    memset(&limit__cur, 0, sizeof(limit__cur));
    /* whatever this request still held goes back (a connection a script
     * left broken is closed by the pool and re-opened by a later borrow) */
    reg_release(svc->reg);
}
