/* openai — the OpenAI surface: GET /v1/models, GET /v1/models/{id}, POST
 * /v1/chat/completions. Each handler answers the request itself and returns
 * 0, or -EPIPE when the client went away; the registry is fresh when it runs. */
#ifndef AIPROXY_OPENAI_H
#define AIPROXY_OPENAI_H

#include "fcgi/core/route.h"

/* The surface for the route table: the /v1 credential check (auth_check),
 * errors in OpenAI's shape, and the translation hooks for the completion
 * runner (POST /v1/chat/completions, chat.c). Static. */
extern const route_surface_t openai_surface;

/* GET /v1/models and GET /v1/models/{id} (`id` raw from the path, len bytes;
 * percent-decoded here). */
int models_list(http_req_t *req, reg_t *reg);
int models_get(http_req_t *req, reg_t *reg, const char *id, size_t len);

/* Sets the "created" stamp the model list reports (the responder's start
 * time). Call once before threads start. */
void models_set_created(long long created);


#endif
