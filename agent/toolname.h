/* toolname — the names under which MCP tools are offered to the model.
 *
 * OpenAI tool names must match ^[A-Za-z0-9_-]{1,64}$. An MCP tool `tool` of
 * server `server` is offered as `<server>__<tool>`, every other character
 * replaced by "_", truncated to 64 characters, and made unique against every
 * name already in the map (client-supplied tools included) with a suffix
 * "_2", "_3", ... (the base is shortened so the suffix still fits). The map
 * gives back (server, tool) for a name the model calls. Pure: no I/O. */
#ifndef AIPROXY_TOOLNAME_H
#define AIPROXY_TOOLNAME_H

#include "shared/caps.h"

#include <stddef.h>

#define TN_MAX CAP_TOOL_NAME

typedef struct tn_map tn_map_t;

/* An empty map. NULL on ENOMEM. */
tn_map_t *tn_new(void);
void tn_free(tn_map_t *m);

/* Marks `name` as taken by someone else (a client-supplied tool), so no MCP
 * tool gets it. Reserved names do not map back. 0 or -ENOMEM. */
int tn_reserve(tn_map_t *m, const char *name);

/* Registers MCP tool (server, tool) and gives its unique offered name in
 * *name (owned by the map, valid until tn_free). 0, -EINVAL for an empty
 * tool name, -ENOMEM. */
int tn_add(tn_map_t *m, const char *server, const char *tool, const char **name);

/* The MCP (server, tool) behind an offered name: 0, or -ENOENT when the name
 * is not one of ours (a client tool or an unknown one). Pointers borrowed. */
int tn_lookup(const tn_map_t *m, const char *name, const char **server, const char **tool);

/* How many MCP tools (not reserved names) the map holds. */
size_t tn_ours(const tn_map_t *m);

/* 1 when `name` is taken (ours or reserved), else 0. */
int tn_taken(const tn_map_t *m, const char *name);

/* The sanitised, truncated `<server>__<tool>` into out[TN_MAX + 1], without
 * de-duplication. */
void tn_make(const char *server, const char *tool, char out[TN_MAX + 1]);

#endif
