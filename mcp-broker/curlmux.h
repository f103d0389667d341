/* curlmux — libcurl's multi_socket interface driven by the broker's libuv loop,
 * shared by the SSE and streamable-HTTP transports (one multi handle for all
 * HTTP traffic of the broker). Owned by transport_http/sse. */
#ifndef AIPROXY_CURLMUX_H
#define AIPROXY_CURLMUX_H

#include <curl/curl.h>
#include <uv.h>

typedef struct curlmux curlmux_t;

/* Called once when an easy handle's transfer ends (result, HTTP status). The
 * handle has been removed from the multi; the callee owns it again. */
typedef void (*curlmux_done_cb)(void *ud, CURL *easy, CURLcode result, long status);

/* The loop's mux, created on first use. NULL on ENOMEM. */
curlmux_t *curlmux_get(uv_loop_t *loop);

/* Starts a transfer. Returns 0 or -EIO. `done` fires exactly once. */
int curlmux_add(curlmux_t *m, CURL *easy, curlmux_done_cb done, void *ud);

/* Aborts a transfer without calling `done`; the caller owns `easy` again.
 * Returns 0. Exception: libcurl refuses multi calls from inside its own
 * callbacks, so when called from one (e.g. from on_message delivered by a
 * write callback) the abort is deferred until curl returns, the easy's
 * callbacks may still run until then, `done` then fires with
 * CURLE_ABORTED_BY_CALLBACK, and this returns 1: keep the easy's state alive
 * until `done`. Adds made from inside curl callbacks are deferred the same
 * way (transparently). curlmux leaves CURLOPT_PRIVATE to the caller. */
int curlmux_remove(curlmux_t *m, CURL *easy);

/* Closes the mux (after every transfer ended); for shutdown. Its handles
 * close asynchronously: run the loop afterwards (uv_run) so they are freed. */
void curlmux_close(curlmux_t *m);

#endif
