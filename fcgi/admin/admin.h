/* admin — the /admin API: read and edit the registry in Redis (docs/admin.md). */
#ifndef AIPROXY_ADMIN_H
#define AIPROXY_ADMIN_H

#include "fcgi/core/route.h"

#include <hiredis/hiredis.h>

/* The surface for the route table: the ADMIN_API_KEY check (admin_authorize),
 * errors in OpenAI's shape. Static. */
extern const route_surface_t admin_surface;

/* Answers any request whose path starts with /admin (including its own 401s
 * and 404s). Returns 0 or -EPIPE when the client went away. */
int admin_handle(http_req_t *req, svc_t *svc);

/* The admin credential check alone (ADMIN_API_KEY), for the responder to run
 * before it reads a body: 0 to go on, or answers 403/401 and returns
 * -EACCES. */
int admin_authorize(http_req_t *req, svc_t *svc);

/* For the admin API's own files. Sends `obj` as JSON with `status` and
 * frees it; NULL (a failed build) answers 500 "out of memory". Returns as
 * http_send. */
int admin_send_owned(http_req_t *req, int status, json_object *obj);

/* Sends 200 {"object":"list","data":data} and frees data (an array, owned
 * from here on); NULL, or no memory for the envelope, answers 500 "out of
 * memory". Returns as http_send. */
int admin_send_list(http_req_t *req, json_object *data);

/* A key or plan store (Redis) that did not answer: logs at warn `what` and
 * why (the error reply `rep`, else the connection's error) and answers 503
 * registry_unavailable. Returns as http_send. */
int admin_store_down(http_req_t *req, const char *what, redisContext *c, const redisReply *rep);

#endif
