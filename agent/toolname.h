/* toolname — the names under which MCP tools are offered to the model.
 *
 * OpenAI tool names must match ^[A-Za-z0-9_-]{1,64}$. An MCP tool `tool` of
 * server `server` is offered as `<server>__<tool>` (docs/agent.md "Tool
 * names"): Latin letters with accents are written without them (é → e,
 * ß → ss, Æ → AE: Latin-1 and Latin Extended-A), every other character
 * outside the alphabet becomes "_". The name is stable: it depends on the
 * tool's own raw names only, never on the order a server lists its tools nor
 * on which other tools exist, except that it gets a suffix "_" + a short hex
 * hash of the raw (server, tool) names when
 *  - another MCP tool (of any server) or a client-supplied tool has the
 *    same sanitised name: then every MCP tool of that name gets one (the
 *    client's tool keeps its name);
 *  - a character could not be transliterated (a CJK name, a stray byte),
 *    one "_" standing for each run of them;
 *  - the name is longer than 64 characters: it is cut so that the suffix
 *    fits.
 * The hash is 6 hex digits, longer only in the (1 in 16 million) case where
 * that is taken too. Pure: no I/O.
 *
 * Use: tn_reserve the client's names, tn_add every MCP tool, tn_seal, then
 * read the names (tn_get, tn_lookup). */
#ifndef AIPROXY_TOOLNAME_H
#define AIPROXY_TOOLNAME_H

#include "shared/caps.h"

#include <stddef.h>

#define TN_MAX CAP_TOOL_NAME
#define TN_HASH_HEX 6         /* hex digits of the suffix, at the least */

typedef struct tn_map tn_map_t;

/* An empty map. NULL on ENOMEM. */
tn_map_t *tn_new(void);
void tn_free(tn_map_t *m);

/* Marks `name` as taken by someone else (a client-supplied tool), so no MCP
 * tool gets it. Reserved names do not map back. Before tn_seal: 0, -ENOMEM,
 * -EBUSY once sealed. */
int tn_reserve(tn_map_t *m, const char *name);

/* Registers MCP tool (server, tool) with the caller's `ud` (given back by
 * tn_get). Before tn_seal. 0; -EINVAL for an empty tool name; -EEXIST when
 * the same (server, tool) is already in (a server that lists a tool twice,
 * or a server named twice: offer it once); -ENOMEM; -EBUSY once sealed. */
int tn_add(tn_map_t *m, const char *server, const char *tool, void *ud);

/* Gives every MCP tool its offered name (see above). 0 or -ENOMEM (the map
 * is then unusable). Idempotent. */
int tn_seal(tn_map_t *m);

/* The i-th MCP tool in the order added (i < tn_ours): its offered name
 * (NULL before tn_seal), raw names and ud. Pointers owned by the map, valid
 * until tn_free. 0 or -ENOENT. */
int tn_get(const tn_map_t *m, size_t i, const char **name, const char **server,
           const char **tool, void **ud);

/* The MCP (server, tool) behind an offered name (after tn_seal): 0, or
 * -ENOENT when the name is not one of ours (a client tool or an unknown
 * one). Pointers borrowed. */
int tn_lookup(const tn_map_t *m, const char *name, const char **server, const char **tool);

/* How many MCP tools (not reserved names) the map holds. */
size_t tn_ours(const tn_map_t *m);

/* 1 when `name` is taken (ours after tn_seal, or reserved), else 0. */
int tn_taken(const tn_map_t *m, const char *name);

/* Flags of tn_make. */
enum { TN_LOSSY = 1, TN_LONG = 2 };

/* The transliterated, sanitised `<server>__<tool>` into out[TN_MAX + 1], cut
 * at TN_MAX, without any suffix. Returns TN_LOSSY when a character had no
 * transliteration, TN_LONG when the whole name is longer than TN_MAX (or
 * 0): either way tn_seal adds the hash suffix. */
int tn_make(const char *server, const char *tool, char out[TN_MAX + 1]);

#endif
