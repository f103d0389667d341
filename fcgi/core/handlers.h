/* handlers — the responder's answers, one function per route (route.h). Each
 * answers the request itself and returns 0, or -EPIPE when the client went
 * away. The registry snapshot (req->reg) is fresh when they run. */
#ifndef AIPROXY_HANDLERS_H
#define AIPROXY_HANDLERS_H

#include "fcgi/core/http.h"

/* GET /health. `reg_rc` is what reg_refresh returned for this request (or the
 * reg_open failure): anything but 0 answers 503 {"status":"degraded",...}. */
int health_handle(http_req_t *req, int reg_rc);

/* GET /: the endpoint index. */
int index_handle(http_req_t *req);

/* GET /v1/models and GET /v1/models/{id} (`id` raw from the path, len bytes;
 * percent-decoded here). */
int models_list(http_req_t *req);
int models_get(http_req_t *req, const char *id, size_t len);

/* Sets the "created" stamp the model list reports (the responder's start
 * time). Call once before threads start. */
void models_set_created(long long created);

/* POST /v1/chat/completions: validate, run the agent, answer (stream or not). */
int chat_handle(http_req_t *req);

/* POST /v1/messages: Anthropic's Messages API on the same agent loop
 * (messages.c); every error in Anthropic's shape. */
int messages_handle(http_req_t *req);

/* The /v1 credential check for /v1/messages: auth_check's verdict, with the
 * 401 in Anthropic's shape. 0 to go on, -1 when it answered. */
int messages_auth(http_req_t *req);

#endif
