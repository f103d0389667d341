/* metrics_route — GET /metrics: who may scrape, and the answer. Protected
 * on its own, not by API keys: a scraper holds no key of the gateway. */
#include "fcgi/metrics/metrics.h"

#include "shared/mtext.h"
#include "shared/reg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define METRICS__MAX_TEXT (32u << 20)  /* a scrape's text: 4096 series, every one a histogram
                                       * of 18 lines of ~300 bytes, fit */

/* Compares without an early exit, so the time says nothing of the token. */
static int metrics__same(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;

    for (size_t i = 0; i < la; i++)
        d |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return d == 0;
}

/* REMOTE_ADDR as the web server passed it is a loopback address. */
static int metrics__loopback(const char *addr)
{
    if (!addr)
        return 0;
    if (strncmp(addr, "::ffff:", 7) == 0)
        addr += 7;
    return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0;
}

/* 0 when the client may scrape, else *e says why (401 or 403). */
static int metrics__allowed(http_req_t *req, aip_err_t *e)
{
    const char *token = getenv("AIPROXY_METRICS_TOKEN");
    const char *auth = http_param(req, "HTTP_AUTHORIZATION");

    if (token && *token) {
        if (auth && strncmp(auth, "Bearer ", 7) == 0 && metrics__same(auth + 7, token))
            return 0;
        aip_err_set(e, 401, "invalid_request_error", "metrics_unauthorized",
                    "GET /metrics needs the scrape token: send Authorization: Bearer "
                    "<AIPROXY_METRICS_TOKEN>");
        return -EACCES;
    }
    if (metrics__loopback(http_param(req, "REMOTE_ADDR")))
        return 0;
    aip_err_set(e, 403, "invalid_request_error", "metrics_forbidden",
                "GET /metrics is served to loopback clients only; set AIPROXY_METRICS_TOKEN "
                "on the responder to scrape from elsewhere with a bearer token");
    return -EACCES;
}

int metrics_handle(http_req_t *req, const route_t *r, svc_t *svc)
{
    aip_err_t e;
    buf_t b;
    int rc, up;

    aip_err_clear(&e);
    if (!metrics_enabled()) {
        aip_err_set(&e, 404, NULL, "unknown_route",
                    "no route %s %s; GET / lists the endpoints (metrics are off: "
                    "AIPROXY_METRICS=0)", req->method, req->path);
        return http_send_err(req, &e);
    }
    if (metrics__allowed(req, &e) != 0) {
        if (e.status == 401)
            (void)http_add_header(req, "WWW-Authenticate", "Bearer realm=\"metrics\"");
        return http_send_err(req, &e);
    }
    /* the core refreshed the registry just before: its verdict is Redis's state now */
    up = r->reg_rc == 0 || r->reg_rc == -ENOENT;
    buf_init(&b, METRICS__MAX_TEXT);
    if (metrics_render(&b, up, svc->reg ? reg_version(svc->reg) : 0) != 0) {
        buf_free(&b);
        aip_err_set(&e, 500, "api_error", NULL, "the metrics text could not be built");
        return http_send_err(req, &e);
    }
    rc = http_send(req, 200, MTEXT_CONTENT_TYPE, NULL, b.data ? b.data : "", b.len);
    buf_free(&b);
    return rc;
}
