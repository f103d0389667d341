/* cfg — the YAML configuration, loaded into the registry document.
 *
 * The registry document is the one JSON shape the whole system shares (Redis
 * holds it, the admin API edits it, docs/config.md describes it):
 *
 *   { "backends":    { NAME: {kind, base_url, api_key, default_headers, timeout} },
 *     "mcp_servers": { NAME: {transport, command, args, env, inherit_env, cwd, url,
 *                             headers, description, timeout, max_timeout} },
 *     "assistants":  { NAME: {name, backend, model, description, system_prompt,
 *                             mcp_servers, tools: {allow, deny}, max_tools,
 *                             max_tool_iterations, temperature, top_p,
 *                             max_tokens, extra_body, tool_events,
 *                             stream_keepalive_ms} },
 *     "settings":    { "proxy_api_keys": ["sha256:<hex>", ..], "apiman": {..} | null } }
 *
 * NAME (every kind) is cfg_name_valid: it becomes a path segment of the admin
 * API and a Redis hash field, so it holds no '/', '%' or dot-only names.
 *
 * Every object comes out normalised: defaults filled in (timeout 300,
 * max_tool_iterations 8, empty arrays/objects rather than missing), unknown
 * fields refused. `${VAR}` and `${VAR:-default}` are expanded when the file is
 * loaded; an object whose fields held a reference keeps the original text in
 * "_src": {"field.path": "${VAR}"} so an export can write the reference back.
 * No function here does I/O except cfg_load_file reading its file. */
#ifndef AIPROXY_CFG_H
#define AIPROXY_CFG_H

#include <json-c/json.h>
#include <stddef.h>

/* Reads, expands, validates and normalises a YAML config file. On success *doc
 * is a new registry document (caller owns it). On failure returns -EINVAL (bad
 * content) or -errno (unreadable file), with err like
 * "config.yaml:14: assistants[1].backend: unknown backend 'foo'". */
int cfg_load_file(const char *path, json_object **doc, char *err, size_t errlen);

/* The same from text in memory; `name` is used in messages in place of a path. */
int cfg_load_yaml(const char *text, size_t len, const char *name, json_object **doc,
                  char *err, size_t errlen);

/* Expands ${VAR} and ${VAR:-default} in `in` from the environment (an unset VAR
 * without default expands to ""; "$$" is a literal "$"). *out is malloc'd.
 * *had_ref (may be NULL) tells whether any reference (or a "$$") was seen:
 * then the original text must be kept in "_src" to be written back. Returns 0,
 * -EINVAL for an unterminated "${", -ENOMEM. */
int cfg_expand_env(const char *in, char **out, int *had_ref, char *err, size_t errlen);

/* 1 when `s` holds a "${" that is a reference (not one whose "$" is the
 * second of an escaping "$$", as in "$${X}", the text "${X}"), else 0. */
int cfg_has_ref(const char *s);

/* Validate and normalise one object in place, as config load and the admin API
 * both do. `doc` is the registry the object will join (for cross references:
 * an assistant's backend and mcp_servers must exist there); NULL skips those
 * checks. Returns 0 or -EINVAL with err "field: problem" (e.g.
 * "transport: must be one of stdio, sse, http, streamable-http"). */
int cfg_check_backend(const char *name, json_object *obj, char *err, size_t errlen);
int cfg_check_mcp_server(const char *name, json_object *obj, char *err, size_t errlen);
int cfg_check_assistant(const char *name, json_object *obj, json_object *doc, char *err,
                        size_t errlen);
int cfg_check_settings(json_object *settings, char *err, size_t errlen);

/* The top-level `broker:` section (docs/broker-on-demand.md, "The MCP broker on
 * demand"): {autostart, command, args, log, idle_exit_s, start_timeout},
 * normalised like the others (autostart false, command "" = the mcp-broker
 * next to the responder, args [], log "" = the default place, idle_exit_s 0 =
 * never, start_timeout 10 s). A process setting of the responders, never
 * stored in the registry: cfg_load_yaml keeps it in the document as "broker"
 * only when the file has one, and reg_seed ignores it. 0 or -EINVAL. */
#define CFG_BROKER_IDLE_MAX_S 604800
#define CFG_BROKER_START_TIMEOUT_S 10
int cfg_check_broker(json_object *broker, char *err, size_t errlen);

/* Object names: 1 when `name` matches [A-Za-z0-9][A-Za-z0-9._-]{0,63} (so
 * never "." or ".."), the one rule for assistants, backends and MCP servers in
 * config files and in the admin API. */
int cfg_name_valid(const char *name);

/* 1 when `name` is an environment variable name ([A-Za-z_][A-Za-z0-9_]*, at
 * most 64 characters), as inherit_env entries must be. */
int cfg_env_name_valid(const char *name);

/* 1 when `name` is one of the gateway's own secrets, which never reach an MCP
 * server, not even when listed in inherit_env: ADMIN_API_KEY, OPENAI_API_KEY,
 * ANTHROPIC_API_KEY, REDIS_URL and every AIPROXY_* variable. */
int cfg_env_is_secret(const char *name);

/* proxy_api_keys are stored as "sha256:" + 64 lowercase hex digits of the key
 * (cfg_check_settings converts; an entry already of that form is kept, so a
 * config file may hold the hash instead of the key). */
#define CFG_KEY_HASH_PREFIX "sha256:"
#define CFG_KEY_HASH_LEN (7 + 64)
int cfg_key_is_hash(const char *s);
/* Writes the stored form of key[0..len) into out (NUL-terminated). */
void cfg_key_hash(const char *key, size_t len, char out[CFG_KEY_HASH_LEN + 1]);

/* Writes `doc` as a config.yaml a user can load again (cfg_load_yaml gives the
 * same document back); fields with a "_src" entry are written as their
 * ${VAR} reference. Returns a malloc'd string, NULL on ENOMEM. */
char *cfg_dump_yaml(json_object *doc);

#endif
