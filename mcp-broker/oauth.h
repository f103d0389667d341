/* oauth — OAuth 2.1 access tokens for HTTP MCP servers (MCP authorization,
 * revisions 2025-06-18 and 2025-11-25), for the streamable-HTTP and SSE
 * transports.
 *
 * A server entry with an `auth` block gets one oauth_t. When the server
 * answers 401 (or 403 insufficient_scope) with WWW-Authenticate, the transport
 * calls oauth_start: on libuv's thread pool, the flow discovers the protected
 * resource metadata (RFC 9728) and the authorization server metadata
 * (RFC 8414 / OIDC discovery), registers a client (RFC 7591) when none is
 * configured, and obtains a token by the configured grant (client_credentials
 * with client_secret_basic/post or private_key_jwt; refresh_token; and, for
 * mcp-probe only, a headless authorization_code + PKCE against an
 * authorization server that approves without a user). The `resource`
 * parameter (RFC 8707) names the server. With the cache on (the broker), the
 * token set lives in Redis under <prefix>oauth:<server>, shared by every
 * broker; the admin API never reads that key. Secrets are never logged.
 *
 *   auth: { grant: client_credentials | authorization_code,
 *           client_id, client_secret, private_key_jwt: {key, alg},
 *           scope, resource, client_metadata_url, redirect_uri }
 */
#ifndef AIPROXY_OAUTH_H
#define AIPROXY_OAUTH_H

#include <json-c/json.h>
#include <stddef.h>
#include <uv.h>

typedef struct oauth oauth_t;

/* Called on the loop thread when oauth_start's work ends: rc 0 and a token
 * (oauth_token) to use, or a negative errno with `err` saying why (for the
 * log and the JSON-RPC error the caller synthesises). */
typedef void (*oauth_done_cb)(void *ud, int rc, const char *err);

/* Turns the Redis token cache on for every oauth_t of this process (the
 * broker does; mcp-probe does not). Call before any oauth_start. */
void oauth_cache_enable(int on);

/* Reads server["auth"] for the MCP server `name` at `url`. Returns 0 with
 * *out NULL when there is no auth block, 0 with *out set, or -EINVAL with
 * err naming the field. The caller frees with oauth_free. */
int oauth_new(const char *name, const char *url, json_object *server, oauth_t **out, char *err,
              size_t errlen);

/* Frees o; only when no work runs (oauth_busy is 0). NULL is fine. */
void oauth_free(oauth_t *o);

/* The access token to send ("Authorization: Bearer <it>"), or NULL. Valid
 * until the next oauth_start completes. */
const char *oauth_token(const oauth_t *o);

/* 1 while a flow runs on the thread pool. */
int oauth_busy(const oauth_t *o);

/* 1 when the token is missing or due for a refresh (less than a tenth of its
 * lifetime, at most 60 s, left): callers then start a flow before sending. */
int oauth_stale(const oauth_t *o);

/* Starts a flow. status is the HTTP status that triggered it (401, 403), or
 * 0 for "load the cached token, refresh if stale" (at startup, no network
 * unless a refresh is due); www_auth the WWW-Authenticate value ("" if none).
 * Returns 0 and `cb` fires once later, or -EBUSY (a flow runs: wait for its
 * callback), -EPERM (too many step-up attempts for this challenge: give up),
 * -ENOMEM; then `cb` never fires. */
int oauth_start(oauth_t *o, uv_loop_t *loop, int status, const char *www_auth, oauth_done_cb cb,
                void *ud);

#endif
