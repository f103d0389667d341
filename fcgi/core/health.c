/* health — GET /health and the index at GET /. */
#include "fcgi/core/health.h"

#include "shared/log.h"

#include <errno.h>
#include <time.h>

/* /health answers without authentication: what failed is said in words, the
 * Redis address (a socket path, a host) and the driver's text go to the log
 * only, at most every 10 s per thread so a probe cannot flood it. */
static void health__log_detail(reg_t *reg)
{
    static __thread time_t logged_at;
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (logged_at && ts.tv_sec - logged_at < 10)
        return;
    logged_at = ts.tv_sec;
    log_warn("/health: Redis unreachable: %s",
             reg ? reg_errstr(reg) : "no connection to Redis yet");
}

int health_handle(http_req_t *req, const route_t *r, svc_t *svc)
{
    int reg_rc = r->reg_rc;
    json_object *o = json_object_new_object();
    int rc, status = 200;

    if (!o)
        return http_send_error(req, 500, NULL, NULL, NULL, "out of memory");
    if (reg_rc == 0) {
        json_object_object_add(o, "status", json_object_new_string("ok"));
        json_object_object_add(o, "redis", json_object_new_string("ok"));
        json_object_object_add(o, "registry_version",
                               json_object_new_int64(reg_version(svc->reg)));
    } else if (reg_rc == -ENOENT) {
        status = 503;
        json_object_object_add(o, "status", json_object_new_string("degraded"));
        json_object_object_add(o, "redis", json_object_new_string("ok"));
        json_object_object_add(o, "registry_version", json_object_new_int64(0));
        json_object_object_add(o, "error", json_object_new_string(
            "Redis holds no registry: start aiproxy-fcgi with -c CONFIG to seed it"));
    } else {
        status = 503;
        json_object_object_add(o, "status", json_object_new_string("degraded"));
        json_object_object_add(o, "redis", json_object_new_string("unreachable"));
        if (svc->reg && reg_doc(svc->reg))
            json_object_object_add(o, "serving", json_object_new_string(
                "the last known registry: /v1 goes on, /admin waits for Redis"));
        json_object_object_add(o, "registry_version",
                               json_object_new_int64(svc->reg ? reg_version(svc->reg) : 0));
        json_object_object_add(o, "error", json_object_new_string(
            "cannot reach Redis (the responder log names the cause)"));
        health__log_detail(svc->reg);
    }
    rc = http_send_json(req, status, o, "Cache-Control: no-store\r\n");
    json_object_put(o);
    return rc;
}

int index_handle(http_req_t *req, const route_t *r, svc_t *svc)
{
    json_object *o = route_index_json(r->table);
    int rc;

    if (!o)
        return http_send_error(req, 500, NULL, NULL, NULL, "out of memory");
    rc = http_send_json(req, 200, o, NULL);
    json_object_put(o);
    return rc;
}
