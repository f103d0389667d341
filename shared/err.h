/* err — the project's one error value: what a client is told when a request
 * fails, produced where the failure happens (Redis, broker, upstream, MCP,
 * request checks) and rendered only by the API surface that answers
 * (OpenAI's {"error":{"message","type","param","code"}}, Anthropic's shape).
 *
 * Functions keep the one return convention (0 or a negative errno: the
 * control flow); the aip_err_t beside it carries the meaning (the HTTP
 * status, OpenAI's type/code/param words and a message that says what to do
 * next), so no caller classifies a failure by errno value or message text.
 * Fixed-size, no allocation: lives on the stack or inside a result struct. */
#ifndef AIPROXY_ERR_H
#define AIPROXY_ERR_H

#include <stddef.h>

#define AIP_ERR_MSG_MAX   1024   /* a message longer than this is cut (UTF-8 safe) */
#define AIP_ERR_WORD_MAX  48     /* type, code: OpenAI words, or an upstream's own */
#define AIP_ERR_PARAM_MAX 64     /* the offending request field */

typedef struct aip_err {
    int status;                     /* HTTP status; 0 = no error */
    char type[AIP_ERR_WORD_MAX];    /* "invalid_request_error", "api_error", ... */
    char code[AIP_ERR_WORD_MAX];    /* "" or e.g. "upstream_timeout" */
    char param[AIP_ERR_PARAM_MAX];  /* "" or the request field at fault */
    char msg[AIP_ERR_MSG_MAX];      /* what failed and what to do next */
} aip_err_t;

/* Empties *e (status 0, every string ""). */
void aip_err_clear(aip_err_t *e);

/* Sets *e: `status`, `type` (NULL or "": aip_err_type(status)), `code` (NULL:
 * none) and the message from fmt. The param is cleared. Returns -EIO, so a
 * failing function can `return aip_err_set(...)` in the one convention. */
int aip_err_set(aip_err_t *e, int status, const char *type, const char *code,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Names the request field at fault (NULL or "" clears it). Returns e. */
aip_err_t *aip_err_param(aip_err_t *e, const char *param);

/* Puts context before the message ("MCP server 'x': " + msg), keeping the
 * rest of *e. Returns -EIO like aip_err_set. */
int aip_err_prefix(aip_err_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The common failures, one wording each. All return -EIO (oom: -ENOMEM). */
int aip_err_oom(aip_err_t *e);                 /* 500 api_error "out of memory" */
int aip_err_client_gone(aip_err_t *e);         /* 499 api_error client_gone */

/* 1 when *e holds an error (status set), else 0. */
int aip_err_is_set(const aip_err_t *e);

/* OpenAI's error type for a status: 401 authentication_error, 403
 * permission_error, 429 rate_limit_error, other 5xx api_error, other
 * invalid_request_error. Static string. */
const char *aip_err_type(int status);

#endif
