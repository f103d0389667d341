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

/* room kept for ",\"request_id\":" and an id of CAP_REQUEST_ID characters */
#define LOG__RID_ROOM 160

static const char *log__prog = "aiproxy";
static int log__level = LOG_LVL_INFO;
static int log__fd = 2;
static int log__pid;    /* cached: getpid() is a syscall and we log every request */
static const char *const log__names[] = { "error", "warn", "info", "debug" };
static int log__json;
static _Thread_local const char *log__rid;   /* the request this thread serves */

static void log__after_fork(void)
{
    log__pid = (int)getpid();
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

static void log__write(const char *line, size_t n)
{
    /* one write(2) per line keeps lines whole across threads and processes */
    if (write(log__fd, line, n) < 0) {
        /* nothing sensible to do: logging must never fail the caller */
    }
}

void log_fields(enum log_level level, const char *msg, const char *fields)
{
    char head[4096], *line = NULL;
    size_t n = 0, flen;

    if (!log_enabled(level))
        return;
    flen = fields ? strlen(fields) : 0;
    if (!log__json || flen < 2 || fields[0] != '{' || fields[flen - 1] != '}') {
        log_msg(level, "%s", msg);
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
    log__write(line, n);
    free(line);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    char line[4096], msg[2048];
    size_t n;
    int k;
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    k = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
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
        log__write(line, n);
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
    log__write(line, n);
}
