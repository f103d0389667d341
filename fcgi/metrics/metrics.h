/* metrics — the responder's Prometheus metrics (docs/observability.md):
 * what is counted, from where, and GET /metrics. Values live in the host's
 * shared segment (mstore.h), so any worker's scrape shows the whole pool.
 *
 * Labels come only from the route table and the registry (route pattern,
 * assistant, backend, MCP server, tool) or are fixed words (status class,
 * outcome, token type): never client text, never a key or who the caller
 * is. Every recording call is a no-op while metrics are off
 * (AIPROXY_METRICS=0, or before metrics_init: CGI mode). */
#ifndef AIPROXY_METRICS_H
#define AIPROXY_METRICS_H

#include "agent/agent.h"
#include "fcgi/core/http.h"
#include "fcgi/core/route.h"
#include "fcgi/core/svc.h"
#include "shared/buf.h"

/* Reads AIPROXY_METRICS ("0" turns collection and the route off) and
 * AIPROXY_METRICS_TOKEN, and maps the shared segment: call once in the
 * process that forks the workers, before it forks. Returns 0, or -ENOMEM
 * (metrics stay off; the caller logs it). */
int metrics_init(void);

/* 0 when AIPROXY_METRICS=0 (GET /metrics then answers 404). */
int metrics_enabled(void);

/* In a new worker process: it is worker slot `slot` (0 for -w 0). */
void metrics_worker(int slot);

/* In the master: slot's worker was reaped; its gauges drop to 0. */
void metrics_worker_gone(int slot);

/* Gauges of this worker: responder threads started (+n at start), busy
 * (+1 from accept, -1 at finish), completions admitted (admit.c). */
void metrics_threads(int d);
void metrics_busy(int d);
void metrics_in_flight(int d);

/* One event of the agent loop of the request `ri` (TURN_DONE: the upstream
 * turn's time and failure; TOOL_DONE: the tool call's time and outcome). */
void metrics_event(const reqinfo_t *ri, const agent_event_t *ev);

/* One tool call outside the agent loop (the /mcp endpoint's tools/call):
 * `outcome` an agent_tool_outcome_t, `us` its time. */
void metrics_tool(const char *server, const char *tool, int outcome, long long us);

/* routes_after hook: the request's count, duration, TTFT, tool rounds,
 * tokens, refusals, and the thread's Redis round trips since the last. */
void metrics_after(const http_req_t *req, svc_t *svc);

/* The whole exposition into b: every family, then the scrape-time gauges
 * redis_up (1/0) and registry_version. Returns 0 or buf's error. */
int metrics_render(buf_t *b, int redis_up, long long registry_version);

/* The GET /metrics route: loopback clients only, or with
 * AIPROXY_METRICS_TOKEN set, a matching "Authorization: Bearer" from
 * anywhere (401 otherwise); 404 when metrics are off. */
int metrics_handle(http_req_t *req, const route_t *r, svc_t *svc);

#endif
