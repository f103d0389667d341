/* pool — the responder's processes: worker threads inside one process, and a
 * master that supervises N worker processes.
 *
 * Signals: SIGTERM/SIGINT drain (stop accepting, finish in-flight requests,
 * exit 0); SIGHUP re-opens the log file. The master forwards both to its
 * workers and replaces a worker that dies. */
#ifndef AIPROXY_POOL_H
#define AIPROXY_POOL_H

#include "fcgi/core/serve.h"

typedef struct pool_cfg {
    int listen_fd;          /* the FastCGI listen socket (0 when inherited) */
    int workers;            /* processes; 0 = serve in this process, no master */
    int threads;            /* threads per worker */
    size_t stack_size;      /* per thread */
    const char *log_path;   /* NULL: stderr (SIGHUP then does nothing) */
    int reserve;            /* threads per worker kept for short routes (admit.h) */
    int queue_wait_ms;      /* a long request waits this long for a thread, then 503 */
    serve_cfg_t serve;      /* serve.admit is set by pool_worker_run */
    int idle_exit_s;        /* > 0: a worker with no request for that long leaves (workers 0) */
    const char *idle_lock;  /* NULL, or a file flocked exclusively before leaving: a
                             * client holding it shared (aiproxy-cgi) is mid-request */
    const char *idle_unlink; /* NULL, or the unix socket removed, under that lock, first */
} pool_cfg_t;

/* Serves in the calling process with cfg->threads threads until SIGTERM or
 * SIGINT, then drains. With cfg->idle_exit_s, also leaves (the same drain)
 * once no request ran for that long and cfg->idle_lock, if any, can be
 * taken exclusively at once; cfg->idle_unlink is removed then, so clients
 * find no socket rather than one nobody accepts on. Returns 0, or 1 when no
 * thread could start. */
int pool_worker_run(const pool_cfg_t *cfg);

/* Forks cfg->workers workers running pool_worker_run and supervises them
 * until SIGTERM/SIGINT, then forwards it and waits for them all. Returns 0. */
int pool_master_run(const pool_cfg_t *cfg);

#endif
