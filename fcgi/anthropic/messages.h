/* messages — the Anthropic surface: POST /v1/messages (Anthropic's Messages
 * API on the same agent loop), every error in Anthropic's shape
 * {"type":"error","error":{"type","message"}}. */
#ifndef AIPROXY_MESSAGES_H
#define AIPROXY_MESSAGES_H

#include "fcgi/core/route.h"

/* The surface for the route table: auth_verify's verdict with the 401 in
 * Anthropic's shape, every error (the core's 503/413/400, the runner's and
 * the agent's) rendered in Anthropic's vocabulary, and the translation hooks
 * for the completion runner (POST /v1/messages). Static. */
extern const route_surface_t messages_surface;


/* The /v1 credential check for /v1/messages: auth_check's verdict, with the
 * 401 in Anthropic's shape. 0 to go on, -EACCES when it answered. */
int messages_auth(http_req_t *req, svc_t *svc);

#endif
