/* http — one HTTP request as the responder sees it through FastCGI, and the
 * ways to answer it. Everything a request points to lives in its arena and is
 * gone after the request ends (FastCGI params are copied in at accept, since
 * libfcgi frees them at the next accept). The services a handler uses (the
 * registry, the agent, the broker client) are the thread's, not the
 * request's: they come beside it (svc.h). */
#ifndef AIPROXY_HTTP_H
#define AIPROXY_HTTP_H

#include "shared/arena.h"
#include "shared/buf.h"
#include "shared/err.h"
#include "fcgi/core/reqinfo.h"

#include <fcgiapp.h>
#include <json-c/json.h>
#include <stddef.h>

typedef struct http_req http_req_t;

struct http_req {
    arena_t *arena;          /* this request's memory; reset after it ends */
    FCGX_Request *fcgx;
    const char *method;      /* "GET", ... */
    const char *path;        /* without the query string, e.g. "/v1/models" */
    const char *query;       /* "" when none */
    const char *body;        /* NUL-terminated; "" when none */
    size_t body_len;
    int headers_sent;        /* a status line went out: no error page possible now */
    int client_gone;         /* a write failed: the web server dropped the request */
    int body_skipped;        /* answered without reading a body that may follow */
    /* Added by the responder (fcgi engineer): */
    char **params;           /* arena copy of the FastCGI params, "NAME=value", NULL-ended */
    int status;              /* the status that went out (0 until then), for the access log */
    buf_t *capture;          /* tests: when fcgx is NULL, the response bytes go here */
    long long last_write_ms; /* CLOCK_MONOTONIC ms of the last byte or flush written
                                (0: none yet): a stream's keep-alive clock */
    /* Header lines ("Name: value\r\n"...) that every answer of this request
     * carries besides its own: rate-limit headers, the request id. Arena or
     * static; NULL when none. Add with http_add_header before answering. */
    const char *resp_headers;
    reqinfo_t info;          /* what the request was and did (reqinfo.h) */
    /* A check the answer still waits for (issue 18: the limiter's verdict,
     * asked of Redis before the upstream call and read beside it,
     * fcgi/limit/limit.h): NULL when none. http_settle runs it once, at the
     * latest before the first byte of any answer goes out. */
    int (*settle)(struct http_req *req);
    /* With settle: sends what the check still has to send (the limiter
     * writes its question only once the upstream request is out) and gives
     * the fd that turns readable when settle can run without waiting; -1
     * none. For the upstream wait (agent_req_t.watch). May be NULL. */
    int (*settle_fd)(struct http_req *req);
    int answer_done;         /* settle answered (a refusal): nothing more goes out */
};

/* A FastCGI param by name ("REQUEST_METHOD", "HTTP_AUTHORIZATION"), from
 * req->params. NULL when absent. Borrowed: arena memory. */
const char *http_param(const http_req_t *req, const char *name);

/* A request header by its HTTP name ("Authorization", "X-API-Key"), read from
 * the HTTP_* FastCGI params. NULL when absent. Arena memory. */
const char *http_header(http_req_t *req, const char *name);

/* A query-string parameter, percent-decoded. NULL when absent. Arena memory. */
const char *http_query_param(http_req_t *req, const char *name);

/* The same, with the decoded length in *len (when not NULL and the parameter
 * is there): longer than strlen when the value held a %00. */
const char *http_query_param_n(http_req_t *req, const char *name, size_t *len);

/* Appends one header line "name: value" to req->resp_headers (arena
 * memory), for every answer of the request. Returns 0; -EALREADY when the
 * headers went out; -EINVAL when name or value holds CR or LF (a header
 * must not split); -ENOSPC past CAP_RESP_HEADERS; -ENOMEM. */
int http_add_header(http_req_t *req, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Runs the request's pending check (req->settle), if any, once: 0 to go
 * on; non-zero when it answered the request itself (a refusal, after which
 * req->answer_done makes every later write fail with -EPIPE): the caller
 * stops, as for a client gone. http_send and http_send_headers call it
 * first; a handler calls it before anything the check must precede that
 * is not output (a tool call, a second upstream turn). */
int http_settle(http_req_t *req);

/* Sends a whole response. `extra_headers` is NULL or lines each ending in
 * "\r\n". Returns 0, or -EPIPE when the client is gone (req->client_gone set)
 * or the answer was given by http_settle. */
int http_send(http_req_t *req, int status, const char *content_type,
              const char *extra_headers, const char *body, size_t len);

/* Sends the status line and headers only, for a body written in pieces with
 * http_write (SSE). Returns as http_send. */
int http_send_headers(http_req_t *req, int status, const char *content_type,
                      const char *extra_headers);

/* Writes body bytes after http_send_headers; `flush` pushes them to the web
 * server at once (each SSE event). Returns 0, or -EPIPE when the client is
 * gone (req->client_gone set; further writes fail at once). */
int http_write(http_req_t *req, const char *data, size_t len, int flush);

/* Sends `obj` as application/json (does not consume it). Returns as http_send. */
int http_send_json(http_req_t *req, int status, json_object *obj, const char *extra_headers);

/* Sends an OpenAI-shaped error {"error":{"message","type","param","code"}};
 * `param` and `code` may be NULL (sent as null). Returns as http_send. */
int http_send_error(http_req_t *req, int status, const char *type, const char *code,
                    const char *param, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Sends the error value `e` OpenAI-shaped (the one rendering of aip_err_t
 * for the OpenAI surface and the core). Returns as http_send. */
int http_send_err(http_req_t *req, const aip_err_t *e);

/* A new {"error":{"message","type","param","code"}} object (caller owns it);
 * `type` NULL means http_error_type(status); `param`/`code` NULL or "" give
 * null. Pure: no I/O. NULL on ENOMEM. */
json_object *http_error_json(int status, const char *type, const char *code,
                             const char *param, const char *message);

/* The message a client is told, `msg` followed by " (request id <id>)" when
 * the request has an id (req->info.id): the one place an error message
 * gets it, called by each surface's error renderer. Arena memory, or `msg`
 * itself when there is no id or no memory. */
const char *http_err_msg(http_req_t *req, const char *msg);

/* The reason phrase of a status ("Not Found"); "Unknown" for others. */
const char *http_reason(int status);

/* Is the client still there? nginx (and the others) close the FastCGI
 * connection when the client leaves, so a hang-up or EOF on it means gone
 * (req->client_gone is then set); a pipelined record waiting is not a
 * hang-up. Non-blocking; for the agent's alive() polls. */
int http_client_alive(http_req_t *req);

/* The error types our answers use, by status (OpenAI's vocabulary):
 * 400/404/405/409/413/422 invalid_request_error, 401 authentication_error,
 * 403 permission_error, 429 rate_limit_error, 5xx api_error. */
const char *http_error_type(int status);

#endif
