/* auth_cred — see auth_cred.h. */
#include "fcgi/auth/auth_cred.h"

#include "shared/sha256.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

static int auth_cred__space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static auth_cred_t auth_cred__trim(const char *s, size_t len)
{
    auth_cred_t c = { s, len };
    while (c.len > 0 && auth_cred__space(c.p[0])) {
        c.p++;
        c.len--;
    }
    while (c.len > 0 && auth_cred__space(c.p[c.len - 1]))
        c.len--;
    return c;
}

static int auth_cred__has_space(auth_cred_t c)
{
    for (size_t i = 0; i < c.len; i++)
        if (auth_cred__space(c.p[i]))
            return 1;
    return 0;
}

/* Adds c unless empty, too long, or already present (comparing a client's own
 * candidates with each other needs no constant time). */
static size_t auth_cred__add(auth_cred_t *out, size_t n, auth_cred_t c)
{
    if (c.len == 0 || c.len > AUTH_CRED_MAXLEN || n >= AUTH_CRED_MAX)
        return n;
    for (size_t i = 0; i < n; i++)
        if (out[i].len == c.len && memcmp(out[i].p, c.p, c.len) == 0)
            return n;
    out[n] = c;
    return n + 1;
}

auth_cred_t auth_cred_bearer(const char *authorization)
{
    auth_cred_t none = { NULL, 0 };
    if (!authorization)
        return none;
    auth_cred_t v = auth_cred__trim(authorization, strlen(authorization));
    if (v.len < 7 || strncasecmp(v.p, "Bearer", 6) != 0 || !auth_cred__space(v.p[6]))
        return none;
    auth_cred_t tok = auth_cred__trim(v.p + 6, v.len - 6);
    if (tok.len == 0 || auth_cred__has_space(tok))
        return none;
    return tok;
}

size_t auth_cred_extract(const char *authorization, const char *x_api_key,
                         const char *query_apikey, auth_cred_t out[AUTH_CRED_MAX])
{
    size_t n = 0;
    if (authorization) {
        auth_cred_t tok = auth_cred_bearer(authorization);
        if (tok.p) {
            n = auth_cred__add(out, n, tok);
        } else {
            auth_cred_t bare = auth_cred__trim(authorization, strlen(authorization));
            /* "Bearer" with nothing after it is an empty credential, not a key */
            int scheme_only = bare.len == 6 && strncasecmp(bare.p, "Bearer", 6) == 0;
            if (!scheme_only && !auth_cred__has_space(bare))
                n = auth_cred__add(out, n, bare);
        }
    }
    if (x_api_key)
        n = auth_cred__add(out, n, auth_cred__trim(x_api_key, strlen(x_api_key)));
    if (query_apikey)
        n = auth_cred__add(out, n, auth_cred__trim(query_apikey, strlen(query_apikey)));
    return n;
}

int auth_cred_clean(const char *s, size_t len)
{
    return memchr(s, '\0', len) == NULL;
}

int auth_cred_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char da[SHA256_DIGEST_LEN], db[SHA256_DIGEST_LEN];
    sha256(a ? a : "", a ? alen : 0, da);
    sha256(b ? b : "", b ? blen : 0, db);
    /* Equal digests mean equal inputs (barring a SHA-256 collision); the
     * length check costs nothing secret since both digests are computed. */
    return auth_cred_same(da, db, SHA256_DIGEST_LEN) && alen == blen;
}

int auth_cred_same(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    volatile unsigned char diff = 0;

    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(x[i] ^ y[i]);
    return diff == 0;
}
