/* oauthwire — the parts of the MCP authorization spec (revisions 2025-06-18,
 * 2025-11-25) that are pure text: the WWW-Authenticate challenge, the ordered
 * well-known URLs for protected-resource metadata (RFC 9728) and
 * authorization-server metadata (RFC 8414 / OIDC discovery), the resource
 * check (RFC 8707), form encoding and base64url. No I/O: oauth.c does the
 * fetching; unit tests drive these directly. */
#ifndef AIPROXY_OAUTHWIRE_H
#define AIPROXY_OAUTHWIRE_H

#include "shared/buf.h"

#include <stddef.h>

#define OAUTHWIRE_URL_MAX  1024
#define OAUTHWIRE_MAX_URLS 4

/* What a Bearer challenge says. Fields are "" when absent. */
typedef struct oauthwire_challenge {
    int bearer;                             /* the scheme was Bearer */
    char resource_metadata[OAUTHWIRE_URL_MAX];
    char scope[512];
    char error[64];                         /* e.g. "insufficient_scope" */
} oauthwire_challenge_t;

/* Parses a WWW-Authenticate header value (auth-params with quoted or token
 * values, RFC 9110 §11.6.1). Values too long for their field are dropped.
 * Always fills `out` (zeroed first); returns 0, or -EINVAL when `hdr` holds
 * no Bearer challenge. */
int oauthwire_challenge_parse(const char *hdr, oauthwire_challenge_t *out);

/* A list of candidate URLs, tried in order. */
typedef struct oauthwire_urls {
    int n;
    char url[OAUTHWIRE_MAX_URLS][OAUTHWIRE_URL_MAX];
} oauthwire_urls_t;

/* The protected-resource metadata URLs for MCP server URL `server_url`
 * when the challenge named none: the path-suffixed well-known URI first,
 * then the root one (MCP 2025-11-25 "Protected Resource Metadata Discovery").
 * Returns 0 or -EINVAL (not an http(s) URL). */
int oauthwire_prm_urls(const char *server_url, oauthwire_urls_t *out);

/* The authorization-server metadata URLs for `issuer`, in the spec's order:
 * with a path: oauth-authorization-server/<path>, openid-configuration/<path>,
 * <path>/.well-known/openid-configuration; without: oauth-authorization-server,
 * openid-configuration. Returns 0 or -EINVAL. */
int oauthwire_as_urls(const char *issuer, oauthwire_urls_t *out);

/* "scheme://host[:port]" of url into out (no trailing slash). 0 or -EINVAL. */
int oauthwire_origin(const char *url, char *out, size_t outlen);

/* 1 when the protected resource `resource` (from the metadata) covers
 * `server_url`: same scheme, host and port, and its path is a prefix of the
 * server's at a '/' boundary (RFC 8707, MCP "canonical server URI"); else 0. */
int oauthwire_resource_matches(const char *resource, const char *server_url);

/* Appends "&name=value" (no '&' when b is empty), value form-urlencoded
 * (application/x-www-form-urlencoded). Returns 0 or -ENOSPC. */
int oauthwire_form_add(buf_t *b, const char *name, const char *value);

/* base64url without padding of len bytes into out (NUL-terminated). Returns
 * the length written, or -ENOSPC. */
long oauthwire_b64url(const void *data, size_t len, char *out, size_t outlen);

/* Standard base64 with padding (for HTTP Basic). Same contract. */
long oauthwire_b64(const void *data, size_t len, char *out, size_t outlen);

#endif
