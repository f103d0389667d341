/* autostart — the MCP broker on demand (see autostart.h).
 *
 * Everything a start needs (the command's path, argv, the environment) is
 * built before fork(): a responder has threads, and in the children of a
 * threaded process only async-signal-safe calls are allowed, so after fork
 * there are system calls only. The first child makes a new session and forks
 * the broker, then exits (reaped here at once): the broker is nobody's child
 * in the responder, outlives the request and the responder, and never
 * becomes a zombie there. A close-on-exec pipe tells the responder the
 * broker's pid and whether exec worked. */
#include "agent/autostart.h"
#include "shared/cfg.h"
#include "shared/log.h"
#include "shared/rid.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define AUTOSTART_RETRY_MS 250     /* how often a waiting request looks at the lock */

extern char **environ;

static autostart_cfg_t autostart__cfg;   /* written once by autostart_setup */

const autostart_cfg_t *autostart_cfg(void)
{
    return &autostart__cfg;
}

/* "1"/"true"/"yes"/"on" → 1, "0"/"false"/"no"/"off"/"" → 0, else -1. */
static int autostart__flag(const char *v)
{
    static const char *const on[] = {"1", "true", "yes", "on", NULL};
    static const char *const off[] = {"0", "false", "no", "off", "", NULL};

    for (const char *const *p = on; *p; p++)
        if (strcasecmp(v, *p) == 0)
            return 1;
    for (const char *const *p = off; *p; p++)
        if (strcasecmp(v, *p) == 0)
            return 0;
    return -1;
}

/* The directory of `path` (no trailing slash) into out; "." when it has none. */
static void autostart__dirname(const char *path, char *out, size_t n)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        snprintf(out, n, ".");
    else if (slash == path)
        snprintf(out, n, "/");
    else
        snprintf(out, n, "%.*s", (int)(slash - path), path);
}

static int autostart__copy(char *dst, size_t n, const char *src, const char *what, char *err,
                           size_t errlen)
{
    if (snprintf(dst, n, "%s", src) >= (int)n) {
        snprintf(err, errlen, "broker.%s: longer than %zu bytes", what, n - 1);
        return -EINVAL;
    }
    return 0;
}

int autostart_setup(json_object *broker, const char *config_path, char *err, size_t errlen)
{
    autostart_cfg_t *c = &autostart__cfg;
    json_object *v = NULL;
    char conf_abs[PATH_MAX] = "", dir[PATH_MAX];
    const char *env;
    int rc = -EINVAL, custom = 0;

    memset(c, 0, sizeof(*c));
    c->start_timeout_ms = CFG_BROKER_START_TIMEOUT_S * 1000;
    if (broker && json_object_object_get_ex(broker, "autostart", &v))
        c->enabled = json_object_get_boolean(v);
    if (broker && json_object_object_get_ex(broker, "idle_exit_s", &v))
        c->idle_exit_s = json_object_get_int(v);
    if (broker && json_object_object_get_ex(broker, "start_timeout", &v))
        c->start_timeout_ms = json_object_get_int(v) * 1000;
    if (broker && json_object_object_get_ex(broker, "command", &v) && json_object_get_string_len(v)) {
        custom = 1;
        if (autostart__copy(c->command, sizeof c->command, json_object_get_string(v), "command", err,
                            errlen))
            goto out;
    }
    if (broker && json_object_object_get_ex(broker, "log", &v) && json_object_get_string_len(v) &&
        autostart__copy(c->log, sizeof c->log, json_object_get_string(v), "log", err, errlen))
        goto out;
    if (broker && custom && json_object_object_get_ex(broker, "args", &v)) {
        size_t n = json_object_array_length(v);
        if (n > AUTOSTART_ARGV_MAX - 2) {
            snprintf(err, errlen, "broker.args: more than %d arguments", AUTOSTART_ARGV_MAX - 2);
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            if (autostart__copy(c->args[c->nargs++], sizeof c->args[0],
                                json_object_get_string(json_object_array_get_idx(v, i)), "args",
                                err, errlen))
                goto out;
    }
    if ((env = getenv("AIPROXY_BROKER_AUTOSTART")) != NULL) {
        int f = autostart__flag(env);
        if (f < 0) {
            snprintf(err, errlen, "AIPROXY_BROKER_AUTOSTART=%s: want 1 or 0", env);
            goto out;
        }
        c->enabled = f;
    }
    if ((env = getenv("AIPROXY_BROKER_IDLE_EXIT_S")) != NULL && *env) {
        char *end;
        long s;
        errno = 0;
        s = strtol(env, &end, 10);
        if (errno || *end || s < 0 || s > CFG_BROKER_IDLE_MAX_S) {
            snprintf(err, errlen, "AIPROXY_BROKER_IDLE_EXIT_S=%s: want 0..%d seconds", env,
                     CFG_BROKER_IDLE_MAX_S);
            goto out;
        }
        c->idle_exit_s = (int)s;
    }
    if ((env = getenv("AIPROXY_BROKER_COMMAND")) != NULL && *env) {
        custom = 1;
        c->nargs = 0;
        if (autostart__copy(c->command, sizeof c->command, env, "command", err, errlen))
            goto out;
    }
    if ((env = getenv("AIPROXY_BROKER_LOG")) != NULL && *env &&
        autostart__copy(c->log, sizeof c->log, env, "log", err, errlen))
        goto out;
    if (config_path && *config_path && !realpath(config_path, conf_abs)) {
        /* only the broker it would start needs the file: a CGI process reads
         * it only to seed an empty Redis, and must not fail without it */
        if (c->enabled) {
            snprintf(err, errlen, "%s: %s", config_path, strerror(errno));
            goto out;
        }
        conf_abs[0] = '\0';
    }
    if (!custom) {
        /* the mcp-broker installed beside this program, on the same config */
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n <= 0) {
            snprintf(err, errlen, "broker.command: cannot find this program (/proc/self/exe: %s): "
                     "set broker.command", strerror(errno));
            goto out;
        }
        self[n] = '\0';
        autostart__dirname(self, dir, sizeof dir);
        if (snprintf(c->command, sizeof c->command, "%s/mcp-broker", dir) >= (int)sizeof c->command) {
            snprintf(err, errlen, "broker.command: the path of this program is too long");
            goto out;
        }
        if (conf_abs[0]) {
            snprintf(c->args[c->nargs++], sizeof c->args[0], "-c");
            if (autostart__copy(c->args[c->nargs++], sizeof c->args[0], conf_abs, "args", err,
                                errlen))
                goto out;
        }
    }
    if (!c->log[0]) {
        if (conf_abs[0]) {
            autostart__dirname(conf_abs, dir, sizeof dir);
            if (snprintf(c->log, sizeof c->log, "%s/mcp-broker.log", dir) >= (int)sizeof c->log) {
                snprintf(err, errlen, "broker.log: the config's directory is too long: set broker.log");
                goto out;
            }
        } else {
            snprintf(c->log, sizeof c->log, "/tmp/aiproxy-mcp-broker-%u.log", (unsigned)getuid());
        }
    }
    rc = 0;
out:
    if (rc)
        c->enabled = 0;
    else if (c->enabled)
        log_info("the MCP broker starts on demand: %s (log %s%s)", c->command, c->log,
                 c->idle_exit_s ? ", exits when idle" : "");
    return rc;
}

int autostart_lock(redisContext *rc, const char *prefix, const char *token, int ttl_ms)
{
    redisReply *r = redisCommand(rc, "SET %s" AUTOSTART_LOCK_KEY " %s NX PX %d", prefix, token,
                                 ttl_ms);
    int res = -EIO;

    if (r && r->type == REDIS_REPLY_STATUS)
        res = 1;                 /* +OK */
    else if (r && r->type == REDIS_REPLY_NIL)
        res = 0;                 /* held */
    if (r)
        freeReplyObject(r);
    return res;
}

void autostart_unlock(redisContext *rc, const char *prefix, const char *token)
{
    static const char lua[] =
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
        "return 0\n";
    redisReply *r = redisCommand(rc, "EVAL %s 1 %s" AUTOSTART_LOCK_KEY " %s", lua, prefix, token);

    if (r)
        freeReplyObject(r);
}

/* Variables a CGI request puts in the environment (RFC 3875 and what Apache
 * and lighttpd add): they describe one request, and HTTP_AUTHORIZATION is a
 * client's key: none of it goes to the broker. Ours are set afresh. */
static int autostart__drop_env(const char *kv)
{
    static const char *const prefixes[] = {
        "HTTP_", "REDIRECT_", "REMOTE_", "REQUEST_", "SERVER_", "SCRIPT_", "CONTEXT_", "SSL_",
        "PATH_INFO=", "PATH_TRANSLATED=", "QUERY_STRING=", "CONTENT_LENGTH=", "CONTENT_TYPE=",
        "GATEWAY_INTERFACE=", "AUTH_TYPE=", "DOCUMENT_ROOT=", "HTTPS=", "UNIQUE_ID=",
        "REDIS_URL=", "AIPROXY_REDIS_PREFIX=", AUTOSTART_TOKEN_ENV "=", AUTOSTART_IDLE_ENV "=",
        NULL};

    for (const char *const *p = prefixes; *p; p++)
        if (strncmp(kv, *p, strlen(*p)) == 0)
            return 1;
    return 0;
}

/* `name` as an executable path: itself when it has a '/', else the first
 * match in PATH. 0 or -ENOENT / -EACCES. */
static int autostart__which(const char *name, char *out, size_t n)
{
    const char *path = getenv("PATH"), *p;

    if (strchr(name, '/')) {
        snprintf(out, n, "%s", name);
        return access(out, X_OK) == 0 ? 0 : -errno;
    }
    for (p = path ? path : "/usr/local/bin:/usr/bin:/bin"; *p;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        if (snprintf(out, n, "%.*s/%s", (int)len, len ? p : ".", name) < (int)n &&
            access(out, X_OK) == 0)
            return 0;
        p += len + (colon ? 1 : 0);
    }
    return -ENOENT;
}

/* One message on the status pipe: the broker's pid ('P'), exec's errno
 * ('E', then the broker is gone), the log could not be opened ('L'). Eight
 * bytes: written in one piece (< PIPE_BUF), whoever writes first. */
typedef struct autostart_msg {
    int tag;
    int val;
} autostart_msg_t;

static void autostart__say(int fd, int tag, int val)
{
    autostart_msg_t m = {tag, val};
    ssize_t w = write(fd, &m, sizeof m);
    (void)w;
}

/* The broker's side of the fork: only system calls from here on. */
static void autostart__child(const char *path, char **argv, char **envp, const char *log,
                             int status_fd, unsigned maxfd)
{
    sigset_t none;
    pid_t pid;
    int fd;

    if (setsid() < 0) {
        autostart__say(status_fd, 'E', errno);
        _exit(127);
    }
    pid = fork();
    if (pid < 0) {
        autostart__say(status_fd, 'E', errno);
        _exit(127);
    }
    if (pid > 0) {
        autostart__say(status_fd, 'P', (int)pid);
        _exit(0);
    }
    /* not a session leader: can never get a controlling terminal again */
    for (int s = 1; s < NSIG; s++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(s, &sa, NULL);       /* SIGKILL, SIGSTOP and friends refuse: fine */
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    umask(077);
    if (chdir("/") != 0)
        autostart__say(status_fd, 'E', errno);
    fd = open("/dev/null", O_RDONLY | O_NOCTTY);
    if (fd >= 0 && fd != 0) {
        dup2(fd, 0);
        close(fd);
    }
    fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0) {
        autostart__say(status_fd, 'L', errno);
        fd = open("/dev/null", O_WRONLY | O_NOCTTY);
    }
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    /* nothing else of the responder's: its sockets, Redis, the web server's
     * FastCGI connection (marked close-on-exec, so the status pipe stays
     * open until exec succeeds) */
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        for (unsigned i = 3; i < maxfd; i++)
            fcntl((int)i, F_SETFD, FD_CLOEXEC);
    execve(path, argv, envp);
    autostart__say(status_fd, 'E', errno);
    _exit(127);
}

int autostart_spawn(const autostart_cfg_t *cfg, const char *url, const char *prefix,
                    const char *token, pid_t *pid, char *err, size_t errlen)
{
    char path[PATH_MAX], *argv[AUTOSTART_ARGV_MAX + 2];
    char **envp = NULL, *own[4] = {NULL, NULL, NULL, NULL};
    size_t n = 0, k = 0;
    int pfd[2] = {-1, -1}, rc, got_pid = 0, status;
    unsigned maxfd = 1024;
    struct rlimit rl;
    pid_t mid;
    autostart_msg_t m;

    *pid = 0;
    rc = autostart__which(cfg->command, path, sizeof path);
    if (rc) {
        snprintf(err, errlen, "cannot run %s: %s", cfg->command, strerror(-rc));
        goto out;
    }
    argv[k++] = path;
    for (int i = 0; i < cfg->nargs && k < AUTOSTART_ARGV_MAX + 1; i++)
        argv[k++] = (char *)cfg->args[i];
    argv[k] = NULL;
    while (environ && environ[n])
        n++;
    envp = calloc(n + 5, sizeof(char *));
    if (!envp || asprintf(&own[0], "REDIS_URL=%s", url) < 0 ||
        asprintf(&own[1], "AIPROXY_REDIS_PREFIX=%s", prefix) < 0 ||
        asprintf(&own[2], "%s=%s", AUTOSTART_TOKEN_ENV, token) < 0 ||
        asprintf(&own[3], "%s=%d", AUTOSTART_IDLE_ENV, cfg->idle_exit_s) < 0) {
        rc = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    k = 0;
    for (size_t i = 0; i < n; i++)
        if (!autostart__drop_env(environ[i]))
            envp[k++] = environ[i];
    for (int i = 0; i < 4; i++)
        envp[k++] = own[i];
    envp[k] = NULL;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 1u << 20)
        maxfd = (unsigned)rl.rlim_cur;
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        rc = -errno;
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto out;
    }
    mid = fork();
    if (mid < 0) {
        rc = -errno;
        snprintf(err, errlen, "fork: %s", strerror(errno));
        goto out;
    }
    if (mid == 0) {
        close(pfd[0]);
        autostart__child(path, argv, envp, cfg->log, pfd[1], maxfd);
    }
    close(pfd[1]);
    pfd[1] = -1;
    rc = 0;
    /* until every writer is gone: the first child (exited), the broker
     * (exec'd, or failed and said so) */
    for (;;) {
        ssize_t r = read(pfd[0], &m, sizeof m);
        if (r < 0 && errno == EINTR)
            continue;
        if (r != (ssize_t)sizeof m)
            break;
        if (m.tag == 'P') {
            *pid = (pid_t)m.val;
            got_pid = 1;
        } else if (m.tag == 'L') {
            log_warn("mcp-broker on demand: cannot open its log %s: %s (it logs nowhere)",
                     cfg->log, strerror(m.val));
        } else if (m.tag == 'E' && rc == 0) {
            rc = -m.val;
            snprintf(err, errlen, "cannot start %s: %s", path, strerror(m.val));
        }
    }
    while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
        ;   /* ECHILD when SIGCHLD is ignored here: nothing to reap */
    if (rc == 0 && !got_pid) {
        rc = -ECHILD;
        snprintf(err, errlen, "cannot start %s: the first child died", path);
    }
out:
    if (pfd[0] >= 0)
        close(pfd[0]);
    if (pfd[1] >= 0)
        close(pfd[1]);
    for (int i = 0; i < 4; i++)
        free(own[i]);
    free(envp);
    return rc;
}

void autostart_nudge(autostart_wait_t *w, redisContext *rc, const char *url, const char *prefix,
                     int64_t now, int64_t *until)
{
    const autostart_cfg_t *cfg = &autostart__cfg;
    char token[33], err[512];
    pid_t pid;
    int got;

    if (!cfg->enabled || !rc || rc->err)
        return;
    if (!w->extended) {
        w->extended = 1;
        if (*until < now + cfg->start_timeout_ms)
            *until = now + cfg->start_timeout_ms;
    }
    if (w->started || now < w->next_try_ms)
        return;
    w->next_try_ms = now + AUTOSTART_RETRY_MS;
    rid_hex(token, sizeof token - 1);
    got = autostart_lock(rc, prefix, token, cfg->start_timeout_ms);
    if (got <= 0)
        return;      /* one is starting or running (or Redis failed: the publish says so) */
    if (autostart_spawn(cfg, url, prefix, token, &pid, err, sizeof err) != 0) {
        log_error("no mcp-broker is listening and none could be started: %s", err);
        autostart_unlock(rc, prefix, token);
        return;
    }
    w->started = pid;
    *until = now + cfg->start_timeout_ms;   /* the one we started gets its full time */
    log_info("no mcp-broker was listening: started %s (pid %d, log %s)", cfg->command, (int)pid,
             cfg->log);
}
