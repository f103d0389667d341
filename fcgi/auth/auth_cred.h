/* auth_cred — where a client's API key can be (pure: no I/O, no allocation),
 * and the one way we compare secrets.
 *
 * Used by the /v1 auth chain (auth.c) and by the admin key check (admin.c). */
#ifndef AIPROXY_AUTH_CRED_H
#define AIPROXY_AUTH_CRED_H

#include "shared/caps.h"

#include <stddef.h>

/* Authorization, X-API-Key, ?apikey= : at most three distinct candidates. */
#define AUTH_CRED_MAX CAP_AUTH_CREDS
/* Longer values are not keys anyone issues; ignoring them bounds hashing work. */
#define AUTH_CRED_MAXLEN CAP_AUTH_CRED_LEN

typedef struct auth_cred {
    const char *p;   /* points into the caller's string; not NUL-terminated here */
    size_t len;
} auth_cred_t;

/* The distinct credentials a request carries, in the order they are tried:
 * `Authorization: Bearer <k>` (scheme case-insensitive) or a bare
 * `Authorization: <k>` (a value with inner whitespace is another scheme and is
 * skipped), then `X-API-Key`, then `?apikey=`. Any argument may be NULL.
 * Surrounding whitespace is trimmed; empty and over-long values are skipped.
 * The candidates borrow from the arguments. Returns how many were found. */
size_t auth_cred_extract(const char *authorization, const char *x_api_key,
                         const char *query_apikey, auth_cred_t out[AUTH_CRED_MAX]);

/* 1 when s[0..len) holds no NUL byte, so a C string of it is all of it; 0
 * when a NUL would cut the credential short (KEY%00junk read as KEY). */
int auth_cred_clean(const char *s, size_t len);

/* The Bearer token of an Authorization value ("Bearer <k>" only, for /admin),
 * or {NULL, 0}. */
auth_cred_t auth_cred_bearer(const char *authorization);

/* 1 when a and b hold the same bytes, else 0. Both sides are hashed with
 * SHA-256 first and the digests compared without early exit, so the time
 * taken tells neither where they differ nor how long the secret is. */
int auth_cred_equal(const char *a, size_t alen, const char *b, size_t blen);

/* 1 when a and b (n bytes each: digests, hex digests) are equal, compared
 * without early exit, so the time taken does not tell where they differ. */
int auth_cred_same(const void *a, const void *b, size_t n);

#endif
