/* mcp-broker — holds the MCP sessions for every responder (docs/broker-protocol.md).
 *
 *   mcp-broker [-c config.yaml] [--reseed] [--log FILE] [--idle-exit SECONDS]
 *              [--metrics HOST:PORT]
 *
 * With -c the registry is seeded from the file the way the responder does it
 * (only when Redis holds none, or always with --reseed), and written back from
 * it whenever Redis turns out to have lost it (restarted empty). SIGTERM/SIGINT stop it
 * cleanly (sessions closed, children reaped, leases released, exit 0); SIGHUP
 * reopens the --log file. --idle-exit N (or AIPROXY_BROKER_IDLE_EXIT_S for a
 * broker a responder started on demand, with AIPROXY_BROKER_TOKEN): a clean
 * stop after N seconds without a call (ondemand.h). --metrics (or
 * AIPROXY_BROKER_METRICS): Prometheus metrics on GET http://HOST:PORT/metrics
 * (bmetrics.h). */
#include "mcp-broker/bmetrics.h"
#include "mcp-broker/broker.h"
#include "mcp-broker/bsched.h"
#include "mcp-broker/oauth.h"
#include "mcp-broker/ondemand.h"
#include "shared/cfg.h"
#include "shared/log.h"
#include "shared/otel.h"
#include "shared/rconn.h"
#include "shared/reg.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct app {
    uv_loop_t *loop;
    broker_t *broker;
    bmetrics_t *metrics;      /* NULL without --metrics */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t deadline;      /* bounds a clean shutdown */
    int stopping;
    const char *log_path;
} app_t;

/* A clean stop closes sessions (a stdio child gets 2 s, then SIGTERM, then
 * SIGKILL) and says goodbye to Redis; this bounds the whole of it, so a
 * peer that never answers cannot keep systemd or make run waiting. */
#define APP_STOP_DEADLINE_MS 8000

static void app_usage(void)
{
    fprintf(stderr, "usage: mcp-broker [-c config.yaml] [--reseed] [--log FILE] [--idle-exit SECONDS]\n"
                    "                  [--metrics HOST:PORT]\n");
}

/* Seeds the registry from `config` (always with reseed, else only when Redis
 * holds none) and leaves the document as JSON text in *seed_json (malloc'd),
 * for the broker to write back should Redis lose the registry later. */
static int app_seed(const char *config, int reseed, char **seed_json)
{
    json_object *doc = NULL;
    reg_t *reg = NULL;
    char err[1024];
    int seeded = 0, rc;

    rc = cfg_load_file(config, &doc, err, sizeof(err));
    if (rc) {
        log_error("%s", err);
        goto out;
    }
    rc = reg_open(&reg, rconn_url(), rconn_prefix(), err, sizeof(err));
    if (rc) {
        log_error("%s", err);
        goto out;
    }
    rc = reg_seed(reg, doc, reseed, &seeded);
    if (rc) {
        log_error("cannot seed the registry from %s: %s", config, reg_errstr(reg));
        goto out;
    }
    log_info("%s", seeded ? "registry seeded from the config file" : "registry already in Redis: config file not applied (use --reseed)");
    *seed_json = strdup(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
    if (!*seed_json) {
        log_error("out of memory");
        rc = -ENOMEM;
    }
out:
    if (reg)
        reg_close(reg);
    json_object_put(doc);
    return rc;
}

static void app_closed(uv_handle_t *h)
{
    (void)h;
}

static void app_stopped(void *ud)
{
    app_t *a = ud;

    log_info("stopped");
    uv_close((uv_handle_t *)&a->deadline, app_closed);
    uv_close((uv_handle_t *)&a->sig_term, app_closed);
    uv_close((uv_handle_t *)&a->sig_int, app_closed);
    uv_close((uv_handle_t *)&a->sig_hup, app_closed);
}

static void app_on_deadline(uv_timer_t *t)
{
    (void)t;
    log_error("stopping took more than %d ms (an MCP session or Redis did not let go): exiting "
              "without finishing", APP_STOP_DEADLINE_MS);
    _exit(1);
}

/* The clean stop, bounded by APP_STOP_DEADLINE_MS. */
static void app_stop(app_t *a)
{
    a->stopping = 1;
    uv_timer_start(&a->deadline, app_on_deadline, APP_STOP_DEADLINE_MS, 0);
    bmetrics_stop(a->metrics);
    a->metrics = NULL;
    broker_stop(a->broker, app_stopped, a);
}

static void app_on_signal(uv_signal_t *h, int sig)
{
    app_t *a = h->data;

    if (sig == SIGHUP) {
        if (a->log_path && log_reopen(a->log_path) != 0)
            log_error("cannot reopen the log file %s", a->log_path);
        return;
    }
    if (a->stopping) {
        log_warn("signal %d while stopping: exiting now", sig);
        _exit(1);
    }
    log_info("received signal %d: stopping", sig);
    app_stop(a);
}

/* Idle (or one broker too many): the broker has stopped listening already. */
static void app_on_idle(void *ud)
{
    app_t *a = ud;

    if (!a->stopping)
        app_stop(a);
}

/* The token a responder handed down (hex, as agent/autostart.c makes it);
 * anything else is ignored with a warning. */
static const char *app_token(void)
{
    const char *t = getenv(ONDEMAND_TOKEN_ENV);

    if (!t || !*t)
        return NULL;
    if (strlen(t) > 64 || strspn(t, "0123456789abcdef") != strlen(t)) {
        log_warn("%s is not a token of ours: ignored", ONDEMAND_TOKEN_ENV);
        return NULL;
    }
    return t;
}

/* The scheduler hint (bsched.h), before any thread or MCP server starts,
 * so that they inherit it. A bad value or a refusal is only a warning. */
static void app_sched(void)
{
    unsigned us;
    int rc;

    if (bsched_parse(getenv(BSCHED_ENV), &us) != 0)
        log_warn("%s=%s: want 0 or %u..%u µs; using %u", BSCHED_ENV, getenv(BSCHED_ENV),
                 BSCHED_MIN_US, BSCHED_MAX_US, us);
    if ((rc = bsched_apply(us)) != 0)
        log_warn("cannot set the scheduler's request size to %u µs: %s (running with the "
                 "kernel's default)", us, strerror(-rc));
}

int main(int argc, char **argv)
{
    app_t a;
    const char *config = NULL, *idle_s = NULL, *token, *metrics = getenv("AIPROXY_BROKER_METRICS");
    int reseed = 0, rc = 1, idle = 0;
    char err[1024];
    char *seed_json = NULL;

    memset(&a, 0, sizeof(a));
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(argv[i], "--metrics") == 0 && i + 1 < argc) {
            metrics = argv[++i];
        } else if (strcmp(argv[i], "--reseed") == 0) {
            reseed = 1;
        } else if (strcmp(argv[i], "--log") == 0 && i + 1 < argc) {
            a.log_path = argv[++i];
        } else if (strcmp(argv[i], "--idle-exit") == 0 && i + 1 < argc) {
            idle_s = argv[++i];
            if (ondemand_parse_idle(idle_s, &idle) != 0) {
                fprintf(stderr, "mcp-broker: --idle-exit %s: want 0..%d seconds\n", idle_s,
                        ONDEMAND_IDLE_MAX_S);
                return 2;
            }
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            app_usage();
            return 0;
        } else {
            app_usage();
            return 2;
        }
    }
    log_init("mcp-broker", LOG_LVL_INFO);
    if (a.log_path && log_reopen(a.log_path) != 0) {
        fprintf(stderr, "mcp-broker: cannot open the log file %s: %s\n", a.log_path, strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    app_sched();
    /* traces (docs/traces.md): the tool calls' spans, from a thread
     * of their own beside the loop */
    switch (otel_init("mcp-broker", err, sizeof(err))) {
    case 0:
        break;
    case 1:
        curl_global_init(CURL_GLOBAL_DEFAULT);
        if (otel_start() == 0)
            log_info("traces: on, exported with OTLP/HTTP JSON (OTEL_EXPORTER_OTLP_*)");
        break;
    default:
        log_error("%s", err);
        return 1;
    }
    token = app_token();
    if (!idle_s && token && getenv(ONDEMAND_IDLE_ENV) &&
        ondemand_parse_idle(getenv(ONDEMAND_IDLE_ENV), &idle) != 0) {
        log_error("%s=%s: want 0..%d seconds", ONDEMAND_IDLE_ENV, getenv(ONDEMAND_IDLE_ENV),
                  ONDEMAND_IDLE_MAX_S);
        goto out;
    }
    if (config && app_seed(config, reseed, &seed_json) != 0)
        goto out;

    a.loop = uv_default_loop();
    oauth_cache_enable(1);   /* OAuth tokens shared by every broker through Redis */
    a.broker = broker_new(a.loop, rconn_url(), rconn_prefix(), err, sizeof(err));
    if (!a.broker) {
        log_error("%s", err);
        goto out;
    }
    broker_set_seed(a.broker, seed_json);
    if (metrics && *metrics && !(a.metrics = bmetrics_start(a.loop, a.broker, metrics, err, sizeof(err)))) {
        log_error("%s", err);
        goto out;
    }
    broker_set_ondemand(a.broker, token, idle, app_on_idle, &a);
    uv_timer_init(a.loop, &a.deadline);
    uv_signal_init(a.loop, &a.sig_term);
    uv_signal_init(a.loop, &a.sig_int);
    uv_signal_init(a.loop, &a.sig_hup);
    a.sig_term.data = a.sig_int.data = a.sig_hup.data = &a;
    uv_signal_start(&a.sig_term, app_on_signal, SIGTERM);
    uv_signal_start(&a.sig_int, app_on_signal, SIGINT);
    uv_signal_start(&a.sig_hup, app_on_signal, SIGHUP);
    uv_run(a.loop, UV_RUN_DEFAULT);
    rc = 0;
out:
    broker_free(a.broker);
    otel_stop(2000);
    if (a.loop)
        uv_loop_close(a.loop);
    free(seed_json);
    return rc;
}
