/* pool — threads and processes. The worker's main thread only waits for
 * signals; the serving threads block in FCGX_Accept_r, which returns on
 * SIGUSR1 (FCGI_FAIL_ACCEPT_ON_INTR) so a drain can wake them. libfcgi's own
 * FCGX_ShutdownPending is not used: it makes every later read fail, which
 * would break requests still reading their body. */
#include "fcgi/core/pool.h"
#include "shared/regwatch.h"

#include "fcgi/core/admit.h"
#include "fcgi/metrics/metrics.h"
#include "fcgi/usage/usage.h"
#include "shared/log.h"
#include "shared/otel.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long a leaving worker tries to deliver the spans it still holds. */
#define POOL_OTEL_FLUSH_MS 2000

/* A thread's state, as the drain sees it. BUSY is set the moment
 * FCGX_Accept_r hands over a request, and only from IDLE: the drain SEALs
 * idle threads before it exits, and a thread that accepts a request while
 * sealed waits until the drain either unseals it (some thread was busy, so
 * the worker keeps waiting) or exits. So the drain never exits with an
 * accepted request that is not counted as busy. */
enum { POOL__IDLE = 0, POOL__BUSY = 1, POOL__SEALED = 2 };

struct pool__thread {
    pthread_t tid;
    int started;
    atomic_int state;       /* POOL__IDLE, POOL__BUSY (accept to finish), POOL__SEALED */
    atomic_int done;        /* the thread left its loop */
    const pool_cfg_t *cfg;
    atomic_int *stop;
    atomic_llong *last;     /* CLOCK_MONOTONIC seconds of the worker's last request */
};

static void pool__wake(int sig)
{
    (void)sig;   /* only interrupts a blocking accept */
}

/* Called as soon as a request is accepted: IDLE -> BUSY. While the drain has
 * the thread sealed, wait for its verdict (it unseals within one scan). */
static void pool__mark_busy(struct pool__thread *th)
{
    for (;;) {
        int idle = POOL__IDLE;
        struct timespec ts = { 0, 1000 * 1000 };
        if (atomic_compare_exchange_strong(&th->state, &idle, POOL__BUSY))
            return;
        nanosleep(&ts, NULL);
    }
}

/* The drain's last check: seals every idle live thread, so none can start a
 * request unseen. Returns 1 when all are sealed (nothing in flight: the
 * worker may exit), else unseals them and returns 0 (a thread is busy). */
static int pool__seal(struct pool__thread *ths, int n)
{
    int i, ok = 1;

    for (i = 0; i < n && ok; i++) {
        int idle = POOL__IDLE;
        if (!ths[i].started || atomic_load(&ths[i].done))
            continue;
        if (!atomic_compare_exchange_strong(&ths[i].state, &idle, POOL__SEALED))
            ok = idle == POOL__SEALED;
    }
    if (!ok) {
        for (i = 0; i < n; i++) {
            int sealed = POOL__SEALED;
            atomic_compare_exchange_strong(&ths[i].state, &sealed, POOL__IDLE);
        }
    }
    return ok;
}

static long long pool__now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec;
}

/* The idle exit's test, once a second from the worker's main thread: no
 * thread busy, the last request cfg->idle_exit_s ago or more, and the idle
 * lock free. Returns 1 to leave, with *lock_fd held until the process exits
 * (clients wait on it, then find no socket); else 0. */
static int pool__idle_over(const pool_cfg_t *cfg, struct pool__thread *ths, atomic_llong *last,
                           int *lock_fd)
{
    int i, fd;

    if (cfg->idle_exit_s <= 0 || pool__now_s() - atomic_load(last) < cfg->idle_exit_s)
        return 0;
    for (i = 0; i < cfg->threads; i++)
        if (ths[i].started && atomic_load(&ths[i].state) == POOL__BUSY)
            return 0;
    if (cfg->idle_lock) {
        fd = open(cfg->idle_lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
            log_warn("idle exit: cannot open %s: %s; staying", cfg->idle_lock, strerror(errno));
            atomic_store(last, pool__now_s());
            return 0;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            close(fd);   /* a client is between connect and its answer */
            return 0;
        }
        *lock_fd = fd;
    }
    if (cfg->idle_unlink)
        unlink(cfg->idle_unlink);
    log_info("worker %d: no request for %d s, leaving", (int)getpid(), cfg->idle_exit_s);
    return 1;
}

static void *pool__thread_main(void *arg)
{
    struct pool__thread *th = arg;
    serve_thread_t *st = serve_thread_new(&th->cfg->serve, th->cfg->listen_fd);
    sigset_t usr1;

    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);

    if (!st) {
        log_error("responder thread: out of memory at start");
        goto out;
    }
    while (!atomic_load(th->stop)) {
        int rc = serve_accept(st);
        if (rc != 0) {
            if (atomic_load(th->stop))
                break;
            if (rc != -EINTR) {
                log_warn("FCGX_Accept_r failed: %s", strerror(rc < 0 && rc > -4096 ? -rc : EIO));
                /* A broken listen socket would spin: pace the retries. */
                struct timespec ts = { 0, 100 * 1000 * 1000 };
                nanosleep(&ts, NULL);
            }
            continue;
        }
        pool__mark_busy(th);
        metrics_busy(1);
        /* SIGUSR1 only wakes an idle accept: a request in flight must not
         * see its body read or its answer's write fail with EINTR. One that
         * arrives meanwhile is taken at the unblock, and the drain signals
         * idle threads again until they leave. */
        pthread_sigmask(SIG_BLOCK, &usr1, NULL);
        serve_handle(st);
        pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
        atomic_store(th->last, pool__now_s());
        metrics_busy(-1);
        atomic_store(&th->state, POOL__IDLE);
    }
out:
    serve_thread_free(st);
    atomic_store(&th->done, 1);
    return NULL;
}

static void pool__block(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}

static void pool__reopen(const pool_cfg_t *cfg)
{
    if (cfg->log_path && log_reopen(cfg->log_path) != 0)
        log_error("SIGHUP: cannot re-open log %s", cfg->log_path);
}

int pool_worker_run(const pool_cfg_t *cfg_in)
{
    pool_cfg_t local = *cfg_in;
    const pool_cfg_t *cfg = &local;
    struct pool__thread *ths = calloc((size_t)cfg->threads, sizeof(*ths));
    atomic_int stop = 0;
    atomic_llong last = pool__now_s();
    int idle_fd = -1;
    pthread_attr_t attr;
    struct sigaction sa;
    sigset_t set;
    int i, started = 0, leftover = 0, rc = 1;

    local.serve.admit = admit_new(cfg->threads, cfg->reserve, cfg->queue_wait_ms);
    if (!ths || !local.serve.admit) {
        free(ths);
        admit_free(local.serve.admit);
        return 1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = pool__wake;   /* no SA_RESTART: accept must see EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    pool__block(&set);
    /* the worker's registry watcher (started with the signals blocked, like
     * every thread here): its threads refresh without a round trip per
     * request (NULL: they GET the version per request instead) */
    local.serve.watch = regwatch_start(cfg->serve.redis_url, cfg->serve.prefix);
    (void)otel_start();   /* this process's span exporter, when tracing is on */
    (void)usage_start(cfg->serve.redis_url);   /* its usage flusher (docs/usage.md) */
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, cfg->stack_size);
    for (i = 0; i < cfg->threads; i++) {
        ths[i].cfg = cfg;
        ths[i].stop = &stop;
        ths[i].last = &last;
        if (pthread_create(&ths[i].tid, &attr, pool__thread_main, &ths[i]) != 0) {
            log_error("cannot start responder thread %d of %d", i + 1, cfg->threads);
            break;
        }
        ths[i].started = 1;
        started++;
    }
    pthread_attr_destroy(&attr);
    if (started == 0)
        goto out;
    metrics_threads(started);
    log_info("worker %d serving with %d threads (%d kept for short requests; a completion "
             "waits up to %d ms for a thread, then 503)", (int)getpid(), started,
             cfg->reserve < started ? cfg->reserve : started - 1, cfg->queue_wait_ms);
    for (;;) {
        struct timespec ts = { 1, 0 };
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGHUP)
            pool__reopen(cfg);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (pool__idle_over(cfg, ths, &last, &idle_fd))
            break;
    }
    log_info("worker %d draining", (int)getpid());
    atomic_store(&stop, 1);
    for (i = 0; i < cfg->threads; i++)
        if (ths[i].started && !atomic_load(&ths[i].done))
            pthread_kill(ths[i].tid, SIGUSR1);
    /* Wait for in-flight requests; a thread idle in accept or on a kept-alive
     * connection holds none and is not waited for, once sealed. */
    for (;;) {
        int busy = 0, all_done = 1;
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        for (i = 0; i < cfg->threads; i++) {
            if (!ths[i].started)
                continue;
            if (!atomic_load(&ths[i].done))
                all_done = 0;
            if (atomic_load(&ths[i].state) == POOL__BUSY)
                busy++;
        }
        if (all_done || (busy == 0 && pool__seal(ths, cfg->threads)))
            break;
        if (sigtimedwait(&set, NULL, &ts) == SIGHUP)
            pool__reopen(cfg);
        for (i = 0; i < cfg->threads; i++)   /* one that was busy may be back in accept */
            if (ths[i].started && !atomic_load(&ths[i].done) &&
                atomic_load(&ths[i].state) != POOL__BUSY)
                pthread_kill(ths[i].tid, SIGUSR1);
    }
    rc = 0;
    /* One pass decides: a thread is joined if it left its loop, else it is
     * left over (sealed, idle in a read) and the process exits under it. A
     * second look at `done` could see a thread finish after it was skipped,
     * and free(ths) would then run under a live thread. A left-over thread is
     * detached: nobody will join it, and one that leaves its loop before the
     * _exit below is then not a leaked (finished, unjoined) thread. */
    for (i = 0; i < cfg->threads; i++) {
        if (!ths[i].started)
            continue;
        if (atomic_load(&ths[i].done)) {
            pthread_join(ths[i].tid, NULL);
        } else {
            pthread_detach(ths[i].tid);
            leftover = 1;
        }
    }
    log_info("worker %d drained", (int)getpid());
    usage_stop();   /* writes what the drained requests counted */
    otel_stop(POOL_OTEL_FLUSH_MS);
    if (leftover)
        _exit(0);   /* sealed threads idle in a read: nothing in flight to lose */
out:
    usage_stop();
    otel_stop(POOL_OTEL_FLUSH_MS);
    free(ths);
    regwatch_stop(local.serve.watch);
    admit_free(local.serve.admit);
    if (idle_fd >= 0)
        close(idle_fd);
    return rc;
}

/* The child keeps the master's signal mask (TERM, INT, HUP, CHLD blocked):
 * pool_worker_run waits for them with sigtimedwait, and a SIGHUP sent before
 * it gets there stays pending instead of killing the new worker. */
static pid_t pool__spawn(const pool_cfg_t *cfg, int slot)
{
    pid_t master = getpid();
    pid_t pid = fork();

    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        /* The master died before prctl: we were re-parented (to init, or to
         * a subreaper such as systemd --user or a container's init). */
        if (getppid() != master)
            _exit(0);
        metrics_worker(slot);   /* its gauges start afresh; counters go on */
        exit(pool_worker_run(cfg));
    }
    return pid;
}

int pool_master_run(const pool_cfg_t *cfg)
{
    pid_t *pids = calloc((size_t)cfg->workers, sizeof(pid_t));
    time_t *born = calloc((size_t)cfg->workers, sizeof(time_t));
    sigset_t set;
    int i, stopping = 0, alive;

    if (!pids || !born) {
        free(pids);
        free(born);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    pool__block(&set);
    for (;;) {
        struct timespec ts = { 0, 200 * 1000 * 1000 };
        pid_t pid;
        int sig, status;

        /* (Re)start missing workers, unless one keeps dying at once. */
        for (i = 0; i < cfg->workers && !stopping; i++) {
            if (pids[i] > 0 || time(NULL) - born[i] < 1)
                continue;
            born[i] = time(NULL);
            pids[i] = pool__spawn(cfg, i);
            if (pids[i] < 0) {
                log_error("fork: %s", strerror(errno));
                pids[i] = 0;
            }
        }
        sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            if (!stopping)
                log_info("master %d: draining %d workers", (int)getpid(), cfg->workers);
            stopping = 1;
            for (i = 0; i < cfg->workers; i++)
                if (pids[i] > 0)
                    kill(pids[i], SIGTERM);
        } else if (sig == SIGHUP) {
            pool__reopen(cfg);
            for (i = 0; i < cfg->workers; i++)
                if (pids[i] > 0)
                    kill(pids[i], SIGHUP);
        }
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (i = 0; i < cfg->workers; i++) {
                if (pids[i] != pid)
                    continue;
                pids[i] = 0;
                metrics_worker_gone(i);
                if (!stopping)
                    log_warn("worker %d %s %d; replacing it", (int)pid,
                             WIFSIGNALED(status) ? "killed by signal" : "exited with",
                             WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            }
        }
        alive = 0;
        for (i = 0; i < cfg->workers; i++)
            alive += pids[i] > 0;
        if (stopping && alive == 0)
            break;
    }
    log_info("master %d: all workers stopped", (int)getpid());
    free(pids);
    free(born);
    return 0;
}
