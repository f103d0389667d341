/* responses — POST /v1/responses, the OpenAI Responses API as a completion
 * surface (core/complete.h) on the same runner and agent loop as chat
 * completions: respreq translates the request, respout renders the response
 * object and its event stream. Errors are OpenAI-shaped. docs/responses.md. */
#ifndef AIPROXY_RESPONSES_H
#define AIPROXY_RESPONSES_H

#include "fcgi/core/route.h"

extern const route_surface_t responses_surface;

#endif
