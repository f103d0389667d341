/* respstore — stored responses (store: true, the default): each response with
 * its input items and the conversation's chat messages, one Redis string
 * <prefix>resp:<id> with a TTL, so previous_response_id continues a
 * conversation on any responder of the fleet, and GET / DELETE
 * /v1/responses/{id} and GET /v1/responses/{id}/input_items read it. A record
 * is readable only by the credential that created it (its owner: the SHA-256
 * of the key the request authenticated with; "" when /v1 needs none).
 *
 * Settings (environment, read per call): AIPROXY_RESPONSES_TTL seconds
 * (default 30 days), AIPROXY_RESPONSES_MAX_BYTES per record (default
 * CAP_RESP_STORE_DEFAULT; a bigger record is not stored, logged). */
#ifndef AIPROXY_RESPSTORE_H
#define AIPROXY_RESPSTORE_H

#include "fcgi/core/http.h"
#include "fcgi/core/route.h"
#include "shared/err.h"
#include "shared/reg.h"

#include <json-c/json.h>

#define RESPSTORE_TTL_DEFAULT (30L * 24 * 3600)
#define RESPSTORE_OWNER_MAX 80

/* The caller's identity for ownership into out (RESPSTORE_OWNER_MAX): the
 * hash of the first credential the request carries, "" when none. */
void respstore_owner(http_req_t *req, char *out);

/* Stores {owner, response, input_items, messages} (all borrowed) under the
 * response's id. 0; -E2BIG when over the byte cap; -EIO when Redis failed
 * (the answer still goes out: storing is best effort, logged). */
int respstore_put(reg_t *reg, const char *owner, json_object *response,
                  json_object *input_items, json_object *messages);

/* Reads the record of `id` owned by `owner`: 0 and *out (caller owns);
 * -ENOENT (unknown, expired, or another owner's: the same 404, so ids
 * cannot be probed) with *err the 404 naming `param`; -EIO with *err 500. */
int respstore_get(reg_t *reg, const char *owner, const char *id, const char *param,
                  json_object **out, aip_err_t *err);

/* The items of a request's input, as input_items lists them: a string
 * becomes one user message item; every item gets an id. New array; NULL on
 * ENOMEM. */
json_object *respstore_input_items(json_object *input);

/* The handler of GET / DELETE /v1/responses/{id} and GET
 * /v1/responses/{id}/input_items. Answers the client; returns as http_send. */
int respstore_handle(http_req_t *req, const route_t *r, svc_t *svc);

#endif
