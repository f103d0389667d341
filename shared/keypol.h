/* keypol — managed API keys' pure parts (docs/keys.md): the secret, its
 * hash and display prefix, key ids, and the policy a key or a plan carries:
 * validation, the plan+key merge, and the visibility checks.
 *
 * Policy (all fields optional):
 *   { "assistants": [glob...],                        fnmatch(3) over assistant names
 *     "tools": {"allow": [glob...], "deny": [glob...]}, over "<server>__<tool>"
 *     "rpm": n, "tpm": n, "max_concurrent": n,         positive integers <= 2^53
 *     "budget": {"tokens_per_day": n, "tokens_per_month": n} }
 * The `tools` block has an assistant's shape, so shared/toolsel.h's
 * tsel_why(policy, server, tool) applies to a policy as it is.
 *
 * No I/O apart from getrandom(2) in the two generators; no global state. */
#ifndef AIPROXY_KEYPOL_H
#define AIPROXY_KEYPOL_H

#include <json-c/json.h>
#include <stddef.h>

#define KEYPOL_SECRET_PREFIX "sk-aip-"
/* "sk-aip-" + 43 base64url characters (32 random bytes, no padding). */
#define KEYPOL_SECRET_LEN (7 + 43)
/* "key_" + 16 lowercase hex (8 random bytes). */
#define KEYPOL_ID_LEN (4 + 16)
/* The first characters of a secret shown to admins ("sk-aip-Ab3dE"). */
#define KEYPOL_DISPLAY_LEN 12
#define KEYPOL_HASH_LEN 64

/* A new secret into out (NUL-terminated). 0, or a negative errno when the
 * kernel's random source fails (never a weak secret). */
int keypol_secret(char out[KEYPOL_SECRET_LEN + 1]);

/* A new key id into out. 0 or a negative errno, as keypol_secret. */
int keypol_new_id(char out[KEYPOL_ID_LEN + 1]);

/* 1 when s is "key_" + 16 lowercase hex, else 0 (s may be NULL). */
int keypol_id_valid(const char *s);

/* 1 when s[0..len) starts with KEYPOL_SECRET_PREFIX: a managed key's
 * candidate, worth a Redis lookup. */
int keypol_is_secret(const char *s, size_t len);

/* The lowercase hex SHA-256 of s[0..len) into out (65 bytes). */
void keypol_hash(const char *s, size_t len, char out[KEYPOL_HASH_LEN + 1]);

/* The first KEYPOL_DISPLAY_LEN bytes of `secret` (shorter: all of it) into
 * out, NUL-terminated. */
void keypol_display(const char *secret, char out[KEYPOL_DISPLAY_LEN + 1]);

/* Checks `policy` (borrowed) as a policy: an object with known fields only,
 * globs strings of 1..CAP_TOOL_GLOB bytes, numbers positive integers <=
 * 2^53. 0, or -EINVAL with err "field: problem" (field as a path:
 * "budget.tokens_per_day", "tools.allow[2]"). */
int keypol_check(json_object *policy, char *err, size_t errlen);

/* The effective policy: `plan`'s fields with `key`'s own over them, field
 * by field (`budget` and `tools` per sub-field). Either may be NULL or not
 * an object (nothing). *out is a new object the caller owns, or NULL when
 * the result has no field (no policy). 0 or -ENOMEM. */
int keypol_merge(json_object *plan, json_object *key, json_object **out);

/* 1 when `policy` (NULL: none) lets its holder see assistant `name`: no
 * `assistants` field, or one of its globs matches; else 0. */
int keypol_assistant_ok(json_object *policy, const char *name);

/* 1 when `policy` (NULL: none) lets its holder use MCP tool `tool` of
 * `server` (tools.allow / tools.deny as toolsel reads them); else 0. */
int keypol_tool_ok(json_object *policy, const char *server, const char *tool);

/* A point in time given as unix seconds (a JSON integer >= 0) or an RFC 3339
 * string ("2027-01-31T12:00:00Z", "…+02:00", fractions ignored) into *out
 * (unix seconds). JSON null is 0 (never). 0, or -EINVAL. */
int keypol_time(json_object *v, long long *out);

#endif
