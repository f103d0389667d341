/* aiproxy-fcgi — the FastCGI responder (docs/responder.md). */
#include "fcgi/admin/admin_tools.h"
#include "agent/autostart.h"
#include "fcgi/auth/auth.h"
#include "fcgi/openai/openai.h"
#include "fcgi/routes.h"
#include "fcgi/metrics/metrics.h"
#include "fcgi/core/complete.h"
#include "fcgi/core/cgi.h"
#include "fcgi/core/pool.h"
#include "shared/cfg.h"
#include "shared/log.h"
#include "shared/otel.h"
#include "shared/rconn.h"
#include "shared/reg.h"
#include "shared/caps.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcgiapp.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAIN_BACKLOG 1024
#define MAIN_DEFAULT_QUEUE_WAIT_MS 1000L
#ifdef __SANITIZE_ADDRESS__
#define MAIN_STACK (1024u << 10)   /* ASan's redzones need room */
#else
#define MAIN_STACK (256u << 10)
#endif

static void main__usage(FILE *f)
{
    fprintf(f,
            "usage: aiproxy-fcgi [-c FILE [--reseed] [--check]] [-s ADDR] [-w N] [-t N]\n"
            "                    [--log FILE] [--pidfile FILE]\n"
            "  -c, --config FILE  seed the registry from FILE when Redis holds none (at start,\n"
            "                     and again whenever Redis has lost it)\n"
            "      --reseed       overwrite the registry in Redis from --config\n"
            "      --check        validate --config, print \"config OK\" or the error\n"
            "  -s, --socket ADDR  unix:/path, tcp:HOST:PORT, /path or HOST:PORT;\n"
            "                     default: the inherited FastCGI socket on fd 0\n"
            "  -w, --workers N    worker processes (default 1; 0 = no master process)\n"
            "  -t, --threads N    threads per worker (default 16)\n"
            "      --log FILE     log there instead of stderr (SIGHUP re-opens it)\n"
            "      --pidfile FILE write the master's pid there\n"
            "      --socket-mode MODE  octal permissions of a unix -s socket (e.g. 0660, so\n"
            "                     the web server's group can connect whatever the umask)\n"
            "      --reserve N    threads per worker kept for short requests (/health,\n"
            "                     /v1/models, /admin): completions get the others\n"
            "                     (default threads/8; env AIPROXY_RESERVE_THREADS)\n"
            "      --queue-wait MS  how long a completion waits for a thread when the\n"
            "                     others are busy, then 503 overloaded (default 1000;\n"
            "                     env AIPROXY_QUEUE_WAIT_MS)\n"
            "Environment: AIPROXY_STREAM_KEEPALIVE_MS (0..600000, default 5000, 0 = off):\n"
            "  a stream idle that long gets a keep-alive (assistants may set their own\n"
            "  stream_keepalive_ms).\n"
            "  AIPROXY_IDLE_EXIT_S (0..604800, default 0 = never; needs -w 0): exit after\n"
            "  that many seconds without a request; with a unix -s socket, only once\n"
            "  SOCKET.lock can be locked (aiproxy-cgi holds it shared per request), and\n"
            "  the socket is removed first.\n");
}

static int main__int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Opens the listen socket named by -s; libfcgi's FCGX_OpenSocket takes a
 * path or "host:port". */
static int main__listen(const char *addr, long mode, char *err, size_t errlen)
{
    const char *a = addr;
    int fd, is_unix = 0;

    if (strncmp(a, "unix:", 5) == 0) {
        a += 5;
        is_unix = 1;
    } else if (strncmp(a, "tcp:", 4) == 0) {
        a += 4;
    } else if (a[0] == '/') {
        is_unix = 1;
    }
    if (!*a) {
        snprintf(err, errlen, "--socket %s: empty address", addr);
        return -EINVAL;
    }
    fd = FCGX_OpenSocket(a, MAIN_BACKLOG);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno ? errno : EINVAL));
        return -EADDRNOTAVAIL;
    }
    if (mode >= 0 && is_unix && chmod(a, (mode_t)mode) != 0) {
        snprintf(err, errlen, "--socket-mode %lo on %s: %s", (unsigned long)mode, a, strerror(errno));
        close(fd);
        return -EPERM;
    }
    if (mode >= 0 && !is_unix) {
        snprintf(err, errlen, "--socket-mode applies to unix sockets only, not %s", addr);
        close(fd);
        return -EINVAL;
    }
    return fd;
}

/* Checks that Redis answers and seeds it from the config when asked to. */
static int main__registry(const char *url, const char *prefix, json_object *doc, int reseed)
{
    reg_t *reg = NULL;
    char err[512];
    int seeded = 0, rc = -1, r;

    if (reg_open(&reg, url, prefix, err, sizeof(err)) != 0) {
        fprintf(stderr, "aiproxy-fcgi: %s\n", err);
        reg = NULL;
        goto out;
    }
    if (doc && reg_seed(reg, doc, reseed, &seeded) != 0) {
        fprintf(stderr, "aiproxy-fcgi: cannot seed the registry: %s\n", reg_errstr(reg));
        goto out;
    }
    r = reg_refresh(reg);
    if (r == -ENOENT) {
        log_warn("Redis holds no registry yet: requests get 503 until one is seeded (-c FILE)");
    } else if (r != 0) {
        fprintf(stderr, "aiproxy-fcgi: cannot read the registry: %s\n", reg_errstr(reg));
        goto out;
    } else {
        log_info("registry version %lld%s", reg_version(reg),
                 seeded ? " (seeded from the config)" : "");
        auth_log_startup(reg);
    }
    rc = 0;
out:
    reg_close(reg);
    return rc;
}

/* Plain CGI (cgi.h): one request, then exit. The command line is not read:
 * a CGI server turns a query string without '=' into arguments
 * (GET /aiproxy.cgi?-c/etc/passwd), so everything comes from the
 * environment the web server (SetEnv/PassEnv) or a wrapper script passes:
 * AIPROXY_CONFIG seeds a registry Redis does not hold (read only then),
 * REDIS_URL, AIPROXY_REDIS_PREFIX, AIPROXY_MAX_BODY, AIPROXY_LOG_LEVEL
 * (default warn: the web server's error log gets no line per request).
 * Whatever fails is answered in OpenAI's shape; the detail goes to stderr,
 * the error log. Returns the process's exit code. */
static int main__cgi(void)
{
    const char *config = getenv("AIPROXY_CONFIG"), *env = getenv("AIPROXY_MAX_BODY");
    long max_body = CAP_BODY_DEFAULT;
    serve_cfg_t sc;
    char err[512];
    int rc = 1;

    log_init("aiproxy-fcgi", LOG_LVL_WARN);
    if (otel_init("aiproxy-fcgi", err, sizeof err) < 0)
        log_error("%s: traces off", err);   /* the request is served all the same */
    if (env && *env && main__int(env, 1, CAP_BODY_SETTING, &max_body) != 0) {
        log_error("AIPROXY_MAX_BODY=%s: want a byte count 1..%ld", env, CAP_BODY_SETTING);
        return cgi_send_error(500, "misconfigured", "the gateway is misconfigured "
                              "(AIPROXY_MAX_BODY); the web server's error log says how") ? 1 : 0;
    }
    env = getenv("AIPROXY_STREAM_KEEPALIVE_MS");
    if (env && *env) {
        long ka;
        if (main__int(env, 0, COMPLETE_KEEPALIVE_MAX_MS, &ka) != 0) {
            log_error("AIPROXY_STREAM_KEEPALIVE_MS=%s: want 0..%d ms", env,
                      COMPLETE_KEEPALIVE_MAX_MS);
            return cgi_send_error(500, "misconfigured", "the gateway is misconfigured "
                                  "(AIPROXY_STREAM_KEEPALIVE_MS); the web server's error log "
                                  "says how") ? 1 : 0;
        }
        complete_set_keepalive_ms(ka);
    }
    /* the broker on demand: in CGI mode from the environment only
     * (AIPROXY_BROKER_AUTOSTART=1 ...), since the config is rarely read;
     * the broker it starts gets -c AIPROXY_CONFIG */
    if (autostart_setup(NULL, config && *config ? config : NULL, err, sizeof err) != 0) {
        log_error("%s", err);
        return cgi_send_error(500, "misconfigured", "the gateway is misconfigured (the "
                              "broker on demand); the web server's error log says how") ? 1 : 0;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return cgi_send_error(500, NULL, "the gateway cannot start its HTTP client") ? 1 : 0;
    models_set_created((long long)time(NULL));
    memset(&sc, 0, sizeof(sc));
    sc.max_body = (size_t)max_body;
    sc.redis_url = rconn_url();
    sc.prefix = rconn_prefix();
    /* parsed only when Redis holds no registry (serve.c): most requests
     * never read it */
    sc.seed_path = config && *config ? config : NULL;
    sc.routes = routes_table;
    sc.gate = routes_gate;
    sc.end = routes_end;
    sc.after = routes_after;
    sc.path_info = 1;
    (void)otel_start();
    rc = cgi_run(&sc);
    otel_stop(1000);
    curl_global_cleanup();
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "reseed", no_argument, NULL, 'R' },
        { "check", no_argument, NULL, 'C' },
        { "socket", required_argument, NULL, 's' },
        { "workers", required_argument, NULL, 'w' },
        { "threads", required_argument, NULL, 't' },
        { "log", required_argument, NULL, 'L' },
        { "pidfile", required_argument, NULL, 'P' },
        { "socket-mode", required_argument, NULL, 'M' },
        { "reserve", required_argument, NULL, 'E' },
        { "queue-wait", required_argument, NULL, 'Q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = NULL, *sock = NULL, *pidfile = NULL, *logpath = NULL, *env;
    char idle_lock[1024];
    long idle_exit = 0;
    int reseed = 0, check = 0, c, rc = 1, fd = 0, curl_ok = 0;
    long workers = 1, threads = 16, max_body = CAP_BODY_DEFAULT, sock_mode = -1;
    const char *reserve_s = getenv("AIPROXY_RESERVE_THREADS");
    const char *wait_s = getenv("AIPROXY_QUEUE_WAIT_MS");
    long reserve = -1, queue_wait = MAIN_DEFAULT_QUEUE_WAIT_MS;
    json_object *doc = NULL;
    char *seed_json = NULL;
    pool_cfg_t pc;
    char err[1024];

    if (cgi_detect())
        return main__cgi();
    while ((c = getopt_long(argc, argv, "c:s:w:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'R': reseed = 1; break;
        case 'C': check = 1; break;
        case 's': sock = optarg; break;
        case 'w':
            if (main__int(optarg, 0, 256, &workers) != 0) {
                fprintf(stderr, "aiproxy-fcgi: --workers %s: want 0..256\n", optarg);
                goto out;
            }
            break;
        case 't':
            if (main__int(optarg, 1, CAP_THREADS, &threads) != 0) {
                fprintf(stderr, "aiproxy-fcgi: --threads %s: want 1..%d\n", optarg, CAP_THREADS);
                goto out;
            }
            break;
        case 'L': logpath = optarg; break;
        case 'P': pidfile = optarg; break;
        case 'M': {
            char *end;
            errno = 0;
            sock_mode = strtol(optarg, &end, 8);
            if (errno || end == optarg || *end || sock_mode < 0 || sock_mode > 0777) {
                fprintf(stderr, "aiproxy-fcgi: --socket-mode %s: want octal permissions like 0660\n",
                        optarg);
                goto out;
            }
            break;
        }
        case 'E': reserve_s = optarg; break;
        case 'Q': wait_s = optarg; break;
        case 'h': main__usage(stdout); rc = 0; goto out;
        default: main__usage(stderr); goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "aiproxy-fcgi: unexpected argument '%s'\n", argv[optind]);
        goto out;
    }
    if ((check || reseed) && !config) {
        fprintf(stderr, "aiproxy-fcgi: %s needs --config FILE\n", check ? "--check" : "--reseed");
        goto out;
    }
    if (config && cfg_load_file(config, &doc, err, sizeof(err)) != 0) {
        fprintf(stderr, check ? "%s\n" : "aiproxy-fcgi: %s\n", err);
        goto out;
    }
    /* the tool cap, with the catalogs Redis holds (--check also asks the
     * broker); before the seed, so a refused file is never written */
    if (config && admin_tools_check_doc(doc, config, rconn_url(), rconn_prefix(), check,
                                        check ? stdout : NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, check ? "%s\n" : "aiproxy-fcgi: %s\n", err);
        goto out;
    }
    if (check) {
        printf("config OK\n");
        rc = 0;
        goto out;
    }
    env = getenv("AIPROXY_MAX_BODY");
    if (env && main__int(env, 1, CAP_BODY_SETTING, &max_body) != 0) {
        fprintf(stderr, "aiproxy-fcgi: AIPROXY_MAX_BODY=%s: want a byte count 1..%ld\n", env,
                CAP_BODY_SETTING);
        goto out;
    }
    if (reserve_s && *reserve_s && main__int(reserve_s, 0, CAP_THREADS, &reserve) != 0) {
        fprintf(stderr, "aiproxy-fcgi: --reserve / AIPROXY_RESERVE_THREADS=%s: want 0..%d\n",
                reserve_s, CAP_THREADS);
        goto out;
    }
    if (wait_s && *wait_s && main__int(wait_s, 0, 600000, &queue_wait) != 0) {
        fprintf(stderr, "aiproxy-fcgi: --queue-wait / AIPROXY_QUEUE_WAIT_MS=%s: want 0..600000\n",
                wait_s);
        goto out;
    }
    env = getenv("AIPROXY_STREAM_KEEPALIVE_MS");
    if (env && *env) {
        long ka;
        if (main__int(env, 0, COMPLETE_KEEPALIVE_MAX_MS, &ka) != 0) {
            fprintf(stderr, "aiproxy-fcgi: AIPROXY_STREAM_KEEPALIVE_MS=%s: want 0..%d ms "
                    "(0 = no keep-alives)\n", env, COMPLETE_KEEPALIVE_MAX_MS);
            goto out;
        }
        complete_set_keepalive_ms(ka);
    }
    env = getenv("AIPROXY_IDLE_EXIT_S");
    if (env && *env && main__int(env, 0, 604800, &idle_exit) != 0) {
        fprintf(stderr, "aiproxy-fcgi: AIPROXY_IDLE_EXIT_S=%s: want 0..604800 seconds "
                "(0 = never)\n", env);
        goto out;
    }
    if (idle_exit > 0 && workers != 0) {
        fprintf(stderr, "aiproxy-fcgi: AIPROXY_IDLE_EXIT_S needs -w 0 (one process: a master "
                "would replace the worker that left)\n");
        goto out;
    }
    log_init("aiproxy-fcgi", LOG_LVL_INFO);
    /* traces (docs/traces.md): read here, exported by each worker */
    c = otel_init("aiproxy-fcgi", err, sizeof(err));
    if (c < 0) {
        fprintf(stderr, "aiproxy-fcgi: %s\n", err);
        goto out;
    }
    if (c > 0)
        log_info("traces: on, exported with OTLP/HTTP JSON (OTEL_EXPORTER_OTLP_*)");
    memset(&pc, 0, sizeof(pc));
    pc.log_path = logpath;
    if (pc.log_path && log_reopen(pc.log_path) != 0) {
        fprintf(stderr, "aiproxy-fcgi: cannot open log file %s\n", pc.log_path);
        goto out;
    }
    if (autostart_setup(doc ? json_object_object_get(doc, "broker") : NULL, config, err,
                        sizeof(err)) != 0) {
        fprintf(stderr, "aiproxy-fcgi: %s\n", err);
        goto out;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "aiproxy-fcgi: curl_global_init failed\n");
        goto out;
    }
    curl_ok = 1;
    if (FCGX_Init() != 0) {
        fprintf(stderr, "aiproxy-fcgi: FCGX_Init failed\n");
        goto out;
    }
    if (main__registry(rconn_url(), rconn_prefix(), doc, reseed) != 0)
        goto out;
    if (doc) {
        /* kept as text: each thread parses its own copy in the rare case the
         * registry vanished (json-c objects are not shared between threads) */
        seed_json = strdup(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
        if (!seed_json) {
            fprintf(stderr, "aiproxy-fcgi: out of memory\n");
            goto out;
        }
    }
    json_object_put(doc);
    doc = NULL;
    if (sock) {
        fd = main__listen(sock, sock_mode, err, sizeof(err));
        if (fd < 0) {
            fprintf(stderr, "aiproxy-fcgi: %s\n", err);
            goto out;
        }
    } else {
        int acc = 0;
        socklen_t len = sizeof(acc);
        if (getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) != 0 || !acc) {
            fprintf(stderr, "aiproxy-fcgi: no --socket given and fd 0 is not a listening "
                            "socket (run it from a web server, as FastCGI or as CGI, or pass "
                            "-s ADDR)\n");
            goto out;
        }
    }
    if (pidfile) {
        FILE *f = fopen(pidfile, "w");
        if (!f) {
            fprintf(stderr, "aiproxy-fcgi: cannot write pidfile %s: %s\n", pidfile,
                    strerror(errno));
            goto out;
        }
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
    }
    models_set_created((long long)time(NULL));
    pc.listen_fd = fd;
    pc.workers = (int)workers;
    pc.threads = (int)threads;
    pc.stack_size = MAIN_STACK;
    pc.reserve = (int)(reserve >= 0 ? reserve : threads / 8);
    pc.queue_wait_ms = (int)queue_wait;
    pc.serve.max_body = (size_t)max_body;
    pc.serve.redis_url = rconn_url();
    pc.serve.prefix = rconn_prefix();
    pc.serve.seed_json = seed_json;
    pc.serve.routes = routes_table;
    pc.serve.gate = routes_gate;
    pc.serve.end = routes_end;
    pc.serve.after = routes_after;
    env = getenv("AIPROXY_PATH_INFO");
    pc.serve.path_info = env && strcmp(env, "1") == 0;
    pc.idle_exit_s = (int)idle_exit;
    if (idle_exit > 0 && sock && (strncmp(sock, "unix:", 5) == 0 || sock[0] == '/')) {
        const char *path = sock[0] == '/' ? sock : sock + 5;
        int n = snprintf(idle_lock, sizeof(idle_lock), "%s.lock", path);
        if (n > 0 && (size_t)n < sizeof(idle_lock)) {
            pc.idle_lock = idle_lock;
            pc.idle_unlink = path;
        }
    }
    /* before the fork: every worker adds into the same host-wide segment */
    if (metrics_init() != 0)
        log_warn("metrics: cannot map the shared segment; GET /metrics shows no counts");
    log_info("listening on %s: %ld worker%s x %ld threads, body cap %ld bytes",
             sock ? sock : "inherited fd 0", workers, workers == 1 ? "" : "s", threads, max_body);
    rc = workers == 0 ? pool_worker_run(&pc) : pool_master_run(&pc);
    if (pidfile)
        unlink(pidfile);
out:
    json_object_put(doc);
    free(seed_json);
    if (curl_ok)
        curl_global_cleanup();
    return rc;
}
