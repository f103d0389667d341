/* auth — the /v1 credential check: static keys, then Apiman (docs/auth.md).
 * The chain is rebuilt from the registry snapshot on every request (it is a
 * few borrowed pointers), so an edit of the settings in Redis applies at once. */
#include "fcgi/auth/auth.h"

#include "fcgi/auth/auth_apiman.h"
#include "fcgi/auth/auth_conf.h"
#include "fcgi/auth/auth_cred.h"
#include "fcgi/auth/auth_kcache.h"
#include "fcgi/auth/auth_keys.h"
#include "shared/cfg.h"
#include "shared/keypol.h"
#include "shared/log.h"
#include "shared/sha256.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The static provider: any candidate whose hash equals any configured key;
 * returns 1 + the index of the first such candidate, or 0.
 * The registry holds "sha256:<hex>" (cfg_check_settings); a raw entry left by
 * an older registry is still compared as it is until the next seed rewrites
 * it. Every key is compared (no early exit) with auth_cred_equal, so timing
 * tells neither which one matched nor where a guess differs. */
/* The SHA-256 of a configured plain-text static key, remembered per thread
 * (the configured keys are few and change only with the registry): a
 * request then hashes only its own candidate, once. Looked up by the
 * configured key's bytes, which are not the caller's: no timing of the
 * candidate is involved. */
#define AUTH__KD_SLOTS 8
#define AUTH__KD_MAX 160

static __thread struct {
    size_t len;
    char key[AUTH__KD_MAX];
    unsigned char d[SHA256_DIGEST_LEN];
} auth__kd[AUTH__KD_SLOTS];
static __thread unsigned auth__kd_next;

static void auth__key_digest(const char *ks, size_t len, unsigned char d[SHA256_DIGEST_LEN])
{
    unsigned i;

    if (len >= AUTH__KD_MAX) {
        sha256(ks, len, d);
        return;
    }
    for (i = 0; i < AUTH__KD_SLOTS; i++)
        if (auth__kd[i].len == len && memcmp(auth__kd[i].key, ks, len) == 0) {
            memcpy(d, auth__kd[i].d, SHA256_DIGEST_LEN);
            return;
        }
    i = auth__kd_next++ % AUTH__KD_SLOTS;
    sha256(ks, len, d);
    memcpy(auth__kd[i].key, ks, len);
    auth__kd[i].len = len;
    memcpy(auth__kd[i].d, d, SHA256_DIGEST_LEN);
}

/* A candidate's SHA-256, made once per request: the static keys compare
 * it, the key cache and the managed-key lookup are keyed by its hex, and
 * principal ids are cut from it. */
typedef struct auth__dig {
    unsigned char d[SHA256_DIGEST_LEN];
    char hex[SHA256_HEX_LEN + 1];
} auth__dig_t;

static void auth__digest(const auth_cred_t *c, auth__dig_t *out)
{
    static const char digits[] = "0123456789abcdef";

    sha256(c->p, c->len, out->d);
    for (size_t b = 0; b < SHA256_DIGEST_LEN; b++) {
        out->hex[2 * b] = digits[out->d[b] >> 4];
        out->hex[2 * b + 1] = digits[out->d[b] & 15];
    }
    out->hex[SHA256_HEX_LEN] = '\0';
}

/* Which candidate (1-based) a static key accepts, 0 none. Every configured
 * key is compared with every candidate, in constant time, by digest: a
 * plain-text key's digest remembered (auth__key_digest), a hashed key
 * ("sha256:<hex>") compared as text. */
static int auth__static(const auth_conf_t *conf, const auth_cred_t *cands, size_t n,
                        const auth__dig_t *dig)
{
    int ok = 0, which = 0;
    size_t nk = conf->keys ? json_object_array_length(conf->keys) : 0;
    size_t pl = CFG_KEY_HASH_LEN - SHA256_HEX_LEN;   /* "sha256:" */
    for (size_t i = 0; i < n; i++) {
        unsigned char dk[SHA256_DIGEST_LEN];
        int hit = 0;
        for (size_t k = 0; k < nk; k++) {
            json_object *key = json_object_array_get_idx(conf->keys, k);
            const char *ks;
            size_t kl;
            if (!json_object_is_type(key, json_type_string))
                continue;
            ks = json_object_get_string(key);
            kl = (size_t)json_object_get_string_len(key);
            if (cfg_key_is_hash(ks)) {
                hit |= auth_cred_same(dig[i].hex, ks + pl, SHA256_HEX_LEN);
            } else {
                auth__key_digest(ks, kl, dk);
                hit |= auth_cred_same(dig[i].d, dk, SHA256_DIGEST_LEN) && kl == cands[i].len;
            }
        }
        if (hit && !ok)
            which = (int)i + 1;
        ok |= hit;
    }
    return which;
}

static int auth__trusted(http_req_t *req, const auth_conf_t *conf)
{
    const char *v = http_header(req, conf->header);
    if (!v)
        return 0;
    return auth_cred_equal(v, strlen(v), conf->secret, strlen(conf->secret));
}

static int auth__reject(http_req_t *req, const char *msg)
{
    json_object *err = json_object_new_object();
    json_object *e = json_object_new_object();
    int rc = -EACCES;
    if (err && e) {
        json_object_object_add(e, "message", json_object_new_string(http_err_msg(req, msg)));
        json_object_object_add(e, "type", json_object_new_string("authentication_error"));
        json_object_object_add(e, "param", NULL);
        json_object_object_add(e, "code", json_object_new_string("invalid_api_key"));
        json_object_object_add(err, "error", e);
        e = NULL;
        http_send_json(req, 401, err, "WWW-Authenticate: Bearer\r\n");
    } else {
        static const char fallback[] =
            "{\"error\":{\"message\":\"Invalid API key\",\"type\":\"authentication_error\","
            "\"param\":null,\"code\":\"invalid_api_key\"}}";
        http_send(req, 401, "application/json", "WWW-Authenticate: Bearer\r\n", fallback,
                  sizeof(fallback) - 1);
    }
    json_object_put(e);
    json_object_put(err);
    return rc;
}

/* Hangs principal p (NULL: memory ran out) on req: req->info.auth and its
 * id as req->info.principal. */
static int auth__principal(http_req_t *req, auth_principal_t *p)
{
    if (!p)
        return -ENOMEM;
    req->info.auth = p;
    req->info.principal = p->id;
    return 0;
}

/* A new principal of `kind` with id "<tag><first `hexn` of h>" (h: the
 * credential's SHA-256 hex), in the request's arena; NULL on ENOMEM. */
static auth_principal_t *auth__new_hex(http_req_t *req, auth_kind_t kind, const char *tag,
                                       const char *h, size_t hexn)
{
    auth_principal_t *p = arena_alloc(req->arena, sizeof(*p));
    char id[128];
    if (!p)
        return NULL;
    snprintf(id, sizeof(id), "%s%.*s", tag, (int)hexn, h);
    p->kind = kind;
    p->id = arena_strdup(req->arena, id);
    return p->id ? p : NULL;
}

/* The trusted_header caller's id: "apiman:" + the client header's value
 * kept to [A-Za-z0-9._-] (at most 64 of them), or "apiman". */
static auth_principal_t *auth__trusted_principal(http_req_t *req, const auth_conf_t *conf)
{
    auth_principal_t *p = arena_alloc(req->arena, sizeof(*p));
    const char *v = conf->client_header ? http_header(req, conf->client_header) : NULL;
    char id[7 + 64 + 1] = "apiman";
    size_t o = 6;
    if (!p)
        return NULL;
    for (; v && *v && o < sizeof(id) - 1; v++) {
        char c = *v;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '_' || c == '-') {
            if (o == 6)
                id[o++] = ':';
            id[o++] = c;
        }
    }
    id[o] = '\0';
    p->kind = AUTH_KIND_APIMAN;
    p->id = arena_strdup(req->arena, id);
    return p->id ? p : NULL;
}

/* An Apiman caller's plan: the plan header's (trusted_header only: in probe
 * mode the client would choose it), else apiman.plan; its policy read from
 * Redis. 0, -EIO (Redis cannot answer), -ENOMEM. */
static int auth__apiman_plan(http_req_t *req, reg_t *reg, const auth_conf_t *conf,
                             auth_principal_t *p)
{
    const char *plan = conf->plan;
    if (conf->apiman == AUTH_APIMAN_TRUSTED && conf->plan_header) {
        const char *v = http_header(req, conf->plan_header);
        if (v && *v && cfg_name_valid(v))
            plan = v;
        else if (v && *v)
            log_warn("auth: %s '%.64s' is not a plan name; using %s", conf->plan_header, v,
                     conf->plan ? conf->plan : "none");
    }
    if (!plan)
        return 0;
    if (!(p->plan = arena_strdup(req->arena, plan)))
        return -ENOMEM;
    {
        /* remembered like a managed key (auth_kcache.h: plan edits are
         * announced on P keys:changed too), under the hash of "plan:<name>" */
        char tag[160], hash[KEYPOL_HASH_LEN + 1];
        unsigned long gen = reg_trust_gen(reg);
        auth_principal_t *memo = NULL, rec = { .kind = AUTH_KIND_APIMAN, .id = "plan" };
        int rc;
        snprintf(tag, sizeof tag, "plan:%s", plan);
        keypol_hash(tag, strlen(tag), hash);
        if ((rc = auth_kcache_get(gen, hash, req->arena, &memo)) == 0) {
            p->policy = memo->policy;
            return 0;
        }
        if (rc == -ENOMEM)
            return rc;
        rc = auth_keys_plan(reg_redis(reg), reg_prefix(reg), plan, req->arena, &p->policy);
        reg_release(reg);
        if (rc == 0) {
            rec.policy = p->policy;
            auth_kcache_put(gen, hash, &rec, 0);
        }
        return rc;
    }
}

int auth_verify(http_req_t *req, reg_t *reg, char *why, size_t whylen)
{
    int rc = 0, which, io = 0, refused = 0;
    auth_conf_t conf;
    char err[256];
    auth_cred_t cands[AUTH_CRED_MAX];
    auth__dig_t dig[AUTH_CRED_MAX];
    size_t n = 0, apikey_len = 0;
    const char *apikey;
    auth_principal_t *p = NULL;
    int rc_conf = auth_conf_from_settings(reg ? reg_settings(reg) : NULL, &conf, err,
                                          sizeof(err));
    req->info.auth = NULL;
    req->info.principal = NULL;
    if (rc_conf != 0)
        log_warn("auth: apiman settings unusable (%s); only static keys can pass", err);
    else if (auth_conf_open(&conf))
        goto out;

    apikey = http_query_param_n(req, "apikey", &apikey_len);
    if (apikey && !auth_cred_clean(apikey, apikey_len)) {
        /* "KEY%00junk" must not pass as KEY: the NUL would cut it */
        snprintf(why, whylen, "The apikey query parameter contains a NUL byte (%%00): send "
                 "the key as it was issued.");
        rc = -EINVAL;
        goto out;
    }
    n = auth_cred_extract(http_header(req, "Authorization"), http_header(req, "X-API-Key"),
                          apikey, cands);
    for (size_t i = 0; i < n; i++)
        auth__digest(&cands[i], &dig[i]);
    if (conf.nkeys > 0 && (which = auth__static(&conf, cands, n, dig)) > 0) {
        rc = auth__principal(req, auth__new_hex(req, AUTH_KIND_STATIC, "static:",
                                                dig[which - 1].hex, 8));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int krc;
        if (!keypol_is_secret(cands[i].p, cands[i].len))
            continue;
        /* a key seen at this registry generation costs no round trip */
        krc = auth_kcache_get(reg_trust_gen(reg), dig[i].hex, req->arena, &p);
        if (krc == -ENOENT) {
            krc = auth_keys_lookup(reg_redis(reg), reg ? reg_prefix(reg) : "", reg_trust_gen(reg),
                                   dig[i].hex, req->arena, &p, why, whylen);
            reg_release(reg);
        }
        if (krc == 0) {
            rc = auth__principal(req, p);
            goto out;
        }
        if (krc == -EACCES)
            refused = 1;   /* why says revoked or expired */
        else if (krc != -ENOENT)
            io = 1;
    }
    if (conf.apiman == AUTH_APIMAN_TRUSTED && auth__trusted(req, &conf))
        p = auth__trusted_principal(req, &conf);
    if (conf.apiman == AUTH_APIMAN_PROBE) {
        for (size_t i = 0; i < n && !p; i++)
            if (auth_apiman_check(&conf, cands[i].p, cands[i].len, reg))
                p = auth__new_hex(req, AUTH_KIND_APIMAN, "apiman:", dig[i].hex, 16);
    }
    if (p) {
        int prc = auth__apiman_plan(req, reg, &conf, p);
        if (prc == -EIO) {
            snprintf(why, whylen, "The caller's plan cannot be read (Redis is unreachable); "
                     "retry shortly.");
            rc = -EAGAIN;
        } else {
            rc = prc < 0 ? prc : auth__principal(req, p);
        }
        goto out;
    }
    if (io) {
        snprintf(why, whylen, "The API key cannot be checked right now (the key store is "
                 "unreachable); retry shortly.");
        rc = -EAGAIN;
        goto out;
    }
    if (!refused)
        snprintf(why, whylen, "%s", n == 0
                 ? "Missing API key: send it as 'Authorization: Bearer <key>', an X-API-Key "
                   "header or the apikey query parameter."
                 : "Invalid API key: none of the credentials sent was accepted.");
    rc = -EACCES;
out:
    if (rc == -ENOMEM) {
        snprintf(why, whylen, "out of memory checking the API key");
        rc = -EAGAIN;
    }
    return rc;
}

int auth_check(http_req_t *req, reg_t *reg)
{
    char why[256];
    int rc = auth_verify(req, reg, why, sizeof(why));

    if (rc == 0)
        return 0;
    if (rc == -EAGAIN) {
        http_add_header(req, "Retry-After", "1");
        http_send_error(req, 503, "api_error", "key_store_unavailable", NULL, "%s", why);
    }
    else if (rc == -EINVAL)
        http_send_error(req, 400, NULL, NULL, "apikey", "%s", why);
    else
        auth__reject(req, why);
    return -EACCES;
}

json_object *auth_describe(reg_t *reg)
{
    auth_conf_t conf;
    char err[256];
    int rc = auth_conf_from_settings(reg ? reg_settings(reg) : NULL, &conf, err, sizeof(err));
    json_object *arr = auth_conf_describe(&conf);
    if (rc != 0 && arr) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "type", json_object_new_string("apiman"));
        json_object_object_add(p, "error", json_object_new_string(err));
        json_object_array_add(arr, p);
    }
    return arr;
}

void auth_log_startup(reg_t *reg)
{
    auth_conf_t conf;
    char err[256];
    int rc = auth_conf_from_settings(reg ? reg_settings(reg) : NULL, &conf, err, sizeof(err));
    if (rc != 0)
        log_error("auth: apiman settings unusable (%s): Apiman keys will be rejected", err);
    if (auth_conf_open(&conf) && rc == 0)
        log_warn("auth: *** /v1 IS OPEN: no proxy_api_keys and no apiman configured; anyone "
                 "who reaches this gateway can use its models ***");
    if (conf.nkeys > 0)
        log_info("auth: /v1 accepts %zu static proxy_api_keys", conf.nkeys);
    if (conf.apiman == AUTH_APIMAN_PROBE)
        log_info("auth: /v1 accepts keys the Apiman gateway %s honours for %s (cache %lds)",
                 conf.gateway_url, conf.probe_api, conf.cache_ttl);
    else if (conf.apiman == AUTH_APIMAN_TRUSTED)
        log_info("auth: /v1 accepts requests whose %s header carries the Apiman secret",
                 conf.header);
}
