/* admin_doc — what the admin API does to registry documents, with no I/O:
 * redacting secrets, finding the assistants that use a backend or MCP server,
 * and turning a PUT body into the object to validate.
 *
 * Secret fields (docs/admin.md): backends.*.api_key, backends.*.default_headers
 * and mcp_servers.*.headers / .env entries whose name suggests a credential,
 * settings.proxy_api_keys[*], settings.apiman.secret. */
#ifndef AIPROXY_ADMIN_DOC_H
#define AIPROXY_ADMIN_DOC_H

#include <json-c/json.h>
#include <stddef.h>

#define ADMIN_REDACTED "***"

/* 1 when a header or environment variable named `name` carries a credential:
 * Authorization, Proxy-Authorization, Cookie, Set-Cookie, or a name holding
 * key, token, secret, passw, credential, auth or session (case-insensitive). */
int admin_doc_credential_name(const char *name);

enum admin_redact_mode {
    ADMIN_REDACT_JSON,   /* secrets -> their ${VAR} reference or "***"; "_src" dropped */
    ADMIN_REDACT_YAML,   /* the same, "_src" kept (its secret entries sanitised) for cfg_dump_yaml */
};

/* A new deep copy of the registry document `doc` (borrowed) with every secret
 * replaced. A reference's ${VAR:-default} keeps only "${VAR:-***}", since the
 * default may be the secret itself. NULL on ENOMEM. */
json_object *admin_doc_redact(json_object *doc, enum admin_redact_mode mode);

/* The same for one object of `kind` ("assistants", "backends", "mcp_servers"). */
json_object *admin_doc_redact_one(const char *kind, json_object *obj, enum admin_redact_mode mode);

/* A new array of the names of the assistants in `doc` that use `name` of
 * `kind` (as backend, or in mcp_servers); empty when none or for assistants. */
json_object *admin_doc_users(json_object *doc, const char *kind, const char *name);

/* Turns a PUT body into the object to validate. On success returns 0 and
 * *obj (caller owns). Errors: -EBADMSG (400, not a JSON object), -EINVAL (422,
 * a "name" that differs from the path's); err says why, *param names the
 * field (static) or is NULL. For assistants "name" is set from the path; for
 * the other kinds a matching "name" is accepted and removed (their objects
 * have none). */
int admin_doc_body(const char *kind, const char *name, const char *body, size_t len,
                   json_object **obj, char *err, size_t errlen, const char **param);

/* Makes a GET answer safe to PUT back: every secret field of `obj` (a PUT
 * body of `kind`) whose value is what a GET shows for it in `old` (the stored
 * object; NULL: nothing to keep) — "***" or the ${VAR} reference — gets the
 * stored value back, with its "_src" entry. Other values are left as sent. */
void admin_doc_keep_secrets(const char *kind, json_object *obj, json_object *old);

/* The operator's allow-list for the commands the admin API may give a stdio
 * MCP server: `allow` is AIPROXY_MCP_COMMANDS, globs separated by ':' or ','
 * matched with fnmatch(3) (no flags: '*' crosses '/') against the whole
 * command as written. NULL or empty allows nothing; "*" allows everything.
 * 1 when `command` matches one glob, else 0. Globs longer than 1023 bytes
 * match nothing. */
#define ADMIN_MCP_COMMANDS_ENV "AIPROXY_MCP_COMMANDS"
int admin_doc_command_allowed(const char *allow, const char *command);

/* The field a cfg_check_* message ("field: problem") names, copied into
 * param (empty when the message names none). */
void admin_doc_err_param(const char *err, char *param, size_t paramlen);

#endif
