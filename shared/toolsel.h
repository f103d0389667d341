/* toolsel — which MCP tools an assistant offers the model, and how many
 * tools it may offer in all (docs/config.md "Tool selection and the cap").
 *
 * An assistant's `tools: {allow: [globs], deny: [globs]}` is matched with
 * fnmatch(3) (no flags: '*' matches any characters) against
 * "<server>__<tool>" built from the raw names: the registry's server name and
 * the tool's MCP name, before the sanitising, shortening and de-duplication
 * of the name the model sees (agent/toolname.h). The raw name is the stable
 * one: the model-facing name can change with the client's own tools (a clash
 * renames ours) and a long one is cut. deny wins over allow; an absent or
 * null allow allows everything; an empty allow list allows nothing.
 *
 * The cap counts the MCP tools offered after that filter plus the client's
 * own tools: the assistant's `max_tools`, else AIPROXY_MAX_TOOLS, else 128
 * (OpenAI refuses more). Pure apart from reading AIPROXY_MAX_TOOLS. */
#ifndef AIPROXY_TOOLSEL_H
#define AIPROXY_TOOLSEL_H

#include <json-c/json.h>
#include <stddef.h>

#define TSEL_CAP_ENV "AIPROXY_MAX_TOOLS"
#define TSEL_CAP_DEFAULT 128

/* The global cap: AIPROXY_MAX_TOOLS when it is a whole number from 1 to
 * CAP_TOOLS_SETTING, else TSEL_CAP_DEFAULT (a bad value is reported on stderr
 * once per process). Read each call: cheap, and tests may change it. */
long tsel_global_cap(void);

/* The cap for `assistant` (a normalised registry entry, borrowed): its
 * max_tools when it is a number, else tsel_global_cap(). */
long tsel_cap(json_object *assistant);

/* 1 when `assistant` offers MCP tool `tool` of `server` (see above), else 0.
 * Glob entries that are not strings are ignored (cfg_check_assistant refuses
 * them; this only guards against a hand-edited registry). */
int tsel_allowed(json_object *assistant, const char *server, const char *tool);

/* tsel_allowed with the reason: TSEL_OFFERED, TSEL_DENIED (a tools.deny
 * glob matched: deny wins), TSEL_NOT_ALLOWED (tools.allow is a list and no
 * glob of it matched, or memory ran out building a long name);
 * TSEL_TASK_REQUIRED only from tsel_why_tool. */
enum { TSEL_OFFERED = 0, TSEL_NOT_ALLOWED = 1, TSEL_DENIED = 2, TSEL_TASK_REQUIRED = 3 };
int tsel_why(json_object *assistant, const char *server, const char *tool);

/* Why no assistant offers catalog entry `tool` (borrowed: {name,
 * execution?, ...} as the broker keeps it), or NULL when one may. Today one
 * reason: `execution.taskSupport` is "required" (MCP tasks, which aiproxy
 * does not run: a plain tools/call of it fails with -32601 every time). */
const char *tsel_unofferable(json_object *tool);

/* tsel_why for catalog entry `tool`: TSEL_TASK_REQUIRED when
 * tsel_unofferable says so, else tsel_why with its name. */
int tsel_why_tool(json_object *assistant, const char *server, json_object *tool);

/* 1 when the assistant offers MCP tools at all: it lists MCP servers and its
 * max_tool_iterations is not 0 (with 0 the agent lists no catalog). */
int tsel_uses_mcp(json_object *assistant);

/* A running count of the tools an assistant offers, server by server. */
typedef struct tsel_tally {
    size_t total;          /* MCP tools offered so far */
    char detail[256];      /* "demo: 129, calc: 2" (cut with "..." when long) */
} tsel_tally_t;

void tsel_tally_init(tsel_tally_t *t);

/* Adds the tools of `server`'s catalog `tools` (an array of {name, ...},
 * borrowed; anything else counts nothing) that `assistant` offers: named
 * ones its allow/deny lists let through, unless tsel_unofferable. Returns how many were added. */
size_t tsel_tally_add(tsel_tally_t *t, json_object *assistant, const char *server,
                      json_object *tools);

/* The refusal for an assistant `name` whose count `total` (MCP tools in *t
 * plus `client` tools the request brought) passes `cap`, into out: names the
 * assistant, the count, where it comes from and the fix. */
void tsel_over_msg(const tsel_tally_t *t, const char *name, size_t client, long cap, char *out,
                   size_t outlen);

#endif
