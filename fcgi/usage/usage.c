/* usage — see usage.h. The pure parts are usage_q.c (buckets, fields, the
 * query) and usage_agg.c (sums, JSON, CSV); this file talks to Redis. Both
 * directions are one pipeline: the record is every HINCRBY and EXPIREAT of
 * the request's two buckets, the query one HGETALL per bucket. */
#include "fcgi/usage/usage.h"

#include "fcgi/usage/usage_agg.h"
#include "fcgi/usage/usage_q.h"
#include "shared/jget.h"
#include "shared/log.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define USAGE__HOURS_DEFAULT 48
#define USAGE__DAYS_DEFAULT 90
#define USAGE__WARN_EVERY_S 60
/* Commands of one record: per bucket at most 6 counters, a tool count per
 * server, and an EXPIREAT. */
#define USAGE__CMDS (2 * (7 + REQINFO_SERVERS))

static atomic_ulong usage__dropped;
static atomic_llong usage__warned_at;

unsigned long usage_drops(void)
{
    return atomic_load(&usage__dropped);
}

/* Counts a dropped record and warns, at most once a minute over all threads. */
static void usage__drop(const char *why)
{
    unsigned long n = atomic_fetch_add(&usage__dropped, 1) + 1;
    long long now = (long long)time(NULL), last = atomic_load(&usage__warned_at);
    if (now - last >= USAGE__WARN_EVERY_S &&
        atomic_compare_exchange_strong(&usage__warned_at, &last, now))
        log_warn("usage: a usage record was dropped (%s); %lu dropped since start", why, n);
}

/* The retention setting in hours (gran hour) or days, from the registry. */
static long long usage__retention(svc_t *svc, int gran)
{
    json_object *u = svc->reg ? jget_obj(reg_settings(svc->reg), "usage") : NULL;
    long long v = gran == USAGE_DAY ? jget_int64(u, "retention_days", USAGE__DAYS_DEFAULT)
                                    : jget_int64(u, "retention_hours", USAGE__HOURS_DEFAULT);
    return v > 0 ? v : (gran == USAGE_DAY ? USAGE__DAYS_DEFAULT : USAGE__HOURS_DEFAULT);
}

/* Which finished requests are usage: completions, and /mcp requests that made
 * a tool call (initialize, tools/list and the GET stream are not). */
static int usage__counts(const reqinfo_t *ri, int *is_mcp)
{
    static const char *const routes[] = {"/v1/chat/completions", "/v1/messages",
                                         "/v1/responses", NULL};
    *is_mcp = 0;
    if (!ri->route || (!ri->principal && !ri->assistant))
        return 0;
    for (const char *const *r = routes; *r; r++)
        if (strcmp(ri->route, *r) == 0)
            return 1;
    *is_mcp = strncmp(ri->route, "/mcp", 4) == 0;
    return *is_mcp && ri->tool_calls > 0;
}

typedef struct usage__pipe {
    redisContext *c;
    int n;
    const char *key;
    char p[USAGE_ID_MAX + 1], a[USAGE_ID_MAX + 1];
} usage__pipe_t;

static int usage__incr(usage__pipe_t *pp, const char *metric, long long v)
{
    char f[USAGE_FIELD_MAX];
    if (v <= 0 || usage_field(f, sizeof(f), pp->p, pp->a, metric) < 0)
        return 0;
    if (redisAppendCommand(pp->c, "HINCRBY %s %s %lld", pp->key, f, v) != REDIS_OK)
        return -ENOMEM;
    pp->n++;
    return 0;
}

/* Appends one bucket's commands. 0 or -ENOMEM. */
static int usage__bucket(usage__pipe_t *pp, const reqinfo_t *ri, int is_mcp, svc_t *svc,
                         long long now, int gran)
{
    char key[256], b[USAGE_BUCKET_MAX], srv[USAGE_ID_MAX + 1], m[USAGE_ID_MAX + 3];
    long long w = gran == USAGE_DAY ? 86400 : 3600;
    int rc = 0;

    usage_bucket_name(now, gran, b);
    snprintf(key, sizeof(key), "%suse:%s:%s", reg_prefix(svc->reg), gran == USAGE_DAY ? "d" : "h",
             b);
    pp->key = key;
    if ((rc = usage__incr(pp, "req", 1)) < 0 ||
        (rc = usage__incr(pp, "err", ri->failed || (is_mcp && ri->tool_errors) ? 1 : 0)) < 0 ||
        (rc = usage__incr(pp, "pt", ri->prompt_tokens)) < 0 ||
        (rc = usage__incr(pp, "ct", ri->completion_tokens)) < 0 ||
        (rc = usage__incr(pp, "uus", ri->upstream_us)) < 0 ||
        (rc = usage__incr(pp, "tc", ri->tool_calls)) < 0)
        return rc;
    for (size_t i = 0; i < ri->ntools; i++) {
        usage_id_clean(ri->tools[i].server, srv);
        snprintf(m, sizeof(m), "t:%s", srv);
        if ((rc = usage__incr(pp, m, ri->tools[i].calls)) < 0)
            return rc;
    }
    /* the bucket lives for its own span plus the retention after it */
    if (redisAppendCommand(pp->c, "EXPIREAT %s %lld", key,
                           usage_bucket_start(now, gran) + w + usage__retention(svc, gran) * w) !=
        REDIS_OK)
        return -ENOMEM;
    pp->n++;
    return 0;
}

void usage_after(const http_req_t *req, svc_t *svc)
{
    const reqinfo_t *ri = &req->info;
    usage__pipe_t pp;
    long long t0, now = (long long)time(NULL);
    int is_mcp, got = 0;
    void *rep = NULL;

    if (!usage__counts(ri, &is_mcp))
        return;
    memset(&pp, 0, sizeof(pp));
    if (!svc->reg) {
        usage__drop("Redis has never been reached");
        return;
    }
    /* borrowed from the process's pool (a broken one was closed there and
     * is re-opened here, off the answer's path), given back below */
    pp.c = reg_redis(svc->reg);
    if (!pp.c) {
        usage__drop("Redis is unreachable");
        return;
    }
    t0 = reqinfo_now_us();
    usage_id_clean(ri->principal, pp.p);
    usage_id_clean(ri->assistant, pp.a);
    if (usage__bucket(&pp, ri, is_mcp, svc, now, USAGE_HOUR) < 0 ||
        usage__bucket(&pp, ri, is_mcp, svc, now, USAGE_DAY) < 0) {
        /* what was appended is sent by the reads below; a record half
         * written is still counted as dropped */
        usage__drop("out of memory");
    }
    for (; got < pp.n; got++) {
        if (redisGetReply(pp.c, &rep) != REDIS_OK)
            break;
        freeReplyObject(rep);
    }
    if (got < pp.n) {
        /* the pool closes the broken connection at reg_release_broken */
        usage__drop(pp.c->errstr[0] ? pp.c->errstr : "Redis did not answer");
        reg_release_broken(svc->reg);
    } else
        log_debug("usage: %d commands in one round trip, %lld us", pp.n,
                  reqinfo_now_us() - t0);
    reg_release(svc->reg);
}

/* The note an answer carries when its range starts before the retention. */
static const char *usage__note(const usage_query_t *q, svc_t *svc, long long now, char *buf,
                               size_t len)
{
    long long w = q->gran == USAGE_DAY ? 86400 : 3600, keep = usage__retention(svc, q->gran);
    if (q->first >= usage_bucket_start(now, q->gran) - keep * w)
        return NULL;
    snprintf(buf, len, "the range starts before the retention (usage.retention_%s: %lld): "
             "older %s buckets have expired and count as zero", q->gran == USAGE_DAY ? "days"
             : "hours", keep, q->gran == USAGE_DAY ? "day" : "hour");
    return buf;
}

/* Reads the query's buckets into g: one HGETALL each, pipelined. 0, -EIO
 * (Redis), -ENOSPC (too many rows), -ENOMEM. */
static int usage__read(redisContext *c, svc_t *svc, const usage_query_t *q, usage_agg_t *g)
{
    long long w = q->gran == USAGE_DAY ? 86400 : 3600;
    char key[256], b[USAGE_BUCKET_MAX];
    long i, sent = 0;
    int rc = 0;

    for (i = 0; i < q->nbuckets; i++, sent++) {
        usage_bucket_name(q->first + i * w, q->gran, b);
        snprintf(key, sizeof(key), "%suse:%s:%s", reg_prefix(svc->reg),
                 q->gran == USAGE_DAY ? "d" : "h", b);
        if (redisAppendCommand(c, "HGETALL %s", key) != REDIS_OK) {
            rc = -ENOMEM;
            break;
        }
    }
    /* every reply sent for is read, so the connection stays in step */
    for (i = 0; i < sent; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK)
            return -EIO;
        if (r->type == REDIS_REPLY_ERROR && rc == 0)
            rc = -EIO;
        for (size_t k = 0; rc == 0 && r->type == REDIS_REPLY_ARRAY && k + 1 < r->elements;
             k += 2)
            if (r->element[k]->type == REDIS_REPLY_STRING &&
                r->element[k + 1]->type == REDIS_REPLY_STRING)
                rc = usage_agg_add(g, q->first + i * w, r->element[k]->str,
                                   r->element[k + 1]->str);
        freeReplyObject(r);
    }
    return rc;
}

int usage_admin(http_req_t *req, svc_t *svc)
{
    usage_params_t p = {
        http_query_param(req, "key"), http_query_param(req, "assistant"),
        http_query_param(req, "from"), http_query_param(req, "to"),
        http_query_param(req, "granularity"), http_query_param(req, "group_by"),
        http_query_param(req, "format"), http_header(req, "Accept"),
    };
    usage_query_t q;
    usage_agg_t *g = NULL;
    json_object *doc = NULL;
    char err[512], notebuf[256], *csv = NULL;
    const char *param = NULL;
    long long now = (long long)time(NULL);
    redisContext *c = svc->reg ? reg_redis(svc->reg) : NULL;
    size_t len = 0;
    int rc;

    if (usage_query_parse(&p, now, &q, err, sizeof(err), &param) < 0) {
        rc = http_send_error(req, 400, "invalid_request_error", "invalid_value", param, "%s",
                             err);
        goto out;
    }
    if (!c) {
        rc = http_send_error(req, 503, "api_error", "redis_unavailable", NULL,
                             "Usage is kept in Redis, which is unreachable: retry later.");
        goto out;
    }
    if (!(g = usage_agg_new(&q))) {
        rc = http_send_error(req, 500, "api_error", NULL, NULL, "out of memory");
        goto out;
    }
    rc = usage__read(c, svc, &q, g);
    reg_release(svc->reg);      /* not held while the answer is written */
    if (rc == -ENOSPC) {
        rc = http_send_error(req, 400, "invalid_request_error", "too_many_rows", "group_by",
                             "The answer would hold more than %d rows: narrow the range or "
                             "the filters, or group by less.", CAP_USAGE_ROWS);
        goto out;
    }
    if (rc < 0) {
        rc = rc == -ENOMEM ? http_send_error(req, 500, "api_error", NULL, NULL, "out of memory")
                           : http_send_error(req, 503, "api_error", "redis_unavailable", NULL,
                                             "Reading usage from Redis failed: retry later.");
        goto out;
    }
    if (q.csv) {
        csv = usage_agg_csv(g, &len);
        rc = csv ? http_send(req, 200, "text/csv; charset=utf-8", NULL, csv, len)
                 : http_send_error(req, 500, "api_error", NULL, NULL,
                                   "could not write the CSV (out of memory or past %u bytes)",
                                   CAP_USAGE_CSV);
        goto out;
    }
    doc = usage_agg_json(g, usage__note(&q, svc, now, notebuf, sizeof(notebuf)));
    rc = doc ? http_send_json(req, 200, doc, NULL)
             : http_send_error(req, 500, "api_error", NULL, NULL, "out of memory");
out:
    reg_release(svc->reg);
    free(csv);
    json_object_put(doc);
    usage_agg_free(g);
    return rc;
}
