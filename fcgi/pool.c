/* pool — threads and processes. The worker's main thread only waits for
 * signals; the serving threads block in FCGX_Accept_r, which returns on
 * SIGUSR1 (FCGI_FAIL_ACCEPT_ON_INTR) so a drain can wake them. libfcgi's own
 * FCGX_ShutdownPending is not used: it makes every later read fail, which
 * would break requests still reading their body. */
#include "fcgi/pool.h"

#include "shared/log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct pool__thread {
    pthread_t tid;
    int started;
    atomic_int busy;        /* between accept and finish of a request */
    atomic_int done;        /* the thread left its loop */
    const pool_cfg_t *cfg;
    atomic_int *stop;
};

static void pool__wake(int sig)
{
    (void)sig;   /* only interrupts a blocking accept */
}

static void *pool__thread_main(void *arg)
{
    struct pool__thread *th = arg;
    serve_thread_t *st = serve_thread_new(&th->cfg->serve, th->cfg->listen_fd);

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
        atomic_store(&th->busy, 1);
        serve_handle(st);
        atomic_store(&th->busy, 0);
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

int pool_worker_run(const pool_cfg_t *cfg)
{
    struct pool__thread *ths = calloc((size_t)cfg->threads, sizeof(*ths));
    atomic_int stop = 0;
    pthread_attr_t attr;
    struct sigaction sa;
    sigset_t set;
    int i, started = 0, rc = 1;

    if (!ths)
        return 1;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = pool__wake;   /* no SA_RESTART: accept must see EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    pool__block(&set);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, cfg->stack_size);
    for (i = 0; i < cfg->threads; i++) {
        ths[i].cfg = cfg;
        ths[i].stop = &stop;
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
    log_info("worker %d serving with %d threads", (int)getpid(), started);
    for (;;) {
        struct timespec ts = { 1, 0 };
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGHUP)
            pool__reopen(cfg);
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    log_info("worker %d draining", (int)getpid());
    atomic_store(&stop, 1);
    for (i = 0; i < cfg->threads; i++)
        if (ths[i].started && !atomic_load(&ths[i].done))
            pthread_kill(ths[i].tid, SIGUSR1);
    /* Wait for in-flight requests; a thread idle in accept or on a kept-alive
     * connection holds none and is not waited for. */
    for (;;) {
        int busy = 0, all_done = 1;
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        for (i = 0; i < cfg->threads; i++) {
            if (!ths[i].started)
                continue;
            if (!atomic_load(&ths[i].done))
                all_done = 0;
            if (atomic_load(&ths[i].busy))
                busy++;
        }
        if (all_done || busy == 0)
            break;
        if (sigtimedwait(&set, NULL, &ts) == SIGHUP)
            pool__reopen(cfg);
        for (i = 0; i < cfg->threads; i++)   /* one that was busy may be back in accept */
            if (ths[i].started && !atomic_load(&ths[i].done) && !atomic_load(&ths[i].busy))
                pthread_kill(ths[i].tid, SIGUSR1);
    }
    rc = 0;
    for (i = 0; i < cfg->threads; i++) {
        if (ths[i].started && atomic_load(&ths[i].done))
            pthread_join(ths[i].tid, NULL);
        else
            ths[i].started = 0;
    }
    log_info("worker %d drained", (int)getpid());
    {
        int leftover = 0;
        for (i = 0; i < cfg->threads; i++)
            leftover |= !atomic_load(&ths[i].done) && ths[i].tid;
        if (leftover)
            _exit(0);   /* idle threads stuck in a read: nothing in flight to lose */
    }
out:
    free(ths);
    return rc;
}

static pid_t pool__spawn(const pool_cfg_t *cfg)
{
    pid_t pid = fork();

    if (pid == 0) {
        sigset_t set;
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1)
            _exit(0);       /* the master is already gone */
        sigemptyset(&set);
        pthread_sigmask(SIG_SETMASK, &set, NULL);
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
            pids[i] = pool__spawn(cfg);
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
