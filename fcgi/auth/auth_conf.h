/* auth_conf — the registry's settings turned into the provider chain that
 * guards /v1 (pure: reads a json-c document, no I/O, no allocation).
 *
 * Settings shape (docs/auth.md):
 *   proxy_api_keys: [key, ...]                      -> static provider
 *   apiman: { mode: gateway_probe | trusted_header, enabled (default true),
 *             gateway_url, probe_api ("org/api/version"), probe_path,
 *             api_key_header (default X-API-Key), timeout (s, default 5),
 *             cache_ttl (s, default 60),             -> gateway_probe
 *             header, secret }                       -> trusted_header
 *             plan, plan_header, client_header         (docs/keys.md)
 * Order: static first, then apiman. */
#ifndef AIPROXY_AUTH_CONF_H
#define AIPROXY_AUTH_CONF_H

#include <json-c/json.h>
#include <stddef.h>

enum auth_apiman_mode { AUTH_APIMAN_NONE = 0, AUTH_APIMAN_PROBE, AUTH_APIMAN_TRUSTED };

typedef struct auth_conf {
    json_object *keys;           /* borrowed array of non-empty strings; NULL when none */
    size_t nkeys;
    enum auth_apiman_mode apiman;
    const char *gateway_url;     /* all strings borrowed from the settings document */
    const char *probe_api;
    const char *probe_path;      /* "" when none */
    const char *api_key_header;
    long timeout_ms;
    long cache_ttl;              /* seconds; 0 disables the cache */
    const char *header;
    const char *secret;
    /* issue 18 (docs/keys.md "Apiman callers"): the plan every Apiman caller
     * gets, and (trusted_header only) the headers naming its plan and its
     * id; NULL when unset */
    const char *plan;
    const char *plan_header;
    const char *client_header;
} auth_conf_t;

/* Fills *conf from `settings` (may be NULL: no provider). Returns 0, or
 * -EINVAL with err "apiman.field: problem" when the apiman block is unusable;
 * the static part is still filled then, and conf->apiman is NONE, so callers
 * must fail closed themselves (auth_check rejects what static does not accept). */
int auth_conf_from_settings(json_object *settings, auth_conf_t *conf, char *err, size_t errlen);

/* 1 when no provider is configured (/v1 open). */
int auth_conf_open(const auth_conf_t *conf);

/* 1 when s is "{org}/{api}/{version}": three non-empty segments, no more. */
int auth_conf_probe_api_ok(const char *s);

/* A new array describing the providers, without secrets (for GET /admin/config). */
json_object *auth_conf_describe(const auth_conf_t *conf);

#endif
