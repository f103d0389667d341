/* usage — usage accounting (docs/usage.md): what each completion and /mcp
 * tool call used, per principal and assistant, per UTC hour and day, in Redis
 * hashes (`<prefix>use:h:<YYYYMMDDHH>`, `<prefix>use:d:<YYYYMMDD>`, fields
 * "<principal>|<assistant>|<metric>"), kept for the registry setting
 * `usage: {retention_hours, retention_days}`; and GET /admin/usage. */
#ifndef AIPROXY_USAGE_H
#define AIPROXY_USAGE_H

#include "fcgi/core/http.h"
#include "fcgi/core/svc.h"

/* The after-hook (routes_after): records the finished request `req` when it
 * was a completion or an /mcp tool call with a principal or an assistant.
 * With a flusher running (usage_start) the record is only added to the
 * process's pending sums (a mutex, no I/O); the flusher writes them within
 * the registry setting `usage: {flush_ms}` (default 1000). Without one (CGI,
 * or flush_ms 0) it is written here, in one pipelined round trip on the
 * thread's registry connection. Runs after the client has its answer. A
 * record that cannot be kept or written is dropped and counted (usage_drops),
 * with a warning at most once a minute. */
void usage_after(const http_req_t *req, svc_t *svc);

/* Starts the process's flusher thread, writing through rpool_for(redis_url).
 * Call in the worker process, after any fork (the thread and its sums are
 * this process's). 0 (also when already started), or a negative code with a
 * warning: records are then written by their requests. */
int usage_start(const char *redis_url);

/* Stops the flusher after one last flush of what is pending (Redis down: it
 * is dropped and counted). For the worker's exit, after its responder
 * threads are drained; later records are written by their requests. No-op
 * when not started. */
void usage_stop(void);

/* Answers GET /admin/usage (the caller checked the admin credential and the
 * method). Returns as http_send. */
int usage_admin(http_req_t *req, svc_t *svc);

/* Records dropped since the process started (Redis unreachable or failing
 * past the pending cap or at exit, or refusing a write). */
unsigned long usage_drops(void);

#endif
