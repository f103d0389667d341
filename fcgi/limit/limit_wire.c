/* limit_wire — the limiter's pure parts (limit_wire.h). */
#include "fcgi/limit/limit_wire.h"

#include "shared/jget.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* A limit above this is taken as this: the scripts' arithmetic stays exact
 * in a double, and no real policy comes near it. */
#define LIMIT__MAX 1000000000000000LL

static long long limit__num(json_object *o, const char *key)
{
    long long n = (long long)jget_int64(o, key, 0);

    return n <= 0 ? 0 : n > LIMIT__MAX ? LIMIT__MAX : n;
}

int limit_pol_from(json_object *policy, limit_pol_t *out)
{
    json_object *b = jget_obj(policy, "budget");

    memset(out, 0, sizeof(*out));
    if (!policy)
        return 0;
    out->rpm = limit__num(policy, "rpm");
    out->tpm = limit__num(policy, "tpm");
    out->conc = limit__num(policy, "max_concurrent");
    out->day = limit__num(b, "tokens_per_day");
    out->month = limit__num(b, "tokens_per_month");
    return (out->rpm || out->tpm || out->conc || out->day || out->month) ? 1 : 0;
}

int limit_parse_gate(const redisReply *rep, limit_verdict_t *v)
{
    long long n[10] = { 0 };

    memset(v, 0, sizeof(*v));
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 9 || rep->elements > 10)
        return -EIO;
    for (size_t i = 0; i < rep->elements; i++) {
        if (!rep->element[i] || rep->element[i]->type != REDIS_REPLY_INTEGER)
            return -EIO;
        n[i] = rep->element[i]->integer;
    }
    if (n[0] < LIMIT_OK || n[0] > LIMIT_MONTH)
        return -EIO;
    v->verdict = (int)n[0];
    v->req_remaining = n[1];
    v->req_reset_ms = n[2];
    v->tok_remaining = n[3];
    v->tok_reset_ms = n[4];
    v->retry_ms = n[5];
    v->used_day = n[6];
    v->used_month = n[7];
    v->inflight = n[8];
    v->now_us = n[9];
    return 0;
}

/* left >= a tenth of lim (lim 0: no such limit) */
static int limit__room(long long lim, long long left, long long floor)
{
    return lim <= 0 || (left >= floor && left * 10 >= lim);
}

int limit_headroom(const limit_pol_t *pol, const limit_verdict_t *v)
{
    return v->verdict == LIMIT_OK && limit__room(pol->rpm, v->req_remaining, 2) &&
           limit__room(pol->tpm, v->tok_remaining, 1) &&
           limit__room(pol->conc, pol->conc - v->inflight, 2) &&
           limit__room(pol->day, pol->day - v->used_day, 1) &&
           limit__room(pol->month, pol->month - v->used_month, 1);
}

static void limit__head(limit_cmd_t *c, const char *sha, const char *base)
{
    c->argc = 0;
    c->argv[c->argc++] = "EVALSHA";
    c->argv[c->argc++] = sha;
    c->argv[c->argc++] = "1";
    c->argv[c->argc++] = base;
}

static void limit__arg(limit_cmd_t *c, int slot, long long n)
{
    snprintf(c->num[slot], sizeof(c->num[slot]), "%lld", n);
    c->argv[c->argc++] = c->num[slot];
}

void limit_cmd_gate(limit_cmd_t *c, const char *sha, const char *base, const limit_pol_t *pol,
                    const char *member, long long lease_ms)
{
    limit__head(c, sha, base);
    limit__arg(c, 0, pol->rpm);
    limit__arg(c, 1, pol->tpm);
    limit__arg(c, 2, pol->conc);
    limit__arg(c, 3, pol->day);
    limit__arg(c, 4, pol->month);
    c->argv[c->argc++] = pol->conc && member ? member : "";
    limit__arg(c, 5, lease_ms);
}

void limit_cmd_end(limit_cmd_t *c, const char *sha, const char *base, const limit_pol_t *pol,
                   const char *member, long long tokens)
{
    limit__head(c, sha, base);
    limit__arg(c, 0, pol->tpm);
    limit__arg(c, 1, pol->day);
    limit__arg(c, 2, pol->month);
    c->argv[c->argc++] = member ? member : "";
    limit__arg(c, 3, tokens < 0 ? 0 : tokens);
}

int limit_base(char *buf, size_t len, const char *prefix, const char *id)
{
    int n = snprintf(buf, len, "%slim:%s:", prefix ? prefix : "", id ? id : "");

    return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

const char *limit_duration(long long ms, char *buf, size_t len)
{
    long long h, m, s, frac;
    int n = 0;

    if (ms < 0)
        ms = 0;
    if (ms == 0 || ms < 1000) {
        snprintf(buf, len, ms ? "%lldms" : "0s", ms);
        return buf;
    }
    h = ms / 3600000;
    m = ms / 60000 % 60;
    s = ms / 1000 % 60;
    frac = ms % 1000;
    if (h)
        n = snprintf(buf, len, "%lldh%lldm", h, m);
    else if (m)
        n = snprintf(buf, len, "%lldm", m);
    if (n < 0 || (size_t)n >= len)
        return buf;
    if (frac == 0) {
        snprintf(buf + n, len - (size_t)n, "%llds", s);
    } else {
        char f[8];
        size_t k;
        snprintf(f, sizeof(f), "%03lld", frac);
        for (k = strlen(f); k > 0 && f[k - 1] == '0'; k--)
            f[k - 1] = '\0';
        snprintf(buf + n, len - (size_t)n, "%lld.%ss", s, f);
    }
    return buf;
}

static limit_hdr_t *limit__hdr(limit_hdr_t *out, size_t max, size_t *n, const char *name)
{
    if (*n >= max)
        return NULL;
    out[*n].name = name;
    out[*n].value[0] = '\0';
    return &out[(*n)++];
}

#define LIMIT__NUM(name, val) do { \
        limit_hdr_t *h_ = limit__hdr(out, max, &n, name); \
        if (h_) snprintf(h_->value, sizeof(h_->value), "%lld", (long long)(val)); \
    } while (0)
#define LIMIT__DUR(name, val) do { \
        limit_hdr_t *h_ = limit__hdr(out, max, &n, name); \
        if (h_) limit_duration(val, h_->value, sizeof(h_->value)); \
    } while (0)

size_t limit_headers(const limit_pol_t *pol, const limit_verdict_t *v, limit_hdr_t *out,
                     size_t max)
{
    size_t n = 0;
    int budget = v->verdict == LIMIT_DAY || v->verdict == LIMIT_MONTH;

    if (pol->rpm) {
        LIMIT__NUM("x-ratelimit-limit-requests", pol->rpm);
        LIMIT__NUM("x-ratelimit-remaining-requests", v->req_remaining);
        LIMIT__DUR("x-ratelimit-reset-requests", v->req_reset_ms);
    }
    if (pol->tpm) {
        LIMIT__NUM("x-ratelimit-limit-tokens", pol->tpm);
        LIMIT__NUM("x-ratelimit-remaining-tokens", v->tok_remaining);
        LIMIT__DUR("x-ratelimit-reset-tokens", v->tok_reset_ms);
    }
    if (v->verdict == LIMIT_OK)
        return n;
    if (v->verdict != LIMIT_MONTH) {
        LIMIT__NUM("Retry-After", v->retry_ms <= 0 ? 1 : (v->retry_ms + 999) / 1000);
        if (!budget)
            LIMIT__NUM("retry-after-ms", v->retry_ms <= 0 ? 1 : v->retry_ms);
    }
    if (budget) {
        limit_hdr_t *h = limit__hdr(out, max, &n, "x-should-retry");
        if (h)
            snprintf(h->value, sizeof(h->value), "false");
    }
    return n;
}

int limit_refusal(const limit_pol_t *pol, const limit_verdict_t *v, aip_err_t *e)
{
    char d[32];

    limit_duration(v->retry_ms, d, sizeof(d));
    switch (v->verdict) {
    case LIMIT_RPM:
        return aip_err_set(e, 429, "rate_limit_error", "rate_limit_exceeded",
                           "Rate limit reached on requests per minute (RPM): limit %lld. Please "
                           "try again in %s.", pol->rpm, d);
    case LIMIT_TPM:
        return aip_err_set(e, 429, "rate_limit_error", "rate_limit_exceeded",
                           "Rate limit reached on tokens per minute (TPM): limit %lld, the "
                           "previous requests used it up. Please try again in %s.", pol->tpm, d);
    case LIMIT_CONC:
        return aip_err_set(e, 429, "rate_limit_error", "rate_limit_exceeded",
                           "Too many concurrent requests: limit %lld in flight (max_concurrent). "
                           "Please try again when one of them has finished.", pol->conc);
    case LIMIT_DAY:
        return aip_err_set(e, 429, "rate_limit_error", "insufficient_quota",
                           "Daily token budget spent: %lld of %lld tokens used today (UTC). It "
                           "resets at midnight UTC, in %s.", v->used_day, pol->day, d);
    case LIMIT_MONTH:
        return aip_err_set(e, 429, "rate_limit_error", "insufficient_quota",
                           "Monthly token budget spent: %lld of %lld tokens used this month "
                           "(UTC). It resets on the first of next month, in %s.",
                           v->used_month, pol->month, d);
    default:
        return aip_err_set(e, 500, "api_error", NULL, "the limiter refused the request");
    }
}
