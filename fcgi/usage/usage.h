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
 * was a completion or an /mcp tool call with a principal or an assistant, in
 * one pipelined round trip on the thread's registry connection. Runs after
 * the client has its answer. Redis down: the record is dropped and counted
 * (usage_drops), with a warning at most once a minute. */
void usage_after(const http_req_t *req, svc_t *svc);

/* Answers GET /admin/usage (the caller checked the admin credential and the
 * method). Returns as http_send. */
int usage_admin(http_req_t *req, svc_t *svc);

/* Records dropped since the process started (Redis unreachable or failing). */
unsigned long usage_drops(void);

#endif
