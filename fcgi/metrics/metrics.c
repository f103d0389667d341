/* metrics — families, recording and rendering (see metrics.h). */
#include "fcgi/metrics/metrics.h"

#include "fcgi/metrics/mstore.h"
#include "shared/mtext.h"
#include "shared/reg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-worker gauges (mstore's numbering). */
enum { METRICS__G_THREADS, METRICS__G_BUSY, METRICS__G_INFLIGHT };

/* Families, in exposition order. */
enum {
    F_REQUESTS, F_REFUSED, F_REQ_DUR, F_TTFT, F_TURN_DUR, F_UPSTREAM_ERR, F_TOKENS,
    F_TOOL_CALLS, F_TOOL_DUR, F_TOOL_ROUNDS, F_REDIS_RT, F_REDIS_ERR, F_REG_RELOADS,
    F__N
};

static const double metrics__secs[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                        2.5, 5, 10, 30, 60, 120, 300 };
static const double metrics__rounds[] = { 0, 1, 2, 3, 4, 6, 8, 12, 16 };
#define METRICS__NSECS ((int)(sizeof metrics__secs / sizeof metrics__secs[0]))
#define METRICS__NROUNDS ((int)(sizeof metrics__rounds / sizeof metrics__rounds[0]))

typedef struct metrics__fam {
    const char *name, *type, *help;
    int n;
    const char *labels[3];
    const double *bounds;   /* histograms: upper bounds in the unit; NULL: a counter */
    int nb;
    double scale;           /* recorded integer per unit (1e6: µs recorded, seconds shown) */
} metrics__fam_t;

static const metrics__fam_t metrics__fams[F__N] = {
    [F_REQUESTS] = { "aiproxy_requests_total", "counter",
        "Requests answered, by route pattern, assistant and status class.",
        3, { "route", "assistant", "status" }, NULL, 0, 1 },
    [F_REFUSED] = { "aiproxy_refused_total", "counter",
        "Requests refused before any upstream call, by status (401, 403, 404, 405, 413, 429, 503).",
        1, { "reason" }, NULL, 0, 1 },
    [F_REQ_DUR] = { "aiproxy_request_duration_seconds", "histogram",
        "Whole request time, accept to finish, by route pattern.",
        1, { "route" }, metrics__secs, METRICS__NSECS, 1e6 },
    [F_TTFT] = { "aiproxy_ttft_seconds", "histogram",
        "Streams: time to the first content byte, by assistant.",
        1, { "assistant" }, metrics__secs, METRICS__NSECS, 1e6 },
    [F_TURN_DUR] = { "aiproxy_upstream_turn_duration_seconds", "histogram",
        "Each upstream turn (one LLM call), by backend.",
        1, { "backend" }, metrics__secs, METRICS__NSECS, 1e6 },
    [F_UPSTREAM_ERR] = { "aiproxy_upstream_errors_total", "counter",
        "Upstream turns that failed, by backend and the status they failed with.",
        2, { "backend", "status" }, NULL, 0, 1 },
    [F_TOKENS] = { "aiproxy_tokens_total", "counter",
        "Tokens the upstream reported, by assistant, backend and type (prompt, completion).",
        3, { "assistant", "backend", "type" }, NULL, 0, 1 },
    [F_TOOL_CALLS] = { "aiproxy_tool_calls_total", "counter",
        "MCP tool calls of the agent loop, by server, tool and outcome "
        "(ok, tool_error, timeout, server_down).",
        3, { "server", "tool", "outcome" }, NULL, 0, 1 },
    [F_TOOL_DUR] = { "aiproxy_tool_call_duration_seconds", "histogram",
        "Each MCP tool call, by server.",
        1, { "server" }, metrics__secs, METRICS__NSECS, 1e6 },
    [F_TOOL_ROUNDS] = { "aiproxy_tool_rounds", "histogram",
        "Tool rounds per completion request.",
        0, { NULL }, metrics__rounds, METRICS__NROUNDS, 1 },
    [F_REDIS_RT] = { "aiproxy_redis_round_trips_total", "counter",
        "Round trips to Redis of the responders' registry connections.", 0, { NULL }, NULL, 0, 1 },
    [F_REDIS_ERR] = { "aiproxy_redis_errors_total", "counter",
        "Failed Redis commands or connects of the registry connections.", 0, { NULL }, NULL, 0, 1 },
    [F_REG_RELOADS] = { "aiproxy_registry_reloads_total", "counter",
        "Registry documents read from Redis (the version had moved).", 0, { NULL }, NULL, 0, 1 },
};

int metrics_init(void)
{
    return metrics_enabled() ? mstore_init() : 0;
}

/* Read each time (no setenv runs after start): CGI mode never calls
 * metrics_init, and still honours the setting. */
int metrics_enabled(void)
{
    const char *on = getenv("AIPROXY_METRICS");

    return !(on && strcmp(on, "0") == 0);
}

void metrics_worker(int slot)
{
    mstore_worker(slot);
}

void metrics_worker_gone(int slot)
{
    mstore_worker_gone(slot);
}

void metrics_threads(int d)
{
    mstore_gauge_add(METRICS__G_THREADS, d);
}

void metrics_busy(int d)
{
    mstore_gauge_add(METRICS__G_BUSY, d);
}

void metrics_in_flight(int d)
{
    mstore_gauge_add(METRICS__G_INFLIGHT, d);
}

static void metrics__count(int fam, const char *a, const char *b, const char *c, uint64_t v)
{
    const char *vals[3] = { a, b, c };

    mstore_add(mstore_row((unsigned)fam, vals, metrics__fams[fam].n), 0, v);
}

/* One observation of `raw` (in the family's recorded unit). */
static void metrics__observe(int fam, const char *a, long long raw)
{
    const metrics__fam_t *f = &metrics__fams[fam];
    const char *vals[1] = { a };
    uint64_t *row = mstore_row((unsigned)fam, vals, f->n);
    int i = 0;

    if (!row)
        return;
    if (raw < 0)
        raw = 0;
    while (i < f->nb && (double)raw > f->bounds[i] * f->scale)
        i++;
    mstore_add(row, i, 1);
    mstore_add(row, f->nb + 1, (uint64_t)raw);
}

static const char *const metrics__outcomes[] = {
    [AGENT_TOOL_OK] = "ok", [AGENT_TOOL_ERROR] = "tool_error",
    [AGENT_TOOL_TIMEOUT] = "timeout", [AGENT_TOOL_DOWN] = "server_down",
};

void metrics_event(const reqinfo_t *ri, const agent_event_t *ev)
{
    char st[16];

    if (!mstore_on())
        return;
    if (ev->kind == AGENT_EV_TURN_DONE) {
        metrics__observe(F_TURN_DUR, ri->backend, ev->us);
        if (ev->status != 200) {
            snprintf(st, sizeof st, "%d", ev->status);
            metrics__count(F_UPSTREAM_ERR, ri->backend, st, NULL, 1);
        }
    } else if (ev->kind == AGENT_EV_TOOL_DONE) {
        /* a name the model made up that no server has stays out of the labels */
        metrics_tool(ev->server, ev->server ? ev->tool : NULL,
                     ev->outcome == AGENT_TOOL_OK && ev->is_error ? AGENT_TOOL_ERROR : ev->outcome,
                     ev->ms * 1000);
    }
}

void metrics_tool(const char *server, const char *tool, int outcome, long long us)
{
    if (!mstore_on())
        return;
    if (outcome < AGENT_TOOL_OK || outcome > AGENT_TOOL_DOWN)
        outcome = AGENT_TOOL_ERROR;
    metrics__observe(F_TOOL_DUR, server, us);
    metrics__count(F_TOOL_CALLS, server, server ? tool : NULL, metrics__outcomes[outcome], 1);
}

/* The thread's registry connection: round trips, errors and reloads since
 * the last request, into the host's counters. */
static void metrics__redis(reg_t *reg)
{
    static __thread const reg_t *last_reg;
    static __thread reg_stats_t last;
    reg_stats_t now;

    if (!reg)
        return;
    if (reg != last_reg) {
        memset(&last, 0, sizeof last);
        last_reg = reg;
    }
    reg_stats(reg, &now);
    metrics__count(F_REDIS_RT, NULL, NULL, NULL, now.round_trips - last.round_trips);
    metrics__count(F_REDIS_ERR, NULL, NULL, NULL, now.errors - last.errors);
    metrics__count(F_REG_RELOADS, NULL, NULL, NULL, now.reloads - last.reloads);
    last = now;
}

static int metrics__refused(int status)
{
    return status == 401 || status == 403 || status == 404 || status == 405 || status == 413 ||
           status == 429 || status == 503;
}

void metrics_after(const http_req_t *req, svc_t *svc)
{
    const reqinfo_t *ri = &req->info;
    int status = req->client_gone ? 499 : req->status;
    const char *route = ri->route ? ri->route : "unmatched";
    char cls[8], st[16];

    if (!mstore_on())
        return;
    snprintf(cls, sizeof cls, "%dxx", status / 100 % 10);
    metrics__count(F_REQUESTS, route, ri->assistant, cls, 1);
    if (ri->upstream_turns == 0 && metrics__refused(status)) {
        snprintf(st, sizeof st, "%d", status);
        metrics__count(F_REFUSED, st, NULL, NULL, 1);
    }
    metrics__observe(F_REQ_DUR, route, reqinfo_now_us() - ri->t0_us);
    if (ri->stream && ri->ttft_us > 0)
        metrics__observe(F_TTFT, ri->assistant, ri->ttft_us);
    if (ri->upstream_turns > 0)
        metrics__observe(F_TOOL_ROUNDS, NULL, ri->tool_rounds);
    if (ri->prompt_tokens > 0)
        metrics__count(F_TOKENS, ri->assistant, ri->backend, "prompt",
                       (uint64_t)ri->prompt_tokens);
    if (ri->completion_tokens > 0)
        metrics__count(F_TOKENS, ri->assistant, ri->backend, "completion",
                       (uint64_t)ri->completion_tokens);
    metrics__redis(svc ? svc->reg : NULL);
}

struct metrics__out {
    buf_t *b;
    const metrics__fam_t *f;
    int rc;
};

/* One series of a family: its key split back into label values. */
static void metrics__series(void *ud, const char *key, const uint64_t *row)
{
    struct metrics__out *o = ud;
    const metrics__fam_t *f = o->f;
    char copy[MSTORE_KEY], v[32], *p = copy;
    const char *vals[3] = { "other", "other", "other" };
    uint64_t counts[MSTORE_VALS];

    /* a family without labels has one series: an overflow row beside it
     * would repeat it (its count is in aiproxy_metrics_series_dropped_total) */
    if (o->rc || (!key && f->n == 0))
        return;
    if (key) {
        snprintf(copy, sizeof copy, "%s", key);
        for (int i = 0; i < f->n; i++) {
            char *sep = strchr(p, 0x1f);
            if (sep)
                *sep = '\0';
            vals[i] = p;
            p = sep ? sep + 1 : p + strlen(p);
        }
    }
    if (!f->bounds) {
        o->rc = mtext_sample(o->b, f->name, f->labels, vals, f->n,
                             mtext_u64(mstore_get(row, 0), v, sizeof v));
        return;
    }
    for (int i = 0; i <= f->nb; i++)
        counts[i] = mstore_get(row, i);
    o->rc = mtext_histogram(o->b, f->name, f->labels, vals, f->n, f->bounds, f->nb, counts,
                            (double)mstore_get(row, f->nb + 1) / f->scale);
}

static int metrics__gauge(buf_t *b, const char *name, const char *help, long long v)
{
    char s[32];
    int rc = mtext_family(b, name, "gauge", help);

    snprintf(s, sizeof s, "%lld", v);
    return rc ? rc : mtext_sample(b, name, NULL, NULL, 0, s);
}

int metrics_render(buf_t *b, int redis_up, long long registry_version)
{
    struct metrics__out o = { b, NULL, 0 };
    char v[32];

    for (int i = 0; i < F__N && o.rc == 0; i++) {
        o.f = &metrics__fams[i];
        o.rc = mtext_family(b, o.f->name, o.f->type, o.f->help);
        if (o.rc == 0)
            mstore_each((unsigned)i, metrics__series, &o);
    }
    if (o.rc == 0)
        o.rc = metrics__gauge(b, "aiproxy_in_flight_requests",
                              "Completions admitted and running now (every worker).",
                              (long long)mstore_gauge_sum(METRICS__G_INFLIGHT));
    if (o.rc == 0)
        o.rc = metrics__gauge(b, "aiproxy_pool_threads_busy",
                              "Responder threads serving a request now (every worker).",
                              (long long)mstore_gauge_sum(METRICS__G_BUSY));
    if (o.rc == 0)
        o.rc = metrics__gauge(b, "aiproxy_pool_threads_total",
                              "Responder threads started (every worker).",
                              (long long)mstore_gauge_sum(METRICS__G_THREADS));
    if (o.rc == 0)
        o.rc = metrics__gauge(b, "aiproxy_redis_up",
                              "1 when the scraped responder reached Redis for this scrape.",
                              redis_up);
    if (o.rc == 0)
        o.rc = metrics__gauge(b, "aiproxy_registry_version",
                              "The registry version the scraped responder holds.",
                              registry_version);
    if (o.rc == 0)
        o.rc = mtext_family(b, "aiproxy_metrics_series_dropped_total", "counter",
                            "Observations counted in an \"other\" series: the series table "
                            "(CAP_METRICS_SERIES) was full or the label values too long.");
    if (o.rc == 0)
        o.rc = mtext_sample(b, "aiproxy_metrics_series_dropped_total", NULL, NULL, 0,
                            mtext_u64(mstore_dropped(), v, sizeof v));
    return o.rc;
}
