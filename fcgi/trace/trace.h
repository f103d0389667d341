/* trace — the responder's OpenTelemetry spans (docs/traces.md): one SERVER
 * span per request, one CLIENT span "chat <model>" per upstream turn and one
 * INTERNAL span "execute_tool <tool>" per tool call, named and attributed
 * after the GenAI semantic conventions, in the trace of the client's
 * traceparent when it sent one. Exported by shared/otel.
 *
 * A responder thread serves one request at a time: the request's trace
 * state lives in its arena, found through the thread. When tracing is off
 * (otel_enabled() == 0) every entry point returns at its first branch, and
 * no trace context goes anywhere: none invented, none passed on. */
#ifndef AIPROXY_TRACE_H
#define AIPROXY_TRACE_H

#include "agent/agent.h"
#include "fcgi/core/http.h"
#include "fcgi/core/svc.h"

#include <json-c/json.h>

/* A completion is about to run the agent for `req` with `backend` (the
 * borrowed registry entry): reads the client's traceparent/tracestate,
 * decides sampling and opens the request's span. Returns the tracestate to
 * pass upstream (arena memory) or NULL. */
const char *trace_begin(http_req_t *req, json_object *backend);

/* The agent's event `ev` for `req` (complete.c's on_event): opens and
 * closes turn and tool spans, and fills ev->traceparent for TURN_START and
 * TOOL_START. */
void trace_event(http_req_t *req, const agent_event_t *ev);

/* routes_after hook: ends what is open and the request's span (made now
 * when trace_begin never ran: every route has one). */
void trace_after(const http_req_t *req, svc_t *svc);

#endif
