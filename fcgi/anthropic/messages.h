/* messages — the Anthropic surface: POST /v1/messages (Anthropic's Messages
 * API on the same agent loop), every error in Anthropic's shape
 * {"type":"error","error":{"type","message"}}. */
#ifndef AIPROXY_MESSAGES_H
#define AIPROXY_MESSAGES_H

#include "fcgi/core/route.h"

/* The surface for the route table: auth_verify's verdict with the 401 in
 * Anthropic's shape, and the core's errors (503 registry down or overloaded,
 * 413, 400 unreadable body) rendered in Anthropic's vocabulary. Static. */
extern const route_surface_t messages_surface;

/* POST /v1/messages. Returns 0, or -EPIPE when the client went away. */
int messages_handle(http_req_t *req, svc_t *svc);

/* The /v1 credential check for /v1/messages: auth_check's verdict, with the
 * 401 in Anthropic's shape. 0 to go on, -EACCES when it answered. */
int messages_auth(http_req_t *req, svc_t *svc);

#endif
