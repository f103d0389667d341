/* usage — see usage.h. The pure parts are usage_q.c (buckets, fields, the
 * query), usage_agg.c (sums, JSON, CSV) and usage_pend.c (pending sums);
 * usage_flush.c writes them. A record is the request's counters in its two
 * buckets, kept as pending sums (usage_pend.h) and handed to the flusher or
 * written at once; the query is one HGETALL per bucket, pipelined. */
#include "fcgi/usage/usage.h"

#include "fcgi/usage/usage_agg.h"
#include "fcgi/usage/usage_flush.h"
#include "fcgi/usage/usage_pend.h"
#include "fcgi/usage/usage_q.h"
#include "shared/jget.h"
#include "shared/log.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define USAGE__HOURS_DEFAULT 48
#define USAGE__DAYS_DEFAULT 90
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

typedef struct usage__rec {
    usage_pend_t *t;
    const char *key;
    long long expire_at;
    char p[USAGE_ID_MAX + 1], a[USAGE_ID_MAX + 1];
} usage__rec_t;

static int usage__incr(usage__rec_t *rr, const char *metric, long long v)
{
    char f[USAGE_FIELD_MAX];
    if (v <= 0 || usage_field(f, sizeof(f), rr->p, rr->a, metric) < 0)
        return 0;
    return usage_pend_add(rr->t, rr->key, f, v, rr->expire_at);
}

/* Adds one bucket's counters. 0 or -ENOMEM. */
static int usage__bucket(usage__rec_t *rr, const reqinfo_t *ri, int is_mcp, svc_t *svc,
                         long long now, int gran)
{
    char key[256], b[USAGE_BUCKET_MAX], srv[USAGE_ID_MAX + 1], m[USAGE_ID_MAX + 3];
    long long w = gran == USAGE_DAY ? 86400 : 3600;
    int rc = 0;

    usage_bucket_name(now, gran, b);
    snprintf(key, sizeof(key), "%suse:%s:%s", reg_prefix(svc->reg), gran == USAGE_DAY ? "d" : "h",
             b);
    rr->key = key;
    /* the bucket lives for its own span plus the retention after it */
    rr->expire_at = usage_bucket_start(now, gran) + w + usage__retention(svc, gran) * w;
    if ((rc = usage__incr(rr, "req", 1)) < 0 ||
        (rc = usage__incr(rr, "err", ri->failed || (is_mcp && ri->tool_errors) ? 1 : 0)) < 0 ||
        (rc = usage__incr(rr, "pt", ri->prompt_tokens)) < 0 ||
        (rc = usage__incr(rr, "ct", ri->completion_tokens)) < 0 ||
        (rc = usage__incr(rr, "uus", ri->upstream_us)) < 0 ||
        (rc = usage__incr(rr, "tc", ri->tool_calls)) < 0)
        return rc;
    for (size_t i = 0; i < ri->ntools; i++) {
        usage_id_clean(ri->tools[i].server, srv);
        snprintf(m, sizeof(m), "t:%s", srv);
        if ((rc = usage__incr(rr, m, ri->tools[i].calls)) < 0)
            return rc;
    }
    return 0;
}

/* Writes the record now, on the thread's registry connection (CGI, flush_ms
 * 0, or no flusher). */
static void usage__write(const usage_pend_t *t, svc_t *svc)
{
    redisContext *c = reg_redis(svc->reg);
    char why[256];
    long long t0 = reqinfo_now_us();
    int rc;

    /* borrowed from the process's pool (a broken one was closed there and
     * is re-opened here, off the answer's path), given back below */
    if (!c) {
        usage_flush_drop(1, "Redis is unreachable");
        return;
    }
    rc = usage_flush_send(c, t, why, sizeof(why));
    if (rc < 0) {
        usage_flush_drop(1, why);
        if (rc == -EIO)
            reg_release_broken(svc->reg);   /* the pool closes it */
    } else
        log_debug("usage: %zu sums in one round trip, %lld us", usage_pend_count(t),
                  reqinfo_now_us() - t0);
    reg_release(svc->reg);
}

/* The thread's record table, emptied for this request: kept between
 * requests (freed when the thread ends), so a request of the usual shape
 * (the same key, assistant and buckets as the last) allocates nothing. */
static pthread_key_t usage__tkey;
static pthread_once_t usage__tonce = PTHREAD_ONCE_INIT;

static void usage__tfree(void *t)
{
    usage_pend_free(t);
}

static void usage__tinit(void)
{
    (void)pthread_key_create(&usage__tkey, usage__tfree);
}

static usage_pend_t *usage__table(void)
{
    usage_pend_t *t;

    pthread_once(&usage__tonce, usage__tinit);
    t = pthread_getspecific(usage__tkey);
    if (t && usage_pend_zero(t, 64) == 0)
        return t;
    usage_pend_free(t);
    t = usage_pend_new();
    if (pthread_setspecific(usage__tkey, t) != 0) {
        usage_pend_free(t);
        t = NULL;
    }
    return t;
}

void usage_after(const http_req_t *req, svc_t *svc)
{
    const reqinfo_t *ri = &req->info;
    usage__rec_t rr;
    long long now = (long long)time(NULL), ms;
    int is_mcp, rc;

    if (!usage__counts(ri, &is_mcp))
        return;
    if (!svc->reg) {
        usage_flush_drop(1, "Redis has never been reached");
        return;
    }
    memset(&rr, 0, sizeof(rr));
    if (!(rr.t = usage__table())) {
        usage_flush_drop(1, "out of memory");
        return;
    }
    usage_id_clean(ri->principal, rr.p);
    usage_id_clean(ri->assistant, rr.a);
    if (usage__bucket(&rr, ri, is_mcp, svc, now, USAGE_HOUR) < 0 ||
        usage__bucket(&rr, ri, is_mcp, svc, now, USAGE_DAY) < 0) {
        usage_flush_drop(1, "out of memory");
        goto out;
    }
    usage_pend_note_record(rr.t);
    ms = jget_int64(jget_obj(reg_settings(svc->reg), "usage"), "flush_ms",
                    USAGE_FLUSH_MS_DEFAULT);
    if (ms > 0)
        usage_flush_interval(ms > INT_MAX ? INT_MAX : (int)ms);
    rc = ms > 0 ? usage_flush_add(rr.t) : -ESRCH;
    if (rc == -ESRCH)
        usage__write(rr.t, svc);
    else if (rc < 0)
        usage_flush_drop(1, rc == -ENOSPC ? "too many usage counters waiting for Redis"
                                          : "out of memory");
out:
    /* rr.t is the thread's, kept for its next request; the main thread's
     * (CGI: one request, then exit, where no key destructor runs) is not */
    if (gettid() == getpid()) {
        usage_pend_free(rr.t);
        (void)pthread_setspecific(usage__tkey, NULL);
    }
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
