/* rconn — REDIS_URL parsing and blocking connections (Sentinel resolution: sentinel.c). */
#include "shared/rconn.h"

#include "shared/pct.h"
#include "shared/sentinel.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

/* A master named by the Sentinels that says it is not one (ROLE) is asked
 * for again this many times in all, after a pause: Sentinels move on within
 * a second of a failover's end. */
#define RCONN_ROLE_TRIES 3
#define RCONN_ROLE_PAUSE_MS 100

/* Copies [s, s+n) into dst (cap dcap) decoding %XX. Returns 0 or -EINVAL. */
static int rconn__copy_decoded(char *dst, size_t dcap, const char *s, size_t n, const char *what,
                               char *err, size_t errlen)
{
    long rc = pct_decode(s, n, dst, dcap, PCT_STRICT);

    if (rc == -EINVAL)
        snprintf(err, errlen, "bad %%-escape in the %s", what);
    else if (rc == -EILSEQ)
        snprintf(err, errlen, "%%00 is not allowed in the %s", what);
    else if (rc == -ENOSPC)
        snprintf(err, errlen, "%s too long (at most %zu bytes)", what, dcap - 1);
    return rc < 0 ? -EINVAL : 0;
}

/* Parses a decimal in [lo, hi] from [s, s+n). Returns 0 or -EINVAL. */
static int rconn__num(const char *s, size_t n, long lo, long hi, int *out)
{
    char tmp[16];
    char *end;
    long v;

    if (n == 0 || n >= sizeof tmp)
        return -EINVAL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (!isdigit((unsigned char)tmp[0]))
        return -EINVAL;
    errno = 0;
    v = strtol(tmp, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

/* userinfo "[user]:password" or "password"-less "user"; [s, s+n). */
static int rconn__userinfo(const char *s, size_t n, rconn_addr_t *a, char *err, size_t errlen)
{
    const char *colon = memchr(s, ':', n);
    int rc;

    if (!colon) {   /* "redis://secret@host": treated as a password, as redis-cli does */
        return rconn__copy_decoded(a->password, sizeof a->password, s, n, "password", err, errlen);
    }
    rc = rconn__copy_decoded(a->user, sizeof a->user, s, (size_t)(colon - s), "user name", err,
                             errlen);
    if (rc == 0)
        rc = rconn__copy_decoded(a->password, sizeof a->password, colon + 1,
                                 n - (size_t)(colon - s) - 1, "password", err, errlen);
    return rc;
}

static int rconn__parse_unix(const char *rest, rconn_addr_t *a, char *err, size_t errlen)
{
    const char *at, *q, *path;
    size_t plen;
    int rc = 0;

    /* unix://[[user]:pass@]/path[?db=N] */
    at = strchr(rest, '@');
    if (at && rest[0] != '/') {
        rc = rconn__userinfo(rest, (size_t)(at - rest), a, err, errlen);
        if (rc < 0)
            return rc;
        rest = at + 1;
    }
    if (rest[0] != '/') {
        snprintf(err, errlen, "unix URL needs an absolute path: unix:///path/to/redis.sock");
        return -EINVAL;
    }
    path = rest;
    q = strchr(path, '?');
    plen = q ? (size_t)(q - path) : strlen(path);
    if (plen < 2) {
        snprintf(err, errlen, "unix URL has no socket path");
        return -EINVAL;
    }
    rc = rconn__copy_decoded(a->path, sizeof a->path, path, plen, "socket path", err, errlen);
    if (rc < 0)
        return rc;
    if (q) {
        const char *v = q + 1;
        if (strncmp(v, "db=", 3) != 0 || rconn__num(v + 3, strlen(v + 3), 0, 100000, &a->db) < 0) {
            snprintf(err, errlen, "unix URL query must be ?db=N with N a database number, not '%s'", v);
            return -EINVAL;
        }
    }
    return 0;
}

/* "host[:port]" or "[v6][:port]" in [host, hend): fills h (cap hcap) and *port
 * (left alone when the text names none). 0 or -EINVAL. */
static int rconn__hostport(const char *host, const char *hend, char *h, size_t hcap, int *port,
                           char *err, size_t errlen)
{
    const char *p = NULL;

    if (host < hend && host[0] == '[') {             /* [v6]:port */
        const char *rb = memchr(host, ']', (size_t)(hend - host));
        if (!rb) {
            snprintf(err, errlen, "unterminated '[' in the host");
            return -EINVAL;
        }
        if (rb + 1 < hend) {
            if (rb[1] != ':') {
                snprintf(err, errlen, "expected ':port' after ']'");
                return -EINVAL;
            }
            p = rb + 2;
        }
        if (rb - host - 1 <= 0 || (size_t)(rb - host - 1) >= hcap) {
            snprintf(err, errlen, "bad host");
            return -EINVAL;
        }
        memcpy(h, host + 1, (size_t)(rb - host - 1));
        h[rb - host - 1] = '\0';
    } else {
        const char *colon = memchr(host, ':', (size_t)(hend - host));
        const char *e = colon ? colon : hend;
        if (e == host) {
            snprintf(err, errlen, "no host (redis://host:port/db)");
            return -EINVAL;
        }
        if ((size_t)(e - host) >= hcap) {
            snprintf(err, errlen, "host name too long");
            return -EINVAL;
        }
        memcpy(h, host, (size_t)(e - host));
        h[e - host] = '\0';
        if (colon)
            p = colon + 1;
    }
    if (p && rconn__num(p, (size_t)(hend - p), 1, 65535, port) < 0) {
        snprintf(err, errlen, "port must be a number 1..65535, not '%.*s'", (int)(hend - p), p);
        return -EINVAL;
    }
    return 0;
}

static int rconn__parse_tcp(const char *rest, rconn_addr_t *a, char *err, size_t errlen)
{
    const char *slash, *at, *host;
    size_t authlen;
    int rc;

    slash = strchr(rest, '/');
    authlen = slash ? (size_t)(slash - rest) : strlen(rest);
    at = memrchr(rest, '@', authlen);
    host = rest;
    if (at) {
        rc = rconn__userinfo(rest, (size_t)(at - rest), a, err, errlen);
        if (rc < 0)
            return rc;
        host = at + 1;
    }
    rc = rconn__hostport(host, rest + authlen, a->host, sizeof a->host, &a->port, err, errlen);
    if (rc < 0)
        return rc;
    if (slash && slash[1]) {
        if (rconn__num(slash + 1, strlen(slash + 1), 0, 100000, &a->db) < 0) {
            snprintf(err, errlen, "database must be a number after the '/', not '%s'", slash + 1);
            return -EINVAL;
        }
    }
    return 0;
}

/* redis+sentinel://[userinfo@]h1[:p1],h2[:p2]/mastername[/db][?sentinel_password=PW] */
static int rconn__parse_sentinel(const char *rest, rconn_addr_t *a, char *err, size_t errlen)
{
    const char *q, *slash, *at, *item, *end, *name, *nend;
    size_t authlen;
    int rc;

    q = strchr(rest, '?');
    end = q ? q : rest + strlen(rest);
    slash = memchr(rest, '/', (size_t)(end - rest));
    if (!slash) {
        snprintf(err, errlen, "Sentinel URL needs the master's name: "
                              "redis+sentinel://host:26379,host2:26379/mastername[/db]");
        return -EINVAL;
    }
    authlen = (size_t)(slash - rest);
    at = memrchr(rest, '@', authlen);
    item = rest;
    if (at) {
        rc = rconn__userinfo(rest, (size_t)(at - rest), a, err, errlen);
        if (rc < 0)
            return rc;
        item = at + 1;
    }
    for (;;) {                                   /* the Sentinels, comma-separated */
        const char *comma = memchr(item, ',', (size_t)(slash - item));
        const char *iend = comma ? comma : slash;
        rconn_hostport_t *hp;
        if (a->nsentinels == CAP_REDIS_SENTINELS) {
            snprintf(err, errlen, "too many Sentinels (at most %d)", CAP_REDIS_SENTINELS);
            return -EINVAL;
        }
        hp = &a->sentinels[a->nsentinels];
        hp->port = 26379;
        rc = rconn__hostport(item, iend, hp->host, sizeof hp->host, &hp->port, err, errlen);
        if (rc < 0)
            return rc;
        a->nsentinels++;
        if (!comma)
            break;
        item = comma + 1;
    }
    name = slash + 1;
    nend = memchr(name, '/', (size_t)(end - name));
    rc = rconn__copy_decoded(a->master, sizeof a->master, name,
                             (size_t)((nend ? nend : end) - name), "master name", err, errlen);
    if (rc < 0)
        return rc;
    if (!a->master[0]) {
        snprintf(err, errlen, "Sentinel URL has an empty master name (.../mastername[/db])");
        return -EINVAL;
    }
    if (nend && nend + 1 < end && rconn__num(nend + 1, (size_t)(end - nend - 1), 0, 100000, &a->db) < 0) {
        snprintf(err, errlen, "database must be a number after the master's name, not '%.*s'",
                 (int)(end - nend - 1), nend + 1);
        return -EINVAL;
    }
    if (q) {
        static const char k[] = "sentinel_password=";
        if (strncmp(q + 1, k, sizeof k - 1) != 0 || strchr(q + 1, '&')) {
            snprintf(err, errlen, "Sentinel URL query must be ?sentinel_password=PW (nothing else)");
            return -EINVAL;
        }
        rc = rconn__copy_decoded(a->sentinel_password, sizeof a->sentinel_password,
                                 q + sizeof k, strlen(q + sizeof k), "Sentinel password", err,
                                 errlen);
        if (rc < 0)
            return rc;
    }
    a->port = 0;
    return 0;
}

int rconn_parse(const char *url, rconn_addr_t *out, char *err, size_t errlen)
{
    rconn_addr_t a;
    int rc;

    memset(&a, 0, sizeof a);
    a.port = 6379;
    if (!url || !*url) {
        snprintf(err, errlen, "empty Redis URL (use redis://host:port/db or unix:///path)");
        return -EINVAL;
    }
    if (strncmp(url, "redis://", 8) == 0) {
        rc = rconn__parse_tcp(url + 8, &a, err, errlen);
    } else if (strncmp(url, "redis+sentinel://", 17) == 0) {
        rc = rconn__parse_sentinel(url + 17, &a, err, errlen);
    } else if (strncmp(url, "unix://", 7) == 0) {
        a.port = 0;
        rc = rconn__parse_unix(url + 7, &a, err, errlen);
    } else if (strncmp(url, "rediss://", 9) == 0) {
        snprintf(err, errlen, "rediss:// (TLS) is not supported by hiredis 0.14; use redis:// or unix://");
        rc = -EINVAL;
    } else {
        snprintf(err, errlen, "unsupported Redis URL scheme (use redis://host:port/db, unix:///path or "
                 "redis+sentinel://host:26379/mastername)");
        rc = -EINVAL;
    }
    if (rc == 0)
        *out = a;
    return rc;
}

const char *rconn_url(void)
{
    const char *u = getenv("REDIS_URL");
    return u && *u ? u : "redis://127.0.0.1:6379/0";
}

const char *rconn_prefix(void)
{
    const char *p = getenv("AIPROXY_REDIS_PREFIX");
    return p && *p ? p : "aiproxy:";
}

void rconn_redacted(const rconn_addr_t *a, char *out, size_t n)
{
    size_t at;
    int i;

    if (n == 0)
        return;
    if (a->path[0]) {
        snprintf(out, n, "unix://%s?db=%d", a->path, a->db);
    } else if (!a->master[0]) {
        if (strchr(a->host, ':'))
            snprintf(out, n, "redis://[%s]:%d/%d", a->host, a->port, a->db);
        else
            snprintf(out, n, "redis://%s:%d/%d", a->host, a->port, a->db);
    } else {
        snprintf(out, n, "redis+sentinel://");
        for (i = 0; i < a->nsentinels; i++) {
            const rconn_hostport_t *s = &a->sentinels[i];
            at = strlen(out);
            snprintf(out + at, n - at, strchr(s->host, ':') ? "%s[%s]:%d" : "%s%s:%d",
                     i ? "," : "", s->host, s->port);
        }
        at = strlen(out);
        snprintf(out + at, n - at, "/%s/%d", a->master, a->db);
    }
}

unsigned rconn_epoch(void)
{
    return sentinel_epoch();
}

int rconn_reply_lost(const redisReply *r)
{
    static const char *const codes[] = {"READONLY", "LOADING", "MASTERDOWN"};
    size_t i;

    if (!r || r->type != REDIS_REPLY_ERROR || !r->str)
        return 0;
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        size_t n = strlen(codes[i]);
        if (strncmp(r->str, codes[i], n) == 0 && (r->str[n] == ' ' || r->str[n] == '\0'))
            return 1;
    }
    /* Redis 6 wraps a script's failed write: "ERR Error running script ...: -READONLY ..." */
    return strstr(r->str, "-READONLY ") != NULL;
}

/* Runs one command and expects a status/OK reply. */
static int rconn__cmd_ok(redisContext *c, int argc, const char **argv, const char *what,
                         const char *shown, char *err, size_t errlen)
{
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    int rc = 0;

    if (!r) {
        snprintf(err, errlen, "Redis at %s: %s failed: %s", shown, what, c->errstr);
        rc = -EIO;
    } else if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "Redis at %s: %s refused: %s", shown, what, r->str);
        rc = -EACCES;
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

/* Connects to the plain (TCP or unix) address a: connect, AUTH, SELECT, all
 * bounded by tv; `shown` names it in err. The context or NULL. */
static redisContext *rconn__open(const rconn_addr_t *a, struct timeval tv, const char *shown,
                                 char *err, size_t errlen)
{
    redisContext *c = NULL, *ret = NULL;
    char dbs[16];

    c = a->path[0] ? redisConnectUnixWithTimeout(a->path, tv)
                   : redisConnectWithTimeout(a->host, a->port, tv);
    if (!c) {
        snprintf(err, errlen, "cannot reach Redis at %s: out of memory", shown);
        goto out;
    }
    if (c->err) {
        snprintf(err, errlen, "cannot reach Redis at %s: %s", shown, c->errstr);
        goto out;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(err, errlen, "Redis at %s: cannot set timeout: %s", shown, c->errstr);
        goto out;
    }
    if (a->password[0]) {
        const char *argv[3] = {"AUTH", a->user[0] ? a->user : a->password, a->password};
        if (rconn__cmd_ok(c, a->user[0] ? 3 : 2, argv, "AUTH", shown, err, errlen) < 0)
            goto out;
    }
    if (a->db) {
        const char *argv[2] = {"SELECT", dbs};
        snprintf(dbs, sizeof dbs, "%d", a->db);
        if (rconn__cmd_ok(c, 2, argv, "SELECT", shown, err, errlen) < 0)
            goto out;
    }
    ret = c;
    c = NULL;
out:
    if (c)
        redisFree(c);
    return ret;
}

/* ROLE on c: 1 master, 0 not (or no answer). */
static int rconn__is_master(redisContext *c)
{
    redisReply *r = redisCommand(c, "ROLE");
    int rc = sentinel_parse_role(r) == 1;

    if (r)
        freeReplyObject(r);
    return rc;
}

/* A Sentinel address: resolve, connect, check ROLE; a master that is not (yet
 * or any more) one is asked for again after a pause, RCONN_ROLE_TRIES times.
 * The context with *m the plain address it reached, or NULL with *rc and err. */
static redisContext *rconn__sentinel_open(const rconn_addr_t *a, int timeout_ms, struct timeval tv,
                                          rconn_addr_t *m, int *rc, char *err, size_t errlen)
{
    char shown[512];
    redisContext *c = NULL;
    int tries;

    *m = *a;
    m->master[0] = '\0';
    m->nsentinels = 0;
    m->sentinel_password[0] = '\0';
    for (tries = 1;; tries++) {
        *rc = sentinel_ask(a, timeout_ms, m->host, sizeof m->host, &m->port, err, errlen);
        if (*rc < 0)
            return NULL;
        snprintf(shown, sizeof shown, "%s%s%s:%d (master '%s' from Sentinel)",
                 strchr(m->host, ':') ? "[" : "", m->host, strchr(m->host, ':') ? "]" : "", m->port,
                 a->master);
        c = rconn__open(m, tv, shown, err, errlen);
        if (!c) {
            *rc = -ECONNREFUSED;
            return NULL;
        }
        if (rconn__is_master(c)) {
            sentinel_watch(a, m->host, m->port);
            return c;
        }
        redisFree(c);
        c = NULL;
        if (tries >= RCONN_ROLE_TRIES) {
            snprintf(err, errlen, "Redis %s is not a master after %d tries (a failover under way?)",
                     shown, tries);
            *rc = -ECONNREFUSED;
            return NULL;
        }
        nanosleep(&(struct timespec){0, RCONN_ROLE_PAUSE_MS * 1000000L}, NULL);
    }
}

int rconn_resolve(const rconn_addr_t *a, int timeout_ms, rconn_addr_t *out, char *err,
                  size_t errlen)
{
    redisContext *c;
    struct timeval tv;
    rconn_addr_t m;
    int rc = 0;

    if (!a->master[0]) {
        *out = *a;
        return 0;
    }
    if (timeout_ms <= 0)
        timeout_ms = 2000;
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    c = rconn__sentinel_open(a, timeout_ms, tv, &m, &rc, err, errlen);
    if (!c)
        return rc;
    redisFree(c);
    *out = m;
    return 0;
}

redisContext *rconn_connect(const char *url, int timeout_ms, char *err, size_t errlen)
{
    rconn_addr_t a, m;
    struct timeval tv;
    char shown[600];
    int rc;

    if (rconn_parse(url, &a, err, errlen) < 0) {
        char why[256];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "bad REDIS_URL: %s", why);
        return NULL;
    }
    if (timeout_ms <= 0)
        timeout_ms = 2000;
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    if (a.master[0])
        return rconn__sentinel_open(&a, timeout_ms, tv, &m, &rc, err, errlen);
    rconn_redacted(&a, shown, sizeof shown);
    return rconn__open(&a, tv, shown, err, errlen);
}
