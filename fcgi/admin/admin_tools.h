/* admin_tools — what an assistant offers the model, learned from its MCP
 * servers' catalogs (Redis, or the broker starting the server): the tool-cap
 * check of the admin API and of config loading, and the listing of
 * GET /admin/assistants/{name}/tools (docs/admin.md). */
#ifndef AIPROXY_ADMIN_TOOLS_H
#define AIPROXY_ADMIN_TOOLS_H

#include "agent/mcpc.h"
#include "shared/toolsel.h"

#include <json-c/json.h>
#include <stddef.h>
#include <stdio.h>

/* How long the admin API waits for catalogs, all servers of one request
 * together (the admin's MCP tool listing waits as long for one server). */
#define ADMIN_TOOLS_BUDGET_MS 30000

/* Checks assistant `name` (a normalised registry entry, borrowed) against
 * its tool cap (tsel_cap), counting the tools of each of its MCP servers'
 * catalogs that it offers. Catalogs come through `c`: with ask_broker 0 only
 * those Redis already holds, else the broker is asked to start a server
 * whose catalog is not there, each wait bounded by that server's `timeout`
 * (from `servers`, the registry's name -> MCP server map) and all of them by
 * budget_ms. An assistant that offers no MCP tools (tsel_uses_mcp) passes
 * without a look.
 * Returns 0 within the cap; -E2BIG past it, with msg the refusal naming the
 * assistant, the count and the fix; -EAGAIN when a catalog could not be
 * learned (broker down, server failing, not listed yet), with msg saying
 * which and why: the count is then checked when a request is built. */
int admin_tools_check(mcpc_t *c, json_object *servers, const char *name, json_object *assistant,
                      int ask_broker, int budget_ms, char *msg, size_t msglen);

/* The config loader's check (aiproxy-fcgi -c, and --check): every assistant
 * of the loaded document `doc` (borrowed) against its cap, with the catalogs
 * Redis at redis_url/prefix holds; with ask_broker (--check) a catalog not
 * there is asked of the broker, ADMIN_TOOLS_BUDGET_MS per assistant, which
 * needs the server in the registry Redis holds. Returns 0, or -E2BIG with err
 * "file: assistants.NAME: <refusal>" for the first assistant past its cap.
 * Assistants whose catalogs could not all be learned are not refused: with
 * `notes` non-NULL, a line per such assistant goes there. */
int admin_tools_check_doc(json_object *doc, const char *file, const char *redis_url,
                          const char *prefix, int ask_broker, FILE *notes, char *err,
                          size_t errlen);

/* The listing for assistant `name`: a new object
 *   {object: "list", assistant, max_tools, count, over_cap,
 *    data: [{name, server, tool, offered, filtered_by?}],
 *    unavailable: [{server, error}]}
 * `name` is the model-facing name of an offered tool (null when not
 * offered; a client tool of the same name renames ours per request),
 * filtered_by says why one is not ("tools.allow", "tools.deny",
 * "max_tool_iterations", "execution.taskSupport" with `reason`, "duplicate":
 * the same tool listed again). Names are those of agent/toolname.h with no
 * client tools. Catalogs are learned as admin_tools_check does with
 * ask_broker. NULL on ENOMEM. */
json_object *admin_tools_list(mcpc_t *c, json_object *servers, const char *name,
                              json_object *assistant, int budget_ms);

/* Marks, in one MCP server's catalog `tools` (the array GET
 * /admin/mcp/{name}/tools shows; modified in place), each tool no assistant
 * can be offered with `not_offered`: the reason (tsel_unofferable). */
void admin_tools_mark(json_object *tools);

#endif
