/* accesslog — the responder's one line per finished request: the text line
 * it always wrote (`METHOD PATH STATUS MSms`), or with AIPROXY_LOG_FORMAT=json
 * one JSON object with who, what and how long (docs/observability.md,
 * "Request ids and logs"). Never a secret: the key is req->info.principal. */
#ifndef AIPROXY_ACCESSLOG_H
#define AIPROXY_ACCESSLOG_H

#include "fcgi/core/http.h"
#include "shared/buf.h"

#include <json-c/json.h>

/* The access line's JSON members for `req`, finished at now_us (CLOCK_MONOTONIC
 * µs): request_id, method, route, path, assistant, key, status,
 * client_gone, total_ms, upstream_ms, tools_ms, ttft_ms, prompt_tokens,
 * completion_tokens, tool_calls, tool_rounds, bytes_out. Strings are valid
 * UTF-8 (the path is cut to 1024 bytes). A new object (caller owns); NULL on
 * ENOMEM. Pure: no I/O, for unit tests. */
json_object *accesslog_fields(const http_req_t *req, long long now_us);

/* The text of accesslog_fields's object, byte for byte as json-c writes it
 * (plain, no slash escaping), appended to `out`, without building the tree.
 * Returns 0, or buf_append's error (-ENOSPC past out's cap, -ENOMEM). Pure. */
int accesslog_text(const http_req_t *req, long long now_us, buf_t *out);

/* Logs the request's access line (info level) in the log's format. */
void accesslog_write(const http_req_t *req);

#endif
