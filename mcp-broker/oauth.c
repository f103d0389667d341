/* oauth — the token flow for protected MCP servers (see oauth.h).
 *
 * The flow is plain blocking code (libcurl easy, a blocking Redis
 * connection) run by uv_queue_work, so the broker's loop never waits on an
 * authorization server and the code reads in the spec's order: cache →
 * challenge → protected resource metadata → authorization server metadata →
 * client (configured, metadata document, or registered) → grant → cache.
 * The job works on a copy of the token set; the loop thread adopts the result
 * in the after-work callback, so no field is shared between threads. */
#include "mcp-broker/oauth.h"
#include "mcp-broker/oauthjwt.h"
#include "mcp-broker/oauthwire.h"

#include "shared/buf.h"
#include "shared/jget.h"
#include "shared/log.h"
#include "shared/rconn.h"
#include "shared/sha256.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OAUTH_HTTP_TIMEOUT 10L          /* s, each request to the AS or for metadata */
#define OAUTH_RESP_CAP     (256u * 1024u)
#define OAUTH_REDIS_MS     2000
#define OAUTH_MAX_STEPUPS  1            /* re-asks for a scope the token already claims */
#define OAUTH_REDIRECT     "http://127.0.0.1/aiproxy/oauth/callback"

typedef struct oauth_tokens {
    char access[8192];
    char refresh[4096];
    int64_t expires_at;                 /* unix s, 0 unknown */
    int64_t obtained_at;
    char scope[512];                    /* what we asked for (or were granted) */
    char client_id[512];                /* registered by RFC 7591, "" if none */
    char client_secret[512];
    char client_auth[32];               /* token_endpoint_auth_method of that client */
} oauth_tokens_t;

typedef struct oauth_meta {
    char resource[OAUTHWIRE_URL_MAX];
    char prm_scopes[512];
    int have_prm;
    char issuer[OAUTHWIRE_URL_MAX];
    char token_ep[OAUTHWIRE_URL_MAX];
    char authz_ep[OAUTHWIRE_URL_MAX];
    char reg_ep[OAUTHWIRE_URL_MAX];
    char auth_methods[256];             /* space-separated, "" when not listed */
    int cimd;
} oauth_meta_t;

struct oauth {
    char name[128];
    char url[OAUTHWIRE_URL_MAX];
    char grant[32];
    char *client_id, *client_secret, *jwt_key, *scope, *resource, *cimd_url, *redirect;
    char *seed_refresh;                 /* auth.refresh_token, seeded by an operator */
    char jwt_alg[16];
    oauth_tokens_t tok;                 /* loop thread only */
    int busy;
    int stepups;
    uv_work_t work;
    struct oauth_job *job;
    oauth_done_cb cb;
    void *ud;
};

typedef struct oauth_job {
    const oauth_t *o;                   /* read-only config from the worker */
    int status;
    oauthwire_challenge_t ch;
    oauth_tokens_t tok;                 /* in: the current set; out: the new one */
    int rc;
    char err[512];
} oauth_job_t;

static int oauth_cache_on;

void oauth_cache_enable(int on)
{
    oauth_cache_on = on;
}

static int64_t oauth__now(void)
{
    return (int64_t)time(NULL);
}

static char *oauth__dup(json_object *auth, const char *key)
{
    const char *s = jget_str(auth, key);

    return s && *s ? strdup(s) : NULL;
}

int oauth_new(const char *name, const char *url, json_object *server, oauth_t **out, char *err,
              size_t errlen)
{
    json_object *auth = NULL, *jwt;
    oauth_t *o = NULL;
    const char *g;
    int rc = -EINVAL;

    *out = NULL;
    if (!json_object_object_get_ex(server, "auth", &auth) || !auth)
        return 0;
    if (!json_object_is_type(auth, json_type_object)) {
        snprintf(err, errlen, "MCP server '%s': auth: must be an object", name);
        goto out;
    }
    rc = -ENOMEM;
    o = calloc(1, sizeof(*o));
    if (!o)
        goto out;
    rc = -EINVAL;
    snprintf(o->name, sizeof(o->name), "%s", name);
    snprintf(o->url, sizeof(o->url), "%s", url ? url : "");
    g = jget_str(auth, "grant");
    snprintf(o->grant, sizeof(o->grant), "%s", g && *g ? g : "client_credentials");
    if (strcmp(o->grant, "client_credentials") != 0 && strcmp(o->grant, "authorization_code") != 0 &&
        strcmp(o->grant, "refresh_token") != 0) {
        snprintf(err, errlen, "MCP server '%s': auth.grant: '%.32s' is not supported "
                 "(client_credentials, refresh_token; authorization_code in mcp-probe)", name, g);
        goto out;
    }
    o->client_id = oauth__dup(auth, "client_id");
    o->client_secret = oauth__dup(auth, "client_secret");
    o->scope = oauth__dup(auth, "scope");
    o->resource = oauth__dup(auth, "resource");
    o->cimd_url = oauth__dup(auth, "client_metadata_url");
    o->redirect = oauth__dup(auth, "redirect_uri");
    if (json_object_object_get_ex(auth, "private_key_jwt", &jwt) && jwt) {
        const char *alg = jget_str(jwt, "alg");
        o->jwt_key = oauth__dup(jwt, "key");
        snprintf(o->jwt_alg, sizeof(o->jwt_alg), "%s", alg && *alg ? alg : "ES256");
        if (!o->jwt_key) {
            snprintf(err, errlen, "MCP server '%s': auth.private_key_jwt.key: required (a PEM private key)",
                     name);
            goto out;
        }
    }
    /* an operator-seeded refresh token (see docs/mcp-auth.md) */
    o->seed_refresh = oauth__dup(auth, "refresh_token");
    if (o->seed_refresh)
        snprintf(o->tok.refresh, sizeof(o->tok.refresh), "%s", o->seed_refresh);
    *out = o;
    o = NULL;
    rc = 0;
out:
    oauth_free(o);
    return rc;
}

void oauth_free(oauth_t *o)
{
    if (!o)
        return;
    free(o->client_id);
    free(o->client_secret);
    free(o->jwt_key);
    free(o->scope);
    free(o->resource);
    free(o->cimd_url);
    free(o->redirect);
    free(o->seed_refresh);
    free(o);
}

const char *oauth_token(const oauth_t *o)
{
    return o && o->tok.access[0] ? o->tok.access : NULL;
}

int oauth_busy(const oauth_t *o)
{
    return o && o->busy;
}

static int oauth__stale_at(const oauth_tokens_t *t, int64_t now)
{
    int64_t margin;

    if (!t->access[0])
        return 1;
    if (!t->expires_at)
        return 0;
    margin = (t->expires_at - t->obtained_at) / 10;
    if (margin > 60)
        margin = 60;
    return now >= t->expires_at - margin;
}

int oauth_stale(const oauth_t *o)
{
    return !o || oauth__stale_at(&o->tok, oauth__now());
}

/* ---- HTTP, blocking (worker thread) ---- */

static size_t oauth__write(char *p, size_t size, size_t n, void *ud)
{
    buf_t *b = ud;

    return buf_append(b, p, size * n) < 0 ? 0 : size * n;
}

/* One request; no redirects followed (Location goes to `location` when
 * given). Returns the HTTP status, or -EIO with job->err. */
static long oauth__http(oauth_job_t *j, const char *url, const char *form, const char *ctype,
                        const char *basic, buf_t *resp, char *location, size_t loclen)
{
    CURL *e = curl_easy_init();
    struct curl_slist *h = NULL;
    char line[1200];
    long status = -EIO;
    CURLcode cc;

    if (!e) {
        snprintf(j->err, sizeof(j->err), "out of memory");
        return -EIO;
    }
    h = curl_slist_append(h, "Accept: application/json");
    if (form) {
        snprintf(line, sizeof(line), "Content-Type: %s", ctype);
        h = curl_slist_append(h, line);
    }
    if (basic) {
        snprintf(line, sizeof(line), "Authorization: Basic %s", basic);
        h = curl_slist_append(h, line);
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, OAUTH_HTTP_TIMEOUT);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, OAUTH_HTTP_TIMEOUT);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, oauth__write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "aiproxy-mcp/1");
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (form) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, form);
    }
    cc = curl_easy_perform(e);
    if (cc != CURLE_OK) {
        snprintf(j->err, sizeof(j->err), "%.300s: %s", url, curl_easy_strerror(cc));
    } else {
        char *loc = NULL;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        if (location && curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
            snprintf(location, loclen, "%s", loc);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return status;
}

/* GET url as a JSON object (2xx only); NULL otherwise. */
static json_object *oauth__get_json(oauth_job_t *j, const char *url)
{
    buf_t b;
    json_object *o = NULL;
    long st;

    buf_init(&b, OAUTH_RESP_CAP);
    st = oauth__http(j, url, NULL, NULL, NULL, &b, NULL, 0);
    if (st >= 200 && st < 300)
        o = json_tokener_parse(buf_str(&b));
    if (o && !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
    buf_free(&b);
    return o;
}

/* Space-joins the strings of array obj[key] into out. */
static void oauth__join(json_object *obj, const char *key, char *out, size_t outlen)
{
    json_object *a = jget(obj, key);
    size_t n = 0;

    out[0] = '\0';
    if (!a || !json_object_is_type(a, json_type_array))
        return;
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(a, i));
        int w = snprintf(out + n, outlen - n, "%s%s", n ? " " : "", s ? s : "");
        if (w < 0 || (size_t)w >= outlen - n) {
            out[n] = '\0';
            return;
        }
        n += (size_t)w;
    }
}

static int oauth__has_word(const char *list, const char *w)
{
    size_t l = strlen(w);

    for (const char *p = list; p && *p;) {
        while (*p == ' ')
            p++;
        if (strncmp(p, w, l) == 0 && (p[l] == ' ' || !p[l]))
            return 1;
        while (*p && *p != ' ')
            p++;
    }
    return 0;
}

/* Copies str field key of obj into out when present. */
static void oauth__take(json_object *obj, const char *key, char *out, size_t outlen)
{
    const char *s = jget_str(obj, key);

    if (s)
        snprintf(out, outlen, "%s", s);
}

/* Protected resource metadata, then authorization server metadata. */
static int oauth__discover(oauth_job_t *j, oauth_meta_t *m)
{
    const oauth_t *o = j->o;
    oauthwire_urls_t urls;
    json_object *prm = NULL, *as = NULL;
    int rc = -EPROTO, legacy = 0;

    memset(m, 0, sizeof(*m));
    if (j->ch.resource_metadata[0]) {
        urls.n = 1;
        snprintf(urls.url[0], sizeof(urls.url[0]), "%s", j->ch.resource_metadata);
    } else if (oauthwire_prm_urls(o->url, &urls) < 0) {
        snprintf(j->err, sizeof(j->err), "the server URL is not an http(s) URL");
        goto out;
    }
    for (int i = 0; i < urls.n && !prm; i++)
        prm = oauth__get_json(j, urls.url[i]);
    if (prm) {
        json_object *servers = jget(prm, "authorization_servers");
        const char *res = jget_str(prm, "resource");

        m->have_prm = 1;
        if (res && !oauthwire_resource_matches(res, o->url)) {
            snprintf(j->err, sizeof(j->err), "the protected resource metadata names resource %.150s, "
                     "which is not this server (%.150s): refusing to authorize", res, o->url);
            goto out;
        }
        snprintf(m->resource, sizeof(m->resource), "%s", res ? res : o->url);
        oauth__join(prm, "scopes_supported", m->prm_scopes, sizeof(m->prm_scopes));
        if (servers && json_object_is_type(servers, json_type_array) &&
            json_object_array_length(servers) > 0)
            snprintf(m->issuer, sizeof(m->issuer), "%s",
                     json_object_get_string(json_object_array_get_idx(servers, 0)));
    }
    if (!m->issuer[0]) {
        /* 2025-03-26: no resource metadata; the server's origin is the AS */
        legacy = 1;
        snprintf(m->resource, sizeof(m->resource), "%s", o->url);
        if (oauthwire_origin(o->url, m->issuer, sizeof(m->issuer)) < 0) {
            snprintf(j->err, sizeof(j->err), "the server URL is not an http(s) URL");
            goto out;
        }
    }
    if (o->resource)
        snprintf(m->resource, sizeof(m->resource), "%s", o->resource);
    if (oauthwire_as_urls(m->issuer, &urls) < 0) {
        snprintf(j->err, sizeof(j->err), "authorization server '%.300s' is not an http(s) URL", m->issuer);
        goto out;
    }
    for (int i = 0; i < urls.n && !as; i++)
        as = oauth__get_json(j, urls.url[i]);
    if (as) {
        oauth__take(as, "issuer", m->issuer, sizeof(m->issuer));
        oauth__take(as, "token_endpoint", m->token_ep, sizeof(m->token_ep));
        oauth__take(as, "authorization_endpoint", m->authz_ep, sizeof(m->authz_ep));
        oauth__take(as, "registration_endpoint", m->reg_ep, sizeof(m->reg_ep));
        oauth__join(as, "token_endpoint_auth_methods_supported", m->auth_methods, sizeof(m->auth_methods));
        m->cimd = json_object_get_boolean(jget(as, "client_id_metadata_document_supported"));
    } else if (legacy) {
        /* 2025-03-26 fallback: the default endpoints at the origin */
        snprintf(m->token_ep, sizeof(m->token_ep), "%.1000s/token", m->issuer);
        snprintf(m->authz_ep, sizeof(m->authz_ep), "%.1000s/authorize", m->issuer);
        snprintf(m->reg_ep, sizeof(m->reg_ep), "%.1000s/register", m->issuer);
    }
    if (!m->token_ep[0]) {
        snprintf(j->err, sizeof(j->err), "no authorization server metadata found for %.300s", m->issuer);
        goto out;
    }
    rc = 0;
out:
    json_object_put(prm);
    json_object_put(as);
    return rc;
}

/* RFC 7591: registers a client when none is configured. */
static int oauth__register(oauth_job_t *j, const oauth_meta_t *m, int code_flow)
{
    const oauth_t *o = j->o;
    json_object *req = json_object_new_object(), *grants = json_object_new_array(),
                *uris = json_object_new_array(), *resp = NULL;
    const char *method = m->auth_methods[0] == '\0' || oauth__has_word(m->auth_methods, "client_secret_basic")
                             ? "client_secret_basic"
                         : oauth__has_word(m->auth_methods, "client_secret_post") ? "client_secret_post"
                                                                                  : "none";
    buf_t b;
    long st;
    int rc = -EPROTO;

    buf_init(&b, OAUTH_RESP_CAP);
    json_object_object_add(req, "client_name", json_object_new_string("aiproxy"));
    json_object_array_add(grants, json_object_new_string(code_flow ? "authorization_code"
                                                                   : "client_credentials"));
    json_object_array_add(grants, json_object_new_string("refresh_token"));
    json_object_object_add(req, "grant_types", grants);
    if (code_flow) {
        json_object_array_add(uris, json_object_new_string(o->redirect ? o->redirect : OAUTH_REDIRECT));
        json_object_object_add(req, "response_types", json_object_new_array());
        json_object_array_add(jget(req, "response_types"), json_object_new_string("code"));
    }
    json_object_object_add(req, "redirect_uris", uris);
    json_object_object_add(req, "token_endpoint_auth_method", json_object_new_string(method));
    st = oauth__http(j, m->reg_ep, json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN),
                     "application/json", NULL, &b, NULL, 0);
    if (st < 200 || st >= 300 || !(resp = json_tokener_parse(buf_str(&b))) || !jget_str(resp, "client_id")) {
        if (st >= 0)
            snprintf(j->err, sizeof(j->err), "client registration at %.300s failed (HTTP %ld)", m->reg_ep, st);
        goto out;
    }
    snprintf(j->tok.client_id, sizeof(j->tok.client_id), "%s", jget_str(resp, "client_id"));
    j->tok.client_secret[0] = '\0';
    oauth__take(resp, "client_secret", j->tok.client_secret, sizeof(j->tok.client_secret));
    snprintf(j->tok.client_auth, sizeof(j->tok.client_auth), "%s",
             jget_str(resp, "token_endpoint_auth_method") ? jget_str(resp, "token_endpoint_auth_method")
                                                          : method);
    log_info("mcp %s: registered OAuth client at %s", o->name, m->reg_ep);
    rc = 0;
out:
    json_object_put(req);
    json_object_put(resp);
    buf_free(&b);
    return rc;
}

/* The client identity to use: configured, a metadata document URL, or the
 * registered one (registering first when needed). */
static int oauth__client(oauth_job_t *j, const oauth_meta_t *m, int code_flow, const char **id,
                         const char **secret, const char **method)
{
    const oauth_t *o = j->o;

    *secret = NULL;
    *method = NULL;
    if (o->client_id) {
        *id = o->client_id;
        *secret = o->client_secret;
        return 0;
    }
    if (code_flow && m->cimd && o->cimd_url) {
        *id = o->cimd_url;
        *method = "none";
        return 0;
    }
    if (!j->tok.client_id[0]) {
        if (!m->reg_ep[0]) {
            snprintf(j->err, sizeof(j->err), "no client_id configured and the authorization server "
                     "offers no registration_endpoint");
            return -EPROTO;
        }
        if (oauth__register(j, m, code_flow) < 0)
            return -EPROTO;
    }
    *id = j->tok.client_id;
    *secret = j->tok.client_secret[0] ? j->tok.client_secret : NULL;
    *method = j->tok.client_auth[0] ? j->tok.client_auth : NULL;
    return 0;
}

/* Adds client authentication to the token request: private_key_jwt,
 * client_secret_basic (into basic), client_secret_post, or none. */
static int oauth__client_auth(oauth_job_t *j, const oauth_meta_t *m, buf_t *form, const char *id,
                              const char *secret, const char *method, char *basic, size_t basiclen)
{
    const oauth_t *o = j->o;
    char *jwt = NULL, claims[2048], jti[40], cred[1100];
    unsigned char rnd[16];
    int64_t now = oauth__now();
    int rc = 0;

    basic[0] = '\0';
    if (o->jwt_key && !(method && strcmp(method, "none") == 0)) {
        json_object *c = json_object_new_object();
        FILE *f = fopen("/dev/urandom", "rb");

        if (!f || fread(rnd, 1, sizeof(rnd), f) != sizeof(rnd))
            memset(rnd, 0, sizeof(rnd));
        if (f)
            fclose(f);
        oauthwire_b64url(rnd, sizeof(rnd), jti, sizeof(jti));
        json_object_object_add(c, "iss", json_object_new_string(id));
        json_object_object_add(c, "sub", json_object_new_string(id));
        json_object_object_add(c, "aud", json_object_new_string(m->issuer));
        json_object_object_add(c, "iat", json_object_new_int64(now));
        json_object_object_add(c, "exp", json_object_new_int64(now + 300));
        json_object_object_add(c, "jti", json_object_new_string(jti));
        snprintf(claims, sizeof(claims), "%s", json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN |
                                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(c);
        rc = oauthjwt_sign(o->jwt_key, o->jwt_alg, claims, &jwt, j->err, sizeof(j->err));
        if (rc < 0)
            return rc;
        if (oauthwire_form_add(form, "client_id", id) < 0 ||
            oauthwire_form_add(form, "client_assertion_type",
                               "urn:ietf:params:oauth:client-assertion-type:jwt-bearer") < 0 ||
            oauthwire_form_add(form, "client_assertion", jwt) < 0)
            rc = -ENOSPC;
        free(jwt);
        return rc;
    }
    if (!method)
        method = !secret ? "none"
                 : m->auth_methods[0] == '\0' || oauth__has_word(m->auth_methods, "client_secret_basic")
                     ? "client_secret_basic"
                 : oauth__has_word(m->auth_methods, "client_secret_post") ? "client_secret_post"
                                                                          : "client_secret_basic";
    if (secret && strcmp(method, "client_secret_basic") == 0) {
        /* RFC 6749 §2.3.1: both parts form-urlencoded before base64 */
        buf_t u, p;
        buf_init(&u, 600);
        buf_init(&p, 600);
        if (oauthwire_form_add(&u, "u", id) == 0 && oauthwire_form_add(&p, "p", secret) == 0 &&
            snprintf(cred, sizeof(cred), "%s:%s", buf_str(&u) + 2, buf_str(&p) + 2) < (int)sizeof(cred))
            rc = oauthwire_b64(cred, strlen(cred), basic, basiclen) < 0 ? -ENOSPC : 0;
        else
            rc = -ENOSPC;
        buf_free(&u);
        buf_free(&p);
        return rc;
    }
    if (oauthwire_form_add(form, "client_id", id) < 0)
        return -ENOSPC;
    if (secret && strcmp(method, "client_secret_post") == 0 &&
        oauthwire_form_add(form, "client_secret", secret) < 0)
        return -ENOSPC;
    return 0;
}

/* POSTs form to the token endpoint and adopts the answer. */
static int oauth__token_request(oauth_job_t *j, const oauth_meta_t *m, buf_t *form, const char *basic,
                                const char *asked_scope)
{
    buf_t b;
    json_object *resp = NULL;
    long st;
    int rc = -EPROTO;
    int64_t now = oauth__now();

    buf_init(&b, OAUTH_RESP_CAP);
    st = oauth__http(j, m->token_ep, buf_str(form), "application/x-www-form-urlencoded",
                     basic[0] ? basic : NULL, &b, NULL, 0);
    resp = json_tokener_parse(buf_str(&b));
    if (st < 200 || st >= 300 || !jget_str(resp, "access_token")) {
        if (st >= 0)
            snprintf(j->err, sizeof(j->err), "token request to %.300s failed (HTTP %ld%s%.64s)", m->token_ep,
                     st, jget_str(resp, "error") ? ": " : "", jget_str(resp, "error") ? jget_str(resp, "error") : "");
        goto out;
    }
    if (strlen(jget_str(resp, "access_token")) >= sizeof(j->tok.access)) {
        snprintf(j->err, sizeof(j->err), "the access token is too long");
        goto out;
    }
    snprintf(j->tok.access, sizeof(j->tok.access), "%s", jget_str(resp, "access_token"));
    if (jget_str(resp, "refresh_token"))
        snprintf(j->tok.refresh, sizeof(j->tok.refresh), "%s", jget_str(resp, "refresh_token"));
    j->tok.obtained_at = now;
    j->tok.expires_at = jget(resp, "expires_in") ? now + json_object_get_int64(jget(resp, "expires_in")) : 0;
    if (jget_str(resp, "scope"))
        snprintf(j->tok.scope, sizeof(j->tok.scope), "%s", jget_str(resp, "scope"));
    else if (asked_scope)
        snprintf(j->tok.scope, sizeof(j->tok.scope), "%s", asked_scope);
    rc = 0;
out:
    json_object_put(resp);
    buf_free(&b);
    return rc;
}

static int oauth__refresh(oauth_job_t *j, const oauth_meta_t *m)
{
    const char *id, *secret, *method;
    char basic[1600];
    buf_t form;
    int rc;

    buf_init(&form, 64 * 1024);
    rc = oauth__client(j, m, strcmp(j->o->grant, "authorization_code") == 0, &id, &secret, &method);
    if (rc == 0 &&
        (oauthwire_form_add(&form, "grant_type", "refresh_token") < 0 ||
         oauthwire_form_add(&form, "refresh_token", j->tok.refresh) < 0 ||
         oauthwire_form_add(&form, "resource", m->resource) < 0 ||
         oauth__client_auth(j, m, &form, id, secret, method, basic, sizeof(basic)) < 0))
        rc = -ENOSPC;
    if (rc == 0)
        rc = oauth__token_request(j, m, &form, basic, NULL);
    buf_free(&form);
    return rc;
}

/* Headless authorization_code + PKCE (mcp-probe): follows the authorization
 * endpoint's redirect without a browser, which works only where the AS
 * approves without a user, as conformance test servers do. */
static int oauth__code(oauth_job_t *j, const oauth_meta_t *m, const char *id, buf_t *form,
                       const char *scope)
{
    const oauth_t *o = j->o;
    unsigned char rnd[32], dig[SHA256_DIGEST_LEN];
    char verifier[64], challenge[64], state[32], loc[4096], code[1024], got_state[64];
    const char *redirect = o->redirect ? o->redirect : OAUTH_REDIRECT;
    buf_t q, b;
    FILE *f = fopen("/dev/urandom", "rb");
    long st;
    int rc = -EPROTO;
    CURLU *u = NULL;
    char *query = NULL;

    if (!f || fread(rnd, 1, sizeof(rnd), f) != sizeof(rnd)) {
        if (f)
            fclose(f);
        snprintf(j->err, sizeof(j->err), "no randomness for PKCE");
        return -EIO;
    }
    fclose(f);
    oauthwire_b64url(rnd, sizeof(rnd), verifier, sizeof(verifier));
    sha256(verifier, strlen(verifier), dig);
    oauthwire_b64url(dig, sizeof(dig), challenge, sizeof(challenge));
    oauthwire_b64url(rnd, 12, state, sizeof(state));
    buf_init(&q, 16 * 1024);
    buf_init(&b, OAUTH_RESP_CAP);
    if (!m->authz_ep[0]) {
        snprintf(j->err, sizeof(j->err), "the authorization server has no authorization_endpoint");
        goto out;
    }
    if (buf_puts(&q, m->authz_ep) < 0 || buf_puts(&q, strchr(m->authz_ep, '?') ? "&" : "?") < 0)
        goto out;
    {
        buf_t p;
        buf_init(&p, 16 * 1024);
        if (oauthwire_form_add(&p, "response_type", "code") == 0 &&
            oauthwire_form_add(&p, "client_id", id) == 0 &&
            oauthwire_form_add(&p, "redirect_uri", redirect) == 0 &&
            oauthwire_form_add(&p, "code_challenge", challenge) == 0 &&
            oauthwire_form_add(&p, "code_challenge_method", "S256") == 0 &&
            oauthwire_form_add(&p, "state", state) == 0 &&
            oauthwire_form_add(&p, "resource", m->resource) == 0 &&
            (!scope || oauthwire_form_add(&p, "scope", scope) == 0))
            buf_puts(&q, buf_str(&p));
        buf_free(&p);
    }
    loc[0] = '\0';
    st = oauth__http(j, buf_str(&q), NULL, NULL, NULL, &b, loc, sizeof(loc));
    if (st < 300 || st >= 400 || !loc[0]) {
        if (st >= 0)
            snprintf(j->err, sizeof(j->err), "the authorization endpoint did not redirect (HTTP %ld): "
                     "interactive authorization is not supported", st);
        goto out;
    }
    u = curl_url();
    code[0] = got_state[0] = '\0';
    if (u && curl_url_set(u, CURLUPART_URL, loc, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK && query) {
        for (char *p = query; p && *p;) {
            char *amp = strchr(p, '&'), *eq;
            if (amp)
                *amp = '\0';
            eq = strchr(p, '=');
            if (eq && strncmp(p, "code=", 5) == 0)
                snprintf(code, sizeof(code), "%s", eq + 1);
            else if (eq && strncmp(p, "state=", 6) == 0)
                snprintf(got_state, sizeof(got_state), "%s", eq + 1);
            p = amp ? amp + 1 : NULL;
        }
    }
    if (!code[0] || strcmp(got_state, state) != 0) {
        snprintf(j->err, sizeof(j->err), "the authorization redirect carried no code (or a wrong state)");
        goto out;
    }
    rc = 0;
    if (oauthwire_form_add(form, "grant_type", "authorization_code") < 0 ||
        oauthwire_form_add(form, "code", code) < 0 ||
        oauthwire_form_add(form, "redirect_uri", redirect) < 0 ||
        oauthwire_form_add(form, "code_verifier", verifier) < 0)
        rc = -ENOSPC;
out:
    curl_free(query);
    curl_url_cleanup(u);
    buf_free(&q);
    buf_free(&b);
    return rc;
}

/* Which scope to ask for (MCP "Scope Selection Strategy"): on step-up, the
 * challenge's plus what we had; else the challenge's, the configured one,
 * or every scope the resource metadata lists; else none (NULL). */
static const char *oauth__pick_scope(oauth_job_t *j, const oauth_meta_t *m, char *buf, size_t len)
{
    if (j->status == 403 && j->ch.scope[0]) {
        snprintf(buf, len, "%s", j->ch.scope);
        for (const char *p = j->tok.scope; *p;) {
            char w[128];
            size_t n = strcspn(p, " ");
            if (n && n < sizeof(w)) {
                memcpy(w, p, n);
                w[n] = '\0';
                size_t have = strlen(buf);
                if (!oauth__has_word(buf, w) && have + n + 2 < len)
                    snprintf(buf + have, len - have, "%s%s", have ? " " : "", w);
            }
            p += n;
            while (*p == ' ')
                p++;
        }
        return buf;
    }
    if (j->ch.scope[0])
        snprintf(buf, len, "%s", j->ch.scope);
    else if (j->o->scope)
        snprintf(buf, len, "%s", j->o->scope);
    else if (m->prm_scopes[0])
        snprintf(buf, len, "%s", m->prm_scopes);
    else
        return NULL;
    return buf;
}

/* The full grant: client, then client_credentials or authorization_code. */
static int oauth__grant(oauth_job_t *j, const oauth_meta_t *m)
{
    int code_flow = strcmp(j->o->grant, "authorization_code") == 0;
    const char *id, *secret, *method, *scope;
    char basic[1600], sbuf[512];
    buf_t form;
    int rc;

    if (strcmp(j->o->grant, "refresh_token") == 0) {
        snprintf(j->err, sizeof(j->err), "the refresh token was refused and no other grant is configured: "
                 "seed a new one (PUT /admin/mcp/%s/token)", j->o->name);
        return -EACCES;
    }
    buf_init(&form, 64 * 1024);
    scope = oauth__pick_scope(j, m, sbuf, sizeof(sbuf));
    rc = oauth__client(j, m, code_flow, &id, &secret, &method);
    if (rc == 0 && code_flow)
        rc = oauth__code(j, m, id, &form, scope);
    else if (rc == 0 && oauthwire_form_add(&form, "grant_type", "client_credentials") < 0)
        rc = -ENOSPC;
    if (rc == 0 && ((scope && oauthwire_form_add(&form, "scope", scope) < 0) ||
                    oauthwire_form_add(&form, "resource", m->resource) < 0 ||
                    oauth__client_auth(j, m, &form, id, secret, method, basic, sizeof(basic)) < 0))
        rc = rc ? rc : -ENOSPC;
    if (rc == 0) {
        j->tok.refresh[0] = '\0';
        rc = oauth__token_request(j, m, &form, basic, scope);
    }
    buf_free(&form);
    return rc;
}

/* ---- the Redis cache (worker thread) ---- */

static void oauth__key(const oauth_t *o, char *key, size_t len)
{
    snprintf(key, len, "%soauth:%s", rconn_prefix(), o->name);
}

/* Reads the cached set into t (fields present override). 1 if found. */
static int oauth__cache_load(redisContext *c, const oauth_t *o, oauth_tokens_t *t)
{
    char key[300];
    redisReply *r;
    json_object *v = NULL;
    int found = 0;

    oauth__key(o, key, sizeof(key));
    r = redisCommand(c, "GET %s", key);
    if (r && r->type == REDIS_REPLY_STRING && (v = json_tokener_parse(r->str)) && jget_str(v, "access_token")) {
        memset(t, 0, sizeof(*t));
        oauth__take(v, "access_token", t->access, sizeof(t->access));
        oauth__take(v, "refresh_token", t->refresh, sizeof(t->refresh));
        oauth__take(v, "scope", t->scope, sizeof(t->scope));
        oauth__take(v, "client_id", t->client_id, sizeof(t->client_id));
        oauth__take(v, "client_secret", t->client_secret, sizeof(t->client_secret));
        oauth__take(v, "client_auth", t->client_auth, sizeof(t->client_auth));
        t->expires_at = json_object_get_int64(jget(v, "expires_at"));
        t->obtained_at = json_object_get_int64(jget(v, "obtained_at"));
        found = 1;
    }
    json_object_put(v);
    if (r)
        freeReplyObject(r);
    return found;
}

static void oauth__cache_save(redisContext *c, const oauth_t *o, const oauth_tokens_t *t)
{
    char key[300], px[32];
    json_object *v = json_object_new_object();
    const char *s;
    redisReply *r;

    oauth__key(o, key, sizeof(key));
    json_object_object_add(v, "access_token", json_object_new_string(t->access));
    if (t->refresh[0])
        json_object_object_add(v, "refresh_token", json_object_new_string(t->refresh));
    json_object_object_add(v, "scope", json_object_new_string(t->scope));
    json_object_object_add(v, "expires_at", json_object_new_int64(t->expires_at));
    json_object_object_add(v, "obtained_at", json_object_new_int64(t->obtained_at));
    if (t->client_id[0]) {
        json_object_object_add(v, "client_id", json_object_new_string(t->client_id));
        json_object_object_add(v, "client_secret", json_object_new_string(t->client_secret));
        json_object_object_add(v, "client_auth", json_object_new_string(t->client_auth));
    }
    s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
    /* without a refresh token the set is worthless once the access token expires */
    if (!t->refresh[0] && t->expires_at > oauth__now()) {
        snprintf(px, sizeof(px), "%lld", (long long)(t->expires_at - oauth__now()));
        r = redisCommand(c, "SET %s %s EX %s", key, s, px);
    } else {
        r = redisCommand(c, "SET %s %s", key, s);
    }
    if (!r || r->type == REDIS_REPLY_ERROR)
        log_warn("mcp %s: cannot cache the OAuth token in Redis: %s", o->name,
                 r ? r->str : c->errstr);
    if (r)
        freeReplyObject(r);
    json_object_put(v);
}

/* ---- the job ---- */

static void oauth__work(uv_work_t *w)
{
    oauth_job_t *j = w->data;
    const oauth_t *o = j->o;
    redisContext *c = NULL;
    oauth_meta_t m;
    char rerr[256];
    int64_t now = oauth__now();

    j->rc = 0;
    if (oauth_cache_on) {
        c = rconn_connect(rconn_url(), OAUTH_REDIS_MS, rerr, sizeof(rerr));
        if (!c)
            log_warn("mcp %s: OAuth token cache unavailable: %s", o->name, rerr);
    }
    if (c) {
        oauth_tokens_t cached;
        char used[sizeof(j->tok.access)];

        memcpy(used, j->tok.access, sizeof(used));
        if (oauth__cache_load(c, o, &cached) &&
            (j->status == 0 || (j->status == 401 && strcmp(cached.access, used) != 0))) {
            /* another broker (or our own earlier run) holds a newer set */
            j->tok = cached;
            if (!oauth__stale_at(&j->tok, now))
                goto out;
        }
    }
    if (j->status == 0 && !j->tok.refresh[0])
        goto out;   /* nothing to refresh with: the first request will ask */
    j->rc = oauth__discover(j, &m);
    if (j->rc < 0)
        goto out;
    if (j->tok.refresh[0] && j->status != 403) {
        j->rc = oauth__refresh(j, &m);
        if (j->rc < 0 && o->seed_refresh && strcmp(o->seed_refresh, j->tok.refresh) != 0) {
            /* the cached one was revoked; an operator may have seeded a new one */
            snprintf(j->tok.refresh, sizeof(j->tok.refresh), "%s", o->seed_refresh);
            j->rc = oauth__refresh(j, &m);
        }
        if (j->rc == 0)
            goto save;
        log_info("mcp %s: refreshing the OAuth token failed (%s); asking for a new one", o->name, j->err);
        j->tok.refresh[0] = '\0';
        j->err[0] = '\0';
    }
    if (j->status == 0) {
        j->tok.access[0] = '\0';
        goto out;
    }
    j->rc = oauth__grant(j, &m);
    if (j->rc < 0)
        goto out;
save:
    log_info("mcp %s: obtained an OAuth access token (expires in %lld s)", o->name,
             j->tok.expires_at ? (long long)(j->tok.expires_at - now) : -1LL);
    if (c)
        oauth__cache_save(c, o, &j->tok);
out:
    if (c)
        redisFree(c);
}

static void oauth__after(uv_work_t *w, int status)
{
    oauth_job_t *j = w->data;
    oauth_t *o = (oauth_t *)j->o;
    oauth_done_cb cb = o->cb;
    void *ud = o->ud;
    int rc = status < 0 ? status : j->rc;

    if (rc == 0) {
        o->tok = j->tok;
        /* an expired token nobody could refresh: send none, so the server's
         * 401 starts a full flow (rather than a refresh loop) */
        if (oauth__stale_at(&o->tok, oauth__now()))
            o->tok.access[0] = '\0';
    } else
        log_warn("mcp %s: OAuth authorization failed: %s", o->name, j->err[0] ? j->err : "cancelled");
    o->busy = 0;
    o->job = NULL;
    if (cb)
        cb(ud, rc, j->err[0] ? j->err : "authorization failed");
    free(j);
}

int oauth_start(oauth_t *o, uv_loop_t *loop, int status, const char *www_auth, oauth_done_cb cb,
                void *ud)
{
    oauth_job_t *j;

    if (o->busy)
        return -EBUSY;
    j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->o = o;
    j->status = status;
    oauthwire_challenge_parse(www_auth ? www_auth : "", &j->ch);
    if (status == 403) {
        /* step-up: asking again for what the token already claims rarely
         * helps; allow it OAUTH_MAX_STEPUPS times, then give up */
        int covered = 1;
        for (const char *p = j->ch.scope; *p;) {
            char w[128];
            size_t n = strcspn(p, " ");
            if (n && n < sizeof(w)) {
                memcpy(w, p, n);
                w[n] = '\0';
                if (!oauth__has_word(o->tok.scope, w))
                    covered = 0;
            }
            p += n;
            while (*p == ' ')
                p++;
        }
        if (covered && o->stepups++ >= OAUTH_MAX_STEPUPS) {
            free(j);
            return -EPERM;
        }
        if (!covered)
            o->stepups = 0;
    }
    j->tok = o->tok;
    o->busy = 1;
    o->job = j;
    o->cb = cb;
    o->ud = ud;
    o->work.data = j;
    if (uv_queue_work(loop, &o->work, oauth__work, oauth__after) < 0) {
        o->busy = 0;
        o->job = NULL;
        free(j);
        return -ENOMEM;
    }
    return 0;
}
