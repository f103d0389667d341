/* STUB: replaced by the admin API (issue 6). */
#include "fcgi/admin.h"

int admin_handle(http_req_t *req)
{
    return http_send_error(req, 404, "invalid_request_error", "not_found", NULL,
                           "the admin API is not built yet");
}
