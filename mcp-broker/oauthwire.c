/* oauthwire — challenge parsing, discovery URL lists and encodings for the
 * MCP authorization flow (see oauthwire.h). URLs are taken apart with
 * curl's URL API, which does no I/O. */
#include "mcp-broker/oauthwire.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Copies [s, s+n) into dst when it fits, else leaves dst "". */
static void ow__put(char *dst, size_t cap, const char *s, size_t n)
{
    if (n < cap) {
        memcpy(dst, s, n);
        dst[n] = '\0';
    }
}

int oauthwire_challenge_parse(const char *hdr, oauthwire_challenge_t *out)
{
    const char *p = hdr;

    memset(out, 0, sizeof(*out));
    if (!hdr)
        return -EINVAL;
    /* find the Bearer scheme (a header may list several challenges) */
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            return -EINVAL;
        if (strncasecmp(p, "Bearer", 6) == 0 && (p[6] == ' ' || p[6] == '\t' || !p[6])) {
            p += 6;
            break;
        }
        /* skip to the next comma outside quotes */
        for (int q = 0; *p && (q || *p != ','); p++)
            if (*p == '"')
                q = !q;
    }
    out->bearer = 1;
    while (*p) {
        const char *name, *val;
        size_t nl, vl;
        char vbuf[OAUTHWIRE_URL_MAX];

        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        name = p;
        while (*p && *p != '=' && *p != ' ' && *p != ',')
            p++;
        nl = (size_t)(p - name);
        while (*p == ' ')
            p++;
        if (*p != '=')
            break;   /* the next challenge's scheme: ours ended */
        p++;
        while (*p == ' ')
            p++;
        vl = 0;
        if (*p == '"') {
            p++;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1])
                    p++;
                if (vl + 1 < sizeof(vbuf))
                    vbuf[vl++] = *p;
                p++;
            }
            if (*p == '"')
                p++;
        } else {
            val = p;
            while (*p && *p != ',' && *p != ' ')
                p++;
            if ((size_t)(p - val) < sizeof(vbuf)) {
                memcpy(vbuf, val, (size_t)(p - val));
                vl = (size_t)(p - val);
            }
        }
        vbuf[vl] = '\0';
        if (nl == 17 && strncasecmp(name, "resource_metadata", nl) == 0)
            ow__put(out->resource_metadata, sizeof(out->resource_metadata), vbuf, vl);
        else if (nl == 5 && strncasecmp(name, "scope", nl) == 0)
            ow__put(out->scope, sizeof(out->scope), vbuf, vl);
        else if (nl == 5 && strncasecmp(name, "error", nl) == 0)
            ow__put(out->error, sizeof(out->error), vbuf, vl);
    }
    return 0;
}

/* Splits an http(s) URL into origin ("scheme://host[:port]") and path (no
 * trailing '/', "" for the root). 0 or -EINVAL. */
static int ow__split(const char *url, char *origin, size_t olen, char *path, size_t plen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *pth = NULL;
    int rc = -EINVAL, n;
    size_t l;

    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        goto out;
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)
        goto out;
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    curl_url_get(u, CURLUPART_PATH, &pth, 0);
    n = port ? snprintf(origin, olen, "%s://%s:%s", scheme, host, port)
             : snprintf(origin, olen, "%s://%s", scheme, host);
    if (n < 0 || (size_t)n >= olen)
        goto out;
    l = pth ? strlen(pth) : 0;
    while (l > 0 && pth[l - 1] == '/')
        l--;
    if (l >= plen)
        goto out;
    if (l)
        memcpy(path, pth, l);
    path[l] = '\0';
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(pth);
    curl_url_cleanup(u);
    return rc;
}

int oauthwire_origin(const char *url, char *out, size_t outlen)
{
    char path[OAUTHWIRE_URL_MAX];

    return ow__split(url, out, outlen, path, sizeof(path));
}

/* out->url[out->n++] = a + b + c, when it fits. */
static void ow__add(oauthwire_urls_t *out, const char *a, const char *b, const char *c)
{
    int n;

    if (out->n >= OAUTHWIRE_MAX_URLS)
        return;
    n = snprintf(out->url[out->n], OAUTHWIRE_URL_MAX, "%s%s%s", a, b, c);
    if (n > 0 && n < OAUTHWIRE_URL_MAX)
        out->n++;
}

int oauthwire_prm_urls(const char *server_url, oauthwire_urls_t *out)
{
    char origin[OAUTHWIRE_URL_MAX], path[OAUTHWIRE_URL_MAX];

    memset(out, 0, sizeof(*out));
    if (ow__split(server_url, origin, sizeof(origin), path, sizeof(path)) < 0)
        return -EINVAL;
    if (path[0])
        ow__add(out, origin, "/.well-known/oauth-protected-resource", path);
    ow__add(out, origin, "/.well-known/oauth-protected-resource", "");
    return 0;
}

int oauthwire_as_urls(const char *issuer, oauthwire_urls_t *out)
{
    char origin[OAUTHWIRE_URL_MAX], path[OAUTHWIRE_URL_MAX], pre[OAUTHWIRE_URL_MAX];

    memset(out, 0, sizeof(*out));
    if (ow__split(issuer, origin, sizeof(origin), path, sizeof(path)) < 0)
        return -EINVAL;
    if (path[0]) {
        ow__add(out, origin, "/.well-known/oauth-authorization-server", path);
        ow__add(out, origin, "/.well-known/openid-configuration", path);
        if (snprintf(pre, sizeof(pre), "%s%s", origin, path) < (int)sizeof(pre))
            ow__add(out, pre, "/.well-known/openid-configuration", "");
    } else {
        ow__add(out, origin, "/.well-known/oauth-authorization-server", "");
        ow__add(out, origin, "/.well-known/openid-configuration", "");
    }
    return 0;
}

int oauthwire_resource_matches(const char *resource, const char *server_url)
{
    char ro[OAUTHWIRE_URL_MAX], rp[OAUTHWIRE_URL_MAX], so[OAUTHWIRE_URL_MAX], sp[OAUTHWIRE_URL_MAX];
    size_t n;

    if (!resource || !server_url ||
        ow__split(resource, ro, sizeof(ro), rp, sizeof(rp)) < 0 ||
        ow__split(server_url, so, sizeof(so), sp, sizeof(sp)) < 0 || strcasecmp(ro, so) != 0)
        return 0;
    n = strlen(rp);
    return strncmp(rp, sp, n) == 0 && (sp[n] == '\0' || sp[n] == '/');
}

int oauthwire_form_add(buf_t *b, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;

    if (b->len && buf_append(b, "&", 1) < 0)
        return -ENOSPC;
    if (buf_puts(b, name) < 0 || buf_append(b, "=", 1) < 0)
        return -ENOSPC;
    for (const unsigned char *p = (const unsigned char *)value; *p && rc == 0; p++) {
        char e[3];
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            rc = buf_append(b, p, 1);
        } else if (*p == ' ') {
            rc = buf_append(b, "+", 1);
        } else {
            e[0] = '%';
            e[1] = hex[*p >> 4];
            e[2] = hex[*p & 15];
            rc = buf_append(b, e, 3);
        }
    }
    return rc < 0 ? -ENOSPC : 0;
}

static long ow__b64(const void *data, size_t len, char *out, size_t outlen, const char *alpha,
                    int pad)
{
    const unsigned char *s = data;
    size_t o = 0, i;

    for (i = 0; i < len; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < len ? (unsigned)s[i + 1] << 8 : 0) |
                     (i + 2 < len ? s[i + 2] : 0);
        int k = len - i >= 3 ? 4 : (int)(len - i) + 1;

        if (o + 5 > outlen)
            return -ENOSPC;
        for (int j = 0; j < 4; j++) {
            if (j < k)
                out[o++] = alpha[(v >> (18 - 6 * j)) & 63];
            else if (pad)
                out[o++] = '=';
        }
    }
    if (o + 1 > outlen)
        return -ENOSPC;
    out[o] = '\0';
    return (long)o;
}

long oauthwire_b64url(const void *data, size_t len, char *out, size_t outlen)
{
    return ow__b64(data, len, out, outlen,
                   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 0);
}

long oauthwire_b64(const void *data, size_t len, char *out, size_t outlen)
{
    return ow__b64(data, len, out, outlen,
                   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 1);
}
