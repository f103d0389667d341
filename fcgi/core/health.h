/* health — the core's own routes: GET /health and the index at GET /. */
#ifndef AIPROXY_HEALTH_H
#define AIPROXY_HEALTH_H

#include "fcgi/core/route.h"

/* GET /health. r->reg_rc is what the registry refresh returned for this
 * request (or the reg_open failure): anything but 0 answers 503
 * {"status":"degraded",...}. Returns 0 or -EPIPE. */
int health_handle(http_req_t *req, const route_t *r, svc_t *svc);

/* GET /: the index of r->table (route_index_json). Returns 0 or -EPIPE. */
int index_handle(http_req_t *req, const route_t *r, svc_t *svc);

#endif
