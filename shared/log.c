#include "shared/log.h"
#include "shared/utf8.h"

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
#include <signal.h>
#include <stdatomic.h>

/* room kept for ",\"request_id\":" and an id of CAP_REQUEST_ID characters */
#define LOG__RID_ROOM 160
/* A held thread's buffer: ~40 access lines, then one write(2). */
#define LOG__HOLD_BYTES 8192
/* How long a held line may wait for its write (the flusher's period). */
#define LOG__HOLD_MS 100

static const char *log__prog = "aiproxy";
static int log__level = LOG_LVL_INFO;
static int log__fd = 2;
static int log__pid;    /* cached: getpid() is a syscall and we log every request */
static const char *const log__names[] = { "error", "warn", "info", "debug" };
static int log__json;
static _Thread_local const char *log__rid;   /* the request this thread serves */

/* A thread's held lines (log_hold): whole lines, written by the thread when
 * the next would not fit, by the process's flusher every LOG__HOLD_MS, and
 * before any line written unheld. `mu` guards buf/len against the flusher. */
struct log__hold {
    pthread_mutex_t mu;
    char buf[LOG__HOLD_BYTES];
    size_t len;
    struct log__hold *next;
};
static pthread_mutex_t log__holds_mu = PTHREAD_MUTEX_INITIALIZER;
static struct log__hold *log__holds;         /* every holding thread's, this process */
static atomic_int log__nholds;               /* entries of log__holds */
static int log__flusher_pid;                 /* the process whose flusher runs */
static _Thread_local struct log__hold *log__mine;

static void log__flush_all(void);

static void log__after_fork(void)
{
    log__pid = (int)getpid();
    /* only the forking thread lives on: the others' holds are not ours */
    pthread_mutex_init(&log__holds_mu, NULL);
    log__holds = NULL;
    atomic_store(&log__nholds, 0);
    log__mine = NULL;
}

void log_init(const char *prog, enum log_level level)
{
    const char *env;
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
    env = getenv("AIPROXY_LOG_FORMAT");
    log__json = env && strcasecmp(env, "json") == 0;
    env = getenv("AIPROXY_LOG_LEVEL");
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
    /* lines held before the rotation belong to the old file */
    if (atomic_load_explicit(&log__nholds, memory_order_relaxed))
        log__flush_all();
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

int log_json(void)
{
    return log__json;
}

void log_set_request(const char *rid)
{
    log__rid = rid;
}

/* "2026-11-25T04:50:00.123Z" into out[32]; its length. */
static size_t log__time(char *out, size_t cap)
{
    /* the thread's last second, formatted: a responder logs a line per
     * request, and gmtime_r + strftime per line was most of a line's cost */
    static __thread time_t sec = -1;
    static __thread char day[24];
    static __thread size_t dn;
    struct timespec ts;
    struct tm tm;
    long ms;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != sec) {
        gmtime_r(&ts.tv_sec, &tm);
        dn = strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
        sec = ts.tv_sec;
    }
    if (cap < dn + 6)
        return 0;
    memcpy(out, day, dn);
    ms = ts.tv_nsec / 1000000L;
    out[dn] = '.';
    out[dn + 1] = (char)('0' + ms / 100);
    out[dn + 2] = (char)('0' + ms / 10 % 10);
    out[dn + 3] = (char)('0' + ms % 10);
    out[dn + 4] = 'Z';
    out[dn + 5] = '\0';
    return dn + 5;
}

/* Appends s[0..n) (valid UTF-8) as a quoted JSON string at out[*len], within
 * cap bytes (room for the closing quote kept): cut at a character boundary
 * when it does not fit. */
static void log__jstr(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = *len;

    if (o + 2 > cap)
        return;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        size_t k = 0;
        if (c == '"' || c == '\\') {
            esc[k++] = '\\';
            esc[k++] = (char)c;
        } else if (c == '\n') {
            esc[k++] = '\\';
            esc[k++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            k = 4;
            esc[k++] = hex[c >> 4];
            esc[k++] = hex[c & 15];
        } else {
            esc[k++] = (char)c;
        }
        if (o + k + 1 >= cap) {
            /* no room: drop a character cut in its middle */
            while (o > *len + 1 && ((unsigned char)out[o - 1] & 0xC0) == 0x80)
                o--;
            if (o > *len + 1 && (unsigned char)out[o - 1] >= 0xC0)
                o--;
            break;
        }
        memcpy(out + o, esc, k);
        o += k;
    }
    out[o++] = '"';
    *len = o;
}

/* Appends text as-is at out[*len] within cap. */
static void log__raw(char *out, size_t cap, size_t *len, const char *text)
{
    size_t n = strlen(text);

    if (*len + n >= cap)
        n = cap - *len - 1;
    memcpy(out + *len, text, n);
    *len += n;
}

/* The JSON line's head, up to and including the message:
 * {"time":"…","level":"…","component":"…","pid":N,"msg":"…" */
static void log__json_head(char *out, size_t cap, size_t *len, enum log_level level,
                           const char *msg, size_t msglen)
{
    char t[40], pid[48];
    char clean[2048];
    size_t n = log__time(t, sizeof(t)), cn;

    log__raw(out, cap, len, "{\"time\":");
    log__jstr(out, cap, len, t, n);
    log__raw(out, cap, len, ",\"level\":\"");
    log__raw(out, cap, len, log__names[level]);
    log__raw(out, cap, len, "\",\"component\":");
    log__jstr(out, cap, len, log__prog, strlen(log__prog));
    snprintf(pid, sizeof(pid), ",\"pid\":%d,\"msg\":", log__pid ? log__pid : (int)getpid());
    log__raw(out, cap, len, pid);
    cn = utf8_clean(msg, msglen, clean, sizeof(clean));
    log__jstr(out, cap, len, clean, cn);
}

static void log__out(const char *text, size_t n)
{
    /* one write(2) per line, or per run of whole lines, keeps lines whole
     * across threads and processes */
    if (write(log__fd, text, n) < 0) {
        /* nothing sensible to do: logging must never fail the caller */
    }
}

/* Writes out what `h` holds; the caller holds h->mu. */
static void log__drain(struct log__hold *h)
{
    if (h->len)
        log__out(h->buf, h->len);
    h->len = 0;
}

/* Writes out every thread's held lines: the flusher's tick, and before an
 * unheld line, so that one is never written ahead of lines held before it
 * (a worker's last line, "drained", comes after every access line). */
static void log__flush_all(void)
{
    pthread_mutex_lock(&log__holds_mu);
    for (struct log__hold *h = log__holds; h; h = h->next) {
        pthread_mutex_lock(&h->mu);
        log__drain(h);
        pthread_mutex_unlock(&h->mu);
    }
    pthread_mutex_unlock(&log__holds_mu);
}

static void *log__flusher(void *arg)
{
    struct timespec ts = { 0, LOG__HOLD_MS * 1000L * 1000L };
    sigset_t all;

    (void)arg;
    sigfillset(&all);   /* the process's signals are for its own threads */
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        nanosleep(&ts, NULL);
        log__flush_all();
    }
    return NULL;
}

/* A line: into the thread's hold when it is a held line (log_held,
 * log_fields_held) and the thread holds, else written now (after every held
 * line). */
static void log__write(int held, const char *line, size_t n)
{
    struct log__hold *h = held ? log__mine : NULL;

    if (h && n <= sizeof(h->buf)) {
        pthread_mutex_lock(&h->mu);
        if (h->len + n > sizeof(h->buf))
            log__drain(h);
        memcpy(h->buf + h->len, line, n);
        h->len += n;
        pthread_mutex_unlock(&h->mu);
        return;
    }
    if (atomic_load_explicit(&log__nholds, memory_order_relaxed))
        log__flush_all();   /* a hold being added has nothing to write yet */
    log__out(line, n);
}

int log_hold(int on)
{
    struct log__hold *h = log__mine, **pp;
    pthread_t tid;
    pthread_attr_t attr;
    int rc = 0;

    if (!on) {
        if (!h)
            return 0;
        pthread_mutex_lock(&log__holds_mu);
        for (pp = &log__holds; *pp && *pp != h; pp = &(*pp)->next)
            ;
        if (*pp) {
            *pp = h->next;
            atomic_fetch_sub(&log__nholds, 1);
        }
        pthread_mutex_unlock(&log__holds_mu);
        log__mine = NULL;
        log__drain(h);   /* unlinked: no flusher sees it any more */
        pthread_mutex_destroy(&h->mu);
        free(h);
        return 0;
    }
    if (h)
        return 0;
    if (!(h = calloc(1, sizeof(*h))))
        return -ENOMEM;
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_lock(&log__holds_mu);
    if (!log__pid)
        log__pid = (int)getpid();
    if (log__flusher_pid != log__pid) {
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        rc = pthread_create(&tid, &attr, log__flusher, NULL);
        pthread_attr_destroy(&attr);
        if (rc == 0)
            log__flusher_pid = log__pid;
    }
    if (rc == 0) {
        h->next = log__holds;
        log__holds = h;
        log__mine = h;
        atomic_fetch_add(&log__nholds, 1);
    }
    pthread_mutex_unlock(&log__holds_mu);
    if (rc != 0) {
        pthread_mutex_destroy(&h->mu);
        free(h);
        return -rc;
    }
    return 0;
}

static void log__vmsg(enum log_level level, int held, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void log__fmsg(enum log_level level, int held, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void log__fmsg(enum log_level level, int held, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log__vmsg(level, held, fmt, ap);
    va_end(ap);
}

static void log__fields(enum log_level level, int held, const char *msg, const char *fields)
{
    char head[4096], *line = NULL;
    size_t n = 0, flen;

    if (!log_enabled(level))
        return;
    flen = fields ? strlen(fields) : 0;
    if (!log__json || flen < 2 || fields[0] != '{' || fields[flen - 1] != '}') {
        log__fmsg(level, held, "%s", msg);
        return;
    }
    log__json_head(head, sizeof(head) - 1, &n, level, msg, strlen(msg));
    line = malloc(n + flen + 2);
    if (!line)
        return;
    memcpy(line, head, n);
    if (flen > 2) {            /* the members of fields, after a comma */
        line[n++] = ',';
        memcpy(line + n, fields + 1, flen - 1);
        n += flen - 1;
    } else {
        line[n++] = '}';
    }
    line[n++] = '\n';
    log__write(held, line, n);
    free(line);
}

void log_fields(enum log_level level, const char *msg, const char *fields)
{
    log__fields(level, 0, msg, fields);
}

void log_fields_held(enum log_level level, const char *msg, const char *fields)
{
    log__fields(level, 1, msg, fields);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log__vmsg(level, 0, fmt, ap);
    va_end(ap);
}

void log_held(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log__vmsg(level, 1, fmt, ap);
    va_end(ap);
}

static void log__vmsg(enum log_level level, int held, const char *fmt, va_list ap)
{
    char line[4096], msg[2048];
    size_t n;
    int k;

    if (!log_enabled(level))
        return;
    k = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (k < 0)
        k = 0;
    if ((size_t)k >= sizeof(msg))
        k = (int)sizeof(msg) - 1;
    if (log__json) {
        n = 0;
        log__json_head(line, sizeof(line) - 64 - LOG__RID_ROOM, &n, level, msg, (size_t)k);
        if (log__rid) {
            log__raw(line, sizeof(line) - 3, &n, ",\"request_id\":");
            log__jstr(line, sizeof(line) - 3, &n, log__rid, strlen(log__rid));
        }
        line[n++] = '}';
        line[n++] = '\n';
        log__write(held, line, n);
        return;
    }
    n = log__time(line, sizeof(line));
    k = snprintf(line + n, sizeof(line) - n, " %s[%d] %s: %.*s%s%s", log__prog,
                 log__pid ? log__pid : (int)getpid(), log__names[level], k, msg,
                 log__rid ? " rid=" : "", log__rid ? log__rid : "");
    if (k > 0)
        n += (size_t)k;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    log__write(held, line, n);
}
