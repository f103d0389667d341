/* auth_apiman — see auth_apiman.h. */
#include "fcgi/auth/auth_apiman.h"
#include "shared/caps.h"

#include "fcgi/auth/auth_cred.h"

#include "shared/log.h"
#include "shared/url.h"
#include "shared/sha256.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>


int auth_apiman_url(const auth_conf_t *conf, char *out, size_t outlen)
{
    const char *base = conf->gateway_url, *api = conf->probe_api, *path = conf->probe_path;
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    while (*api == '/')
        api++;
    while (path && *path == '/')
        path++;
    int n;
    if (path && *path)
        n = snprintf(out, outlen, "%.*s/%s/%s", (int)blen, base, api, path);
    else
        n = snprintf(out, outlen, "%.*s/%s", (int)blen, base, api);
    return (n < 0 || (size_t)n >= outlen) ? -ENOSPC : 0;
}

int auth_apiman_cache_key(const char *prefix, const char *key, size_t len, char *out,
                          size_t outlen)
{
    char hex[SHA256_HEX_LEN + 1];
    sha256_hex(key, len, hex);
    int n = snprintf(out, outlen, "%sauth:apiman:%s", prefix ? prefix : "", hex);
    return (n < 0 || (size_t)n >= outlen) ? -ENOSPC : 0;
}

/* The gateway's body is not needed: drop it without buffering. */
static size_t auth_apiman__discard(char *p, size_t sz, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return sz * n;
}

/* -1 when the cache has no answer (or Redis failed), else 0/1. */
static int auth_apiman__cache_get(redisContext *rc, const char *ckey)
{
    int v = -1;
    if (!rc || rc->err)
        return -1;
    redisReply *r = redisCommand(rc, "GET %s", ckey);
    if (!r) {
        log_warn("auth: apiman cache read failed (%s); probing uncached", rc->errstr);
        goto out;
    }
    if (r->type == REDIS_REPLY_STRING && r->len == 1 && (r->str[0] == '0' || r->str[0] == '1'))
        v = r->str[0] == '1';
out:
    if (r)
        freeReplyObject(r);
    return v;
}

static void auth_apiman__cache_set(redisContext *rc, const char *ckey, int ok, long ttl)
{
    if (!rc || rc->err || ttl <= 0)
        return;
    redisReply *r = redisCommand(rc, "SET %s %s EX %ld", ckey, ok ? "1" : "0", ttl);
    if (!r)
        log_warn("auth: apiman cache write failed (%s)", rc->errstr);
    else
        freeReplyObject(r);
}

/* 1 accept, 0 reject (definite), -1 failure (not cacheable). */
static int auth_apiman__probe(const auth_conf_t *conf, const char *key, size_t len)
{
    int verdict = -1;
    char url[CAP_APIMAN_URL], shown[CAP_APIMAN_URL];
    CURL *h = NULL;
    struct curl_slist *hdrs = NULL;
    char line[CAP_APIMAN_HDR];
    if (auth_apiman_url(conf, url, sizeof(url)) != 0) {
        log_warn("auth: apiman probe URL too long; rejecting");
        goto out;
    }
    int n = snprintf(line, sizeof(line), "%s: %.*s", conf->api_key_header, (int)len, key);
    if (n < 0 || (size_t)n >= sizeof(line))
        goto out;
    h = curl_easy_init();
    hdrs = curl_slist_append(NULL, line);
    if (!h || !hdrs) {
        log_warn("auth: apiman probe: out of memory; rejecting");
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, conf->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, conf->timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, auth_apiman__discard);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        log_warn("auth: apiman gateway %s unreachable (%s); rejecting (fail closed)",
                 url_redact(url, shown, sizeof(shown)), curl_easy_strerror(cc));
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300)
        verdict = 1;
    else if (status == 401 || status == 403)
        verdict = 0;
    else
        log_warn("auth: apiman gateway %s answered %ld; rejecting (fail closed)",
                 url_redact(url, shown, sizeof(shown)), status);
out:
    curl_slist_free_all(hdrs);
    if (h)
        curl_easy_cleanup(h);
    return verdict;
}

int auth_apiman_check(const auth_conf_t *conf, const char *key, size_t len, reg_t *reg)
{
    const char *prefix = reg ? reg_prefix(reg) : "";
    int ok = 0;
    char ckey[CAP_APIMAN_CKEY];
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x20 || c == 0x7f)
            goto out;    /* would split the probe's header: not a key */
    }
    int have_ckey = auth_apiman_cache_key(prefix, key, len, ckey, sizeof(ckey)) == 0;
    if (have_ckey && conf->cache_ttl > 0) {
        int cached = auth_apiman__cache_get(reg_redis(reg), ckey);
        reg_release(reg);     /* not held across the probe */
        if (cached >= 0) {
            ok = cached;
            goto out;
        }
    }
    int v = auth_apiman__probe(conf, key, len);
    if (v >= 0 && have_ckey) {
        auth_apiman__cache_set(reg_redis(reg), ckey, v, conf->cache_ttl);
        reg_release(reg);
    }
    ok = v == 1;
out:
    return ok;
}
