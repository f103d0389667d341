/* rconn — REDIS_URL parsing and blocking connections. */
#include "shared/rconn.h"

#include "shared/pct.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

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

static int rconn__parse_tcp(const char *rest, rconn_addr_t *a, char *err, size_t errlen)
{
    const char *slash, *at, *host, *hend, *port = NULL;
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
    hend = rest + authlen;
    if (host[0] == '[') {                           /* [v6]:port */
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
            port = rb + 2;
        }
        if (rb - host - 1 <= 0 || (size_t)(rb - host - 1) >= sizeof a->host) {
            snprintf(err, errlen, "bad host");
            return -EINVAL;
        }
        memcpy(a->host, host + 1, (size_t)(rb - host - 1));
        a->host[rb - host - 1] = '\0';
    } else {
        const char *colon = memchr(host, ':', (size_t)(hend - host));
        const char *e = colon ? colon : hend;
        if (e == host) {
            snprintf(err, errlen, "no host (redis://host:port/db)");
            return -EINVAL;
        }
        if ((size_t)(e - host) >= sizeof a->host) {
            snprintf(err, errlen, "host name too long");
            return -EINVAL;
        }
        memcpy(a->host, host, (size_t)(e - host));
        a->host[e - host] = '\0';
        if (colon)
            port = colon + 1;
    }
    if (port && rconn__num(port, (size_t)(hend - port), 1, 65535, &a->port) < 0) {
        snprintf(err, errlen, "port must be a number 1..65535, not '%.*s'", (int)(hend - port), port);
        return -EINVAL;
    }
    if (slash && slash[1]) {
        if (rconn__num(slash + 1, strlen(slash + 1), 0, 100000, &a->db) < 0) {
            snprintf(err, errlen, "database must be a number after the '/', not '%s'", slash + 1);
            return -EINVAL;
        }
    }
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
    } else if (strncmp(url, "unix://", 7) == 0) {
        a.port = 0;
        rc = rconn__parse_unix(url + 7, &a, err, errlen);
    } else if (strncmp(url, "rediss://", 9) == 0) {
        snprintf(err, errlen, "rediss:// (TLS) is not supported by hiredis 0.14; use redis:// or unix://");
        rc = -EINVAL;
    } else {
        snprintf(err, errlen, "unsupported Redis URL scheme (use redis://host:port/db or unix:///path)");
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

/* The URL for messages, without the password. */
static void rconn__redacted(const rconn_addr_t *a, char *out, size_t n)
{
    if (a->path[0])
        snprintf(out, n, "unix://%s?db=%d", a->path, a->db);
    else if (strchr(a->host, ':'))
        snprintf(out, n, "redis://[%s]:%d/%d", a->host, a->port, a->db);
    else
        snprintf(out, n, "redis://%s:%d/%d", a->host, a->port, a->db);
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

redisContext *rconn_connect(const char *url, int timeout_ms, char *err, size_t errlen)
{
    rconn_addr_t a;
    redisContext *c = NULL, *ret = NULL;
    struct timeval tv;
    char shown[600], dbs[16];

    if (rconn_parse(url, &a, err, errlen) < 0) {
        char why[256];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "bad REDIS_URL: %s", why);
        goto out;
    }
    rconn__redacted(&a, shown, sizeof shown);
    if (timeout_ms <= 0)
        timeout_ms = 2000;
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    c = a.path[0] ? redisConnectUnixWithTimeout(a.path, tv)
                  : redisConnectWithTimeout(a.host, a.port, tv);
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
    if (a.password[0]) {
        const char *argv[3] = {"AUTH", a.user[0] ? a.user : a.password, a.password};
        if (rconn__cmd_ok(c, a.user[0] ? 3 : 2, argv, "AUTH", shown, err, errlen) < 0)
            goto out;
    }
    if (a.db) {
        const char *argv[2] = {"SELECT", dbs};
        snprintf(dbs, sizeof dbs, "%d", a.db);
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
