/* caps — every size and count limit in aiproxy, in one place, each with its
 * reason (as curl's dynbuf.h lists its DYN_* limits).
 *
 * A cap bounds what a peer (client, upstream, MCP server, Redis, a config
 * file) can make us allocate or repeat; passing it is refused with a message
 * naming the limit, never truncated silently unless the line says so.
 * Values keep the type they always had (some are printed with %d, %u, %ld).
 * Not here: timeouts and backoff ceilings (they bound time, not memory, and
 * sit beside the code that waits), wire-format lengths (WIRE_ID_LEN,
 * SHA256_*_LEN), and the 1 KiB error-message arrays on the stack. A module
 * whose callers (or tests) know an older name defines it from its CAP_. */
#ifndef AIPROXY_CAPS_H
#define AIPROXY_CAPS_H

/* --- client requests (fcgi/) ---------------------------------------------- */

/* Request body when AIPROXY_MAX_BODY is unset (the shipped nginx and lighttpd
 * configs enforce the same). */
#define CAP_BODY_DEFAULT 4194304L
/* Largest AIPROXY_MAX_BODY accepted: a body is held whole in memory. */
#define CAP_BODY_SETTING (1L << 30)
/* JSON nesting in a chat or messages request: deeper is an attack, not a chat. */
#define CAP_REQ_JSON_DEPTH 64
/* Block size of the per-request arena (a larger allocation gets its own block). */
#define CAP_ARENA_BLOCK (16u << 10)
/* One SSE event we write to a client (a chunk with a tool call's arguments). */
#define CAP_SSE_OUT_EVENT (8u << 20)
/* "chatcmpl-"/"msg_" + 24 random characters + NUL, with room. */
#define CAP_RESP_ID 48
/* The Allow header's method list ("GET, POST, PUT, PATCH, DELETE" fits). */
#define CAP_ROUTE_ALLOW 64
/* MCP servers whose tool calls one request tallies apart (fcgi/core/reqinfo.h):
 * an assistant with more still counts every call in the totals. */
#define CAP_REQINFO_SERVERS 16
/* Metric series (label combinations) the responder's shared segment holds
 * (fcgi/metrics/mstore.h); past it values go to an "other" series. */
#define CAP_METRICS_SERIES 4096
/* The header lines every answer of a request carries besides its own
 * (rate-limit headers, X-Request-Id): http_add_header refuses past this. */
#define CAP_RESP_HEADERS 2048
/* A request id (X-Request-Id, shared/reqid.h): a client's longer one is
 * replaced, and every log line and header that carries it stays short. */
#define CAP_REQUEST_ID 128
/* Responder threads per worker (--threads, --reserve): past this is a typo. */
#define CAP_THREADS 4096

/* Tool events (fcgi/core/toolev.c, docs/tool-events.md): a tool result shown
 * in a tool.finished event is cut to this many bytes (at a UTF-8 character
 * boundary, "truncated": true says so); the whole result still goes to the
 * model. A UI needs a preview, not a second copy of every result. */
#define CAP_TOOLEV_PREVIEW 1024
/* The arguments shown in a tool.started event, cut the same way. */
#define CAP_TOOLEV_ARGS 4096
/* Tool events one non-streamed answer lists (aiproxy_tool_events): later
 * ones are dropped, silently (a preview, not an audit log). Rounds are capped
 * (max_tool_iterations <= 100) but calls per round come from the model. */
#define CAP_TOOLEV_LIST 4096

/* --- admin API (fcgi/admin/) ----------------------------------------------- */

/* An admin document (assistant, backend, MCP server) as a request body. */
#define CAP_ADMIN_DOC_BODY (1024 * 1024)
/* One ${VAR:-default} reference rewritten with its default hidden. */
#define CAP_ADMIN_REF (64 * 1024)
/* A name in an admin path segment, before it is validated as a config name. */
#define CAP_ADMIN_NAME 256

/* --- credentials (fcgi/auth/) ---------------------------------------------- */

/* Authorization, X-API-Key, ?apikey= : at most three distinct candidates. */
#define CAP_AUTH_CREDS 3
/* Longer values are not keys anyone issues; ignoring them bounds hashing work. */
#define CAP_AUTH_CRED_LEN 4096
/* The API manager's validation URL, after the key is inserted. */
#define CAP_APIMAN_URL 2048
/* The Redis key under which one API-manager verdict is cached. */
#define CAP_APIMAN_CKEY 512
/* One header line to the API manager: a credential plus its name. */
#define CAP_APIMAN_HDR (CAP_AUTH_CRED_LEN + 256)

/* --- the agent and its upstreams (agent/) ---------------------------------- */

/* The assistant's text over all rounds of one completion. */
#define CAP_AG_CONTENT (16u * 1024 * 1024)
/* The assistant's text in one round (one upstream answer). */
#define CAP_AG_TURN_CONTENT (4u * 1024 * 1024)
/* The JSON we send upstream: the client's body grown by tool results. */
#define CAP_UP_REQ_BODY (64u * 1024 * 1024)
/* The upstream URL we build from base_url and the path. */
#define CAP_UP_URL 8192
/* One HTTP header line to an upstream (default_headers, api keys). */
#define CAP_UP_HEADER 16384
/* A whole (non-streamed) upstream answer. */
#define CAP_UP_BODY (16u * 1024 * 1024)
/* One SSE event of an upstream's stream. */
#define CAP_UP_EVENT (4u * 1024 * 1024)
/* Tool calls one streamed OpenAI turn may carry; more is invalid data. */
#define CAP_OA_STREAM_CALLS 128
/* One streamed OpenAI tool call's arguments. */
#define CAP_OA_STREAM_ARGS (1024 * 1024)
/* One streamed tool call's id, and its function name. */
#define CAP_OA_STREAM_CALL_ID 256
#define CAP_OA_STREAM_CALL_NAME 256
/* Tool-call arguments one Anthropic stream may accumulate (all calls). */
#define CAP_ANTH_STREAM_ARGS (4u << 20)
/* The system prompt sent to Anthropic, all system messages joined. */
#define CAP_ANTH_SYSTEM (4u << 20)
/* A tool name as the model sees it: OpenAI names match ^[A-Za-z0-9_-]{1,64}$. */
#define CAP_TOOL_NAME 64
/* A mixed turn's stored round (agent/mixed.c: all the turn's tool calls and
 * our calls' results, as JSON): a larger one is not stored, the follow-up
 * then falls back to the client's own conversation. Two full tool results. */
#define CAP_MX_ROUND (16u << 20)
/* Stored rounds one request may re-insert (its history's mixed turns). */
#define CAP_MX_ROUNDS 32
/* Largest tool cap (max_tools, AIPROXY_MAX_TOOLS): a request offering more
 * tools than this is refused by every upstream we know of. */
#define CAP_TOOLS_SETTING 10000
/* One glob of an assistant's tools.allow / tools.deny list. */
#define CAP_TOOL_GLOB 256
/* One tool result flattened to text for the model. */
#define CAP_MCPC_TEXT (8u << 20)
/* One image of a tool result sent to a vision upstream (tool_images), as
 * base64 text: Anthropic refuses images over 5 MB; OpenAI takes 20 MB, and
 * every image goes up again with each later round. A larger one reaches the
 * model as a placeholder naming its type and size. */
#define CAP_MCPC_IMAGE (5u << 20)
/* A "[tool error] ..." text made by the responder itself. */
#define CAP_MCPC_ERRTEXT 4096

/* --- Redis (shared/rconn) ----------------------------------------------------- */

/* Sentinels listed in one redis+sentinel:// URL (docs/redis.md); three or five
 * is the usual quorum, more is a typo or an attack on the start-up time. */
#define CAP_REDIS_SENTINELS 8

/* --- the broker protocol and MCP servers (shared/wire, mcp-broker/) --------- */

/* One wire message (a call or its reply) on Redis pub/sub. */
#define CAP_WIRE_MSG (32u << 20)
/* The message of one relayed MCP progress report (longer is cut). */
#define CAP_WIRE_PROGRESS_TEXT 1024
/* Calls for servers not known yet, held while the registry is read. */
#define CAP_BROKER_PENDING 1024
/* One JSON-RPC message on an MCP server's stdout. */
#define CAP_STDIO_LINE (32u << 20)
/* One line of an MCP server's stderr, copied to our log (longer is cut). */
#define CAP_STDIO_ERRLINE 8192
/* One JSON body or SSE event from an MCP server over HTTP. */
#define CAP_MCPHTTP_BODY (16u * 1024u * 1024u)
/* An MCP server's HTTP error body, kept for the message (longer is cut). */
#define CAP_MCPHTTP_ERRTXT 512u
/* One configured header line sent to an MCP server over HTTP. */
#define CAP_MCPHTTP_HEADER 8192
/* Reconnections for one pending response on a dropped SSE stream. */
#define CAP_MCPHTTP_RESUMES 5
/* Optional GET streams reopened without traffic before we stop trying. */
#define CAP_MCPHTTP_GET_REOPENS 3
/* tools/list pages before a cursor that never ends is called a loop. */
#define CAP_MCP_LIST_PAGES 100
/* Calls in flight a sampling request is matched against (the newest ones):
 * the owner must be one; more than this many at once on one server is rare. */
#define CAP_MCP_SAMPLING_CALLS 64
/* Roots configured for one MCP server (roots/list answers them all). */
#define CAP_MCP_ROOTS 64
/* getpwnam_r's scratch buffer for a child's user: /etc/passwd lines are short. */
#define CAP_PASSWD_BUF 4096

/* --- config and SSE parsing (shared/) ---------------------------------------- */

/* A config file. */
#define CAP_CFG_FILE (16 * 1024 * 1024)
/* YAML nesting in a config file. */
#define CAP_CFG_DEPTH 64
/* A scalar after ${VAR:-default} expansion: only stops runaway input. */
#define CAP_CFG_SCALAR (1024 * 1024)
/* The whole config dumped as YAML (the admin API's config export). */
#define CAP_CFG_DUMP (64 * 1024 * 1024)
/* Object names: [A-Za-z0-9][A-Za-z0-9._-]{0,63}, file- and key-safe. */
#define CAP_NAME 64
/* An SSE "event:" name, and an SSE "id:" value (the data has its own cap). */
#define CAP_SSE_EVENT_NAME 256
#define CAP_SSE_ID 1024

/* POST /v1/responses: one stream event (response.completed carries the whole
 * response: the answer plus every mcp_call's output), and the default byte
 * cap of one stored response (responses.store_max_bytes). */
#define CAP_RESP_EVENT (48u << 20)
#define CAP_RESP_STORE_DEFAULT (4L << 20)

/* --- traces (shared/otel) --------------------------------------------------- */

/* Attributes of one span, and the bytes of its name, status message and
 * string values together: GenAI spans carry about a dozen short ones. */
#define CAP_OTEL_ATTRS 24
#define CAP_OTEL_SPAN_TEXT 1536
/* Finished spans waiting for the exporter, per process: a collector that is
 * down costs at most this many spans of memory (about 5 MiB), then drops. */
#define CAP_OTEL_QUEUE 2048
/* Spans per OTLP POST (the exporter also sends every second). */
#define CAP_OTEL_BATCH 256
/* Tool spans of one request (each ~2 KiB of the request's arena); calls
 * past it get none, and their broker spans join the request's. */
#define CAP_TRACE_TOOLS 64
/* A tracestate header passed on (W3C: 32 members, 512 characters). */
#define CAP_TRACESTATE 512
/* OTEL_EXPORTER_OTLP_HEADERS and the endpoint URL. */
#define CAP_OTEL_SETTING 4096

/* GET /admin/usage: the hour or day buckets one query may read (each is one
 * HGETALL in one pipeline): 92 days of hours. */
#define CAP_USAGE_BUCKETS (24 * 92)
/* GET /admin/usage: the rows one answer may hold, and its CSV text. */
#define CAP_USAGE_ROWS 100000
#define CAP_USAGE_CSV (64u << 20)
/* Usage counters a worker process keeps between flushes (distinct bucket key
 * and field pairs, fcgi/usage/usage_pend.h): past half of it the flusher is
 * woken early; a record that would pass it (Redis down a long while) is
 * dropped and counted. ~100 bytes each. */
#define CAP_USAGE_PENDING 20000

/* The managed-key cache (fcgi/auth/auth_kcache.h): slots per process, and
 * the largest entry kept (id, name, owner, plan and the effective policy's
 * text); a larger key is looked up on every request. */
#define CAP_KCACHE_SLOTS 512
#define CAP_KCACHE_ENTRY 16384

#endif
