/* auth — the credential check in front of /v1: static proxy_api_keys, Apiman
 * gateway_probe and Apiman trusted_header, tried in order (docs/auth.md). */
#ifndef AIPROXY_AUTH_H
#define AIPROXY_AUTH_H

#include "fcgi/core/http.h"
#include "shared/reg.h"

/* Lets the request through (returns 0) when no provider is configured in the
 * registry `reg` (NULL: none loaded) or one accepts a credential it carries
 * (auth_verify: the principal is set); otherwise answers 401 with
 * WWW-Authenticate: Bearer (400 for a %00 in ?apikey=, 503 with Retry-After
 * when a managed key cannot be checked) and returns -EACCES. Never answers 500: a provider that fails
 * rejects. */
int auth_check(http_req_t *req, reg_t *reg);

/* The same verdict without answering, for routes that answer in another
 * shape (/v1/messages): 0 to let the request through, -EACCES with `why`
 * saying what the client must do (401: also a revoked or expired managed
 * key), -EINVAL when a credential cannot mean what it says (a %00 in
 * ?apikey=: 400, param "apikey"), or -EAGAIN when a managed key or an
 * Apiman caller's plan cannot be checked because Redis does not answer
 * (503: the caller adds Retry-After: 1). Never fails open on a provider error.
 * Order: static keys (no I/O), managed "sk-aip-" keys (one Redis round
 * trip), Apiman. On 0, unless /v1 is open, req->info.auth holds the
 * caller's auth_principal_t (principal.h, arena) and req->info.principal
 * its id; they are NULL otherwise. */
int auth_verify(http_req_t *req, reg_t *reg, char *why, size_t whylen);

/* A new array naming the active providers (for GET /admin/config), without
 * secrets. */
json_object *auth_describe(reg_t *reg);

/* Logs, at start, which providers guard /v1 (loudly when none does). */
void auth_log_startup(reg_t *reg);

#endif
