/* httpwire — what the two MCP HTTP transports (legacy SSE, streamable HTTP)
 * share: reading url/headers from the registry entry, building curl easy
 * handles, one response reader (status, headers, JSON body or SSE events,
 * both capped) and JSON-RPC error answers synthesised for failed requests.
 * No I/O here: transfers run on curlmux, owned by the transports. */
#ifndef AIPROXY_HTTPWIRE_H
#define AIPROXY_HTTPWIRE_H

#include "shared/buf.h"
#include "shared/sse.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <stddef.h>

typedef struct httpwire_conf {
    char *url;                  /* malloc'd */
    struct curl_slist *headers; /* "Name: value" lines from "headers" */
} httpwire_conf_t;

/* Reads "url" (required, http:// or https://) and "headers" (object of
 * strings, no CR/LF) from the registry entry. Returns 0 or -EINVAL with err
 * naming the field; the caller frees with httpwire_conf_free either way. */
int httpwire_conf_read(httpwire_conf_t *c, const char *name, json_object *server, char *err,
                       size_t errlen);
void httpwire_conf_free(httpwire_conf_t *c);

/* Called per SSE event of a response (event type, data, id) and for a JSON
 * body once complete (event NULL). Return non-zero to abort the transfer. */
typedef int (*httpwire_msg_cb)(void *ud, const char *event, const char *data, size_t len,
                               const char *id);

/* One HTTP exchange. The reader fills in status, content type and the
 * session id header; delivers SSE events as they arrive and JSON at the end
 * (httpwire_req_finish). */
typedef struct httpwire_req {
    CURL *easy;
    struct curl_slist *hdrs;    /* owned request headers */
    char *body;                 /* owned request body (POST) */
    long status;
    int sniffed;                /* response type decided */
    int is_sse;
    int abort;                  /* set by the owner: the write callback stops */
    sse_parser_t *sse;
    buf_t resp;                 /* JSON body, or the start of an error body */
    char session_id[256];       /* Mcp-Session-Id of the response, "" if none */
    char www_auth[1024];        /* WWW-Authenticate of the response, "" if none (or too long) */
    char last_event_id[256];    /* of the SSE response */
    long retry_ms;              /* SSE retry: of the response, -1 if none */
    httpwire_msg_cb cb;
    void *ud;
} httpwire_req_t;

/* Prepares req for `method` ("GET", "POST", "DELETE") on url with the
 * configured headers plus `extra` (NULL-terminated "Name: value" lines; may
 * be NULL). `body` (POST) is copied. Returns 0, -ENOMEM. The caller then
 * hands req->easy to curlmux and calls httpwire_req_free when done. */
int httpwire_req_init(httpwire_req_t *req, const char *method, const char *url,
                      const struct curl_slist *conf_headers, const char *const *extra,
                      const char *body, size_t body_len, httpwire_msg_cb cb, void *ud);

/* At the end of the transfer: delivers a complete 2xx JSON body through cb
 * (the SSE events were delivered already). Returns cb's value or 0. */
int httpwire_req_finish(httpwire_req_t *req);

void httpwire_req_free(httpwire_req_t *req);

/* A JSON-RPC error response for request id `id` (JSON text, e.g. "7" or
 * "\"a\""), code -32000 and the message. malloc'd; NULL on ENOMEM. */
char *httpwire_error_response(const char *id, const char *message);

/* The W3C traceparent a message carries in params._meta (the broker puts it
 * there for a traced tools/call, before every other member but
 * progressToken), for the `traceparent` HTTP header: copies it into out
 * (OTEL_TP_LEN + 1 bytes) and returns 1, or 0 when there is none or it is
 * not well-formed. Pure. */
int httpwire_traceparent(const char *json, size_t len, char *out);

/* If `json` is a request (has "method" and "id"), copies its id as JSON text
 * into idbuf and returns 1; 0 otherwise. method (may be NULL) gets the method
 * name, "" if none. */
int httpwire_request_id(const char *json, size_t len, char *idbuf, size_t idlen, char *method,
                        size_t methodlen);

/* If `json` is a message whose params._meta carries a request id
 * (REQID_MCP_META, shared/reqid.h) that reqid_valid accepts, writes the
 * header line "X-Request-Id: <id>" into out[cap] and returns 1; else 0. A
 * message without the key's text is not parsed. */
int httpwire_body_rid(const char *json, size_t len, char *out, size_t cap);

/* 1 when `json` is a response (result or error, no method) whose id, as JSON
 * text, equals `id`. */
int httpwire_is_response_to(const char *json, size_t len, const char *id);

#endif
