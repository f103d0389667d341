/* principal — who a request is, as the credential check found it
 * (docs/keys.md). The auth chain makes one per authenticated request, in the
 * request's arena, and hangs it on req->info.auth (reqinfo.h); its id is also
 * req->info.principal. The limiter, usage accounting, the visibility checks
 * (/v1/models, the assistant lookup, the tools offered, /mcp) and the logs
 * read it; nobody else writes it. */
#ifndef AIPROXY_PRINCIPAL_H
#define AIPROXY_PRINCIPAL_H

#include <json-c/json.h>

typedef enum auth_kind {
    AUTH_KIND_OPEN = 0,   /* /v1 is open (no provider configured): no principal is made */
    AUTH_KIND_STATIC,     /* a proxy_api_keys entry: no policy */
    AUTH_KIND_MANAGED,    /* a managed key (POST /admin/keys) */
    AUTH_KIND_APIMAN,     /* accepted by Apiman (probe or trusted header) */
} auth_kind_t;

typedef struct auth_principal {
    auth_kind_t kind;
    /* For logs, limits and usage, never a secret: "key_<id>" (managed),
     * "static:<first 8 hex of the key's SHA-256>", "apiman:<...>". Arena. */
    const char *id;
    const char *name;     /* managed: the key's name; else NULL */
    const char *owner;    /* managed: its owner/tenant label; else NULL */
    const char *plan;     /* the plan it inherits (managed or Apiman); NULL when none */
    /* The effective policy: the plan's fields with the key's own over them
     * (docs/keys.md, "Policy"); owned by the request's arena. NULL: no
     * policy (every assistant and tool visible, no limits). Shape:
     *   { "assistants": [glob...], "tools": {"allow": [glob...], "deny": [glob...]},
     *     "rpm": n, "tpm": n, "max_concurrent": n,
     *     "budget": {"tokens_per_day": n, "tokens_per_month": n} }  (all optional) */
    json_object *policy;
    /* The limiter's gate, when it ran in the lookup's own round trip
     * (fcgi/limit/limit.h, limit_pregate): what limit_gate then uses
     * instead of a round trip of its own. NULL: it did not run. */
    void *pregate;
} auth_principal_t;

#endif
