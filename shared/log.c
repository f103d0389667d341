#include "shared/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <pthread.h>

static const char *log__prog = "aiproxy";
static int log__level = LOG_LVL_INFO;
static int log__fd = 2;
static int log__pid;    /* cached: getpid() is a syscall and we log every request */
static const char *const log__names[] = { "error", "warn", "info", "debug" };

static void log__after_fork(void)
{
    log__pid = (int)getpid();
}

void log_init(const char *prog, enum log_level level)
{
    const char *env = getenv("AIPROXY_LOG_LEVEL");
    static int hooked;

    log__pid = (int)getpid();
    if (!hooked) {
        /* workers are forked after log_init: each must show its own pid */
        pthread_atfork(NULL, NULL, log__after_fork);
        hooked = 1;
    }

    if (prog)
        log__prog = prog;
    log__level = level;
    if (env && *env) {
        for (int i = 0; i <= LOG_LVL_DEBUG; i++)
            if (strcasecmp(env, log__names[i]) == 0)
                log__level = i;
    }
}

/* The log keeps one fd number for its life once a file is opened: a re-open
 * dup3()s the new file onto it, atomically, so a thread writing a line at
 * that moment writes to the old file or the new one, never to a closed fd
 * or to whatever a concurrent open() got the freed number for (a client's
 * socket). Only the first open (before the threads start) sets log__fd. */
int log_reopen(const char *path)
{
    int fd;

    if (!path && log__fd == 2)
        return 0;
    if (!path)
        fd = fcntl(2, F_DUPFD_CLOEXEC, 0);
    else
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    if (log__fd == 2) {
        log__fd = fd;
        return 0;
    }
    if (dup3(fd, log__fd, O_CLOEXEC) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    close(fd);
    return 0;
}

int log_enabled(enum log_level level)
{
    return (int)level <= log__level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int k;
    va_list ap;

    if (!log_enabled(level))
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    k = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s[%d] %s: ", ts.tv_nsec / 1000000L,
                 log__prog, log__pid ? log__pid : (int)getpid(), log__names[level]);
    if (k > 0)
        n += (size_t)k;
    va_start(ap, fmt);
    k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (k > 0)
        n += (size_t)k;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    /* one write(2) per line keeps lines whole across threads and processes */
    if (write(log__fd, line, n) < 0) {
        /* nothing sensible to do: logging must never fail the caller */
    }
}
