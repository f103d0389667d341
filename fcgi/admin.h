/* admin — the /admin API: read and edit the registry in Redis (docs/admin.md). */
#ifndef AIPROXY_ADMIN_H
#define AIPROXY_ADMIN_H

#include "fcgi/http.h"

/* Answers any request whose path starts with /admin (including its own 401s
 * and 404s). Returns 0 or -EPIPE when the client went away. */
int admin_handle(http_req_t *req);

#endif
