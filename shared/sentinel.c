/* sentinel — asking Redis Sentinels where the master is (see sentinel.h). */
#include "shared/sentinel.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* The index of the Sentinel that answered last, tried first next time (one
 * REDIS_URL per process; another URL's index only changes where we start). */
static atomic_int sentinel__front;

int sentinel_front(void)
{
    return atomic_load(&sentinel__front);
}

int sentinel_parse_master(const redisReply *r, char *host, size_t hostcap, int *port, char *err,
                          size_t errlen)
{
    const redisReply *h, *p;
    char *end;
    long v;

    if (!r) {
        snprintf(err, errlen, "no reply");
        return -EPROTO;
    }
    if (r->type == REDIS_REPLY_NIL) {
        snprintf(err, errlen, "unknown master");
        return -ENOENT;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s", r->str ? r->str : "error");
        return -EIO;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        snprintf(err, errlen, "unexpected reply to SENTINEL get-master-addr-by-name");
        return -EPROTO;
    }
    h = r->element[0];
    p = r->element[1];
    if (h->type != REDIS_REPLY_STRING || p->type != REDIS_REPLY_STRING || h->len == 0 ||
        h->len >= hostcap || memchr(h->str, '\0', h->len)) {
        snprintf(err, errlen, "unexpected address in the reply to SENTINEL get-master-addr-by-name");
        return -EPROTO;
    }
    errno = 0;
    v = strtol(p->str, &end, 10);
    if (errno || end == p->str || *end || v < 1 || v > 65535) {
        snprintf(err, errlen, "unexpected port '%.16s' in the reply to SENTINEL "
                              "get-master-addr-by-name", p->str);
        return -EPROTO;
    }
    memcpy(host, h->str, h->len);
    host[h->len] = '\0';
    *port = (int)v;
    return 0;
}

int sentinel_parse_role(const redisReply *r)
{
    const redisReply *e;

    if (!r)
        return -EPROTO;
    if (r->type == REDIS_REPLY_ERROR)
        return 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1)
        return -EPROTO;
    e = r->element[0];
    if (e->type != REDIS_REPLY_STRING && e->type != REDIS_REPLY_STATUS)
        return -EPROTO;
    return strcmp(e->str, "master") == 0;
}

int sentinel_ask_one(const rconn_addr_t *a, const rconn_hostport_t *s, struct timeval tv,
                             char *host, size_t hostcap, int *port, char *why, size_t whylen)
{
    redisContext *c = redisConnectWithTimeout(s->host, s->port, tv);
    redisReply *r = NULL;
    char txt[256];
    int rc = -EHOSTUNREACH;

    if (!c || c->err) {
        snprintf(why, whylen, "%s:%d: %s", s->host, s->port, c ? c->errstr : "out of memory");
        goto out;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(why, whylen, "%s:%d: %s", s->host, s->port, c->errstr);
        goto out;
    }
    if (a->sentinel_password[0]) {
        r = redisCommand(c, "AUTH %s", a->sentinel_password);
        if (!r) {
            snprintf(why, whylen, "%s:%d: %s", s->host, s->port, c->errstr);
            goto out;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(why, whylen, "%s:%d refused AUTH: %s", s->host, s->port, r->str);
            rc = -EIO;
            goto out;
        }
        freeReplyObject(r);
    }
    r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", a->master);
    if (!r) {
        snprintf(why, whylen, "%s:%d: %s", s->host, s->port, c->errstr);
        goto out;
    }
    rc = sentinel_parse_master(r, host, hostcap, port, txt, sizeof txt);
    if (rc < 0)
        snprintf(why, whylen, "%s:%d: %s", s->host, s->port, txt);
out:
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    return rc;
}

int sentinel_ask(const rconn_addr_t *a, int timeout_ms, char *host, size_t hostcap, int *port,
                 char *err, size_t errlen)
{
    struct timeval tv;
    char shown[1024], why[640] = "no Sentinel in the URL";
    int n = a->nsentinels, first = atomic_load(&sentinel__front), k, unknown = 0, rc = -EHOSTUNREACH;

    if (timeout_ms <= 0 || timeout_ms > SENTINEL_TIMEOUT_MS)
        timeout_ms = SENTINEL_TIMEOUT_MS;
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    rconn_redacted(a, shown, sizeof shown);
    for (k = 0; k < n; k++) {
        int i = (first + k) % n;
        rc = sentinel_ask_one(a, &a->sentinels[i], tv, host, hostcap, port, why, sizeof why);
        if (rc == 0) {
            if (i != first)
                atomic_store(&sentinel__front, i);
            return 0;
        }
        if (rc == -ENOENT)
            unknown++;
    }
    if (unknown) {
        snprintf(err, errlen, "the Sentinels of %s do not know a master named '%s' "
                              "(%d of %d answered so; check the name in REDIS_URL)",
                 shown, a->master, unknown, n);
        return -ENOENT;
    }
    snprintf(err, errlen, "no Sentinel reachable for %s (last: %s)", shown, why);
    return -EHOSTUNREACH;
}
