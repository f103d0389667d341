/* http — request accessors and response writers over one FastCGI request.
 *
 * Everything goes out through http__out(), which writes to the FastCGI stream
 * or, in unit tests (req->fcgx NULL), to req->capture. A failed write marks
 * the request client_gone so every later write fails fast: the web server has
 * dropped the request and nothing more can reach the client. */
#include "fcgi/core/http.h"

#include "shared/err.h"

#include "shared/jtext.h"
#include "shared/pct.h"

#include "shared/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <poll.h>
#include <strings.h>

const char *http_param(const http_req_t *req, const char *name)
{
    size_t n;

    if (!req->params || !name)
        return NULL;
    n = strlen(name);
    for (char **p = req->params; *p; p++) {
        if (strncmp(*p, name, n) == 0 && (*p)[n] == '=')
            return *p + n + 1;
    }
    return NULL;
}

const char *http_header(http_req_t *req, const char *name)
{
    char key[128];
    size_t off = 0, i;

    if (!name)
        return NULL;
    /* CGI puts these two without the HTTP_ prefix (RFC 3875 4.1.2, 4.1.3). */
    if (strcasecmp(name, "Content-Type") == 0)
        return http_param(req, "CONTENT_TYPE");
    if (strcasecmp(name, "Content-Length") == 0)
        return http_param(req, "CONTENT_LENGTH");
    memcpy(key, "HTTP_", 5);
    off = 5;
    for (i = 0; name[i]; i++) {
        if (off + 1 >= sizeof(key))
            return NULL;
        key[off++] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
    }
    key[off] = '\0';
    return http_param(req, key);
}

/* Percent-decodes s[0..n) into arena memory ('+' is a space, as forms send),
 * its length (a %00 included) in *len when len is not NULL. A malformed
 * escape is kept literally rather than refused. */
static char *http__decode(arena_t *a, const char *s, size_t n, size_t *len)
{
    char *out = arena_alloc(a, n + 1);
    long got = out ? pct_decode(s, n, out, n + 1, PCT_PLUS_SPACE) : -ENOMEM;

    if (got < 0)
        return NULL;
    if (len)
        *len = (size_t)got;
    return out;
}

const char *http_query_param(http_req_t *req, const char *name)
{
    return http_query_param_n(req, name, NULL);
}

const char *http_query_param_n(http_req_t *req, const char *name, size_t *vlen)
{
    const char *p = req->query;

    if (!p || !name)
        return NULL;
    while (*p) {
        const char *end = strchr(p, '&');
        const char *eq;
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char *key;

        eq = memchr(p, '=', len);
        key = http__decode(req->arena, p, eq ? (size_t)(eq - p) : len, NULL);
        if (!key)
            return NULL;
        if (strcmp(key, name) == 0) {
            if (!eq) {
                if (vlen)
                    *vlen = 0;
                return "";
            }
            return http__decode(req->arena, eq + 1, len - (size_t)(eq + 1 - p), vlen);
        }
        if (!end)
            break;
        p = end + 1;
    }
    return NULL;
}

const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default:  return "Unknown";
    }
}

const char *http_error_type(int status)
{
    return aip_err_type(status);
}

/* Writes bytes to the client; the one place output happens. */
static int http__out(http_req_t *req, const char *p, size_t n, int flush)
{
    struct timespec ts;

    if (req->client_gone || req->answer_done)
        return -EPIPE;
    if (n > 0 || flush) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        req->last_write_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    if (!req->fcgx) {
        if (req->capture && buf_append(req->capture, p, n) != 0)
            goto gone;
        return 0;
    }
    req->info.bytes_out += n;
    while (n > 0) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        if (FCGX_PutStr(p, chunk, req->fcgx->out) != chunk)
            goto gone;
        p += chunk;
        n -= (size_t)chunk;
    }
    if (flush && FCGX_FFlush(req->fcgx->out) != 0)
        goto gone;
    return 0;
gone:
    req->client_gone = 1;
    return -EPIPE;
}

/* The answer's own extra header lines, then the request's (resp_headers). */
static int http__extra(http_req_t *req, const char *extra_headers)
{
    int rc = 0;

    if (extra_headers)
        rc = http__out(req, extra_headers, strlen(extra_headers), 0);
    if (rc == 0 && req->resp_headers)
        rc = http__out(req, req->resp_headers, strlen(req->resp_headers), 0);
    return rc;
}

int http_add_header(http_req_t *req, const char *name, const char *fmt, ...)
{
    char line[CAP_RESP_HEADERS];
    size_t old = req->resp_headers ? strlen(req->resp_headers) : 0;
    va_list ap;
    char *all;
    int n, m;

    if (req->headers_sent)
        return -EALREADY;
    n = snprintf(line, sizeof(line), "%s: ", name);
    if (n < 0 || (size_t)n >= sizeof(line))
        return -ENOSPC;
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0 || (size_t)(n + m) + 2 >= sizeof(line) || old + (size_t)(n + m) + 2 >= CAP_RESP_HEADERS)
        return -ENOSPC;
    if (strpbrk(line, "\r\n"))
        return -EINVAL;
    if (!(all = arena_alloc(req->arena, old + (size_t)(n + m) + 3)))
        return -ENOMEM;
    memcpy(all, req->resp_headers ? req->resp_headers : "", old);
    memcpy(all + old, line, (size_t)(n + m));
    memcpy(all + old + (size_t)(n + m), "\r\n", 3);
    req->resp_headers = all;
    return 0;
}

int http_settle(http_req_t *req)
{
    int (*fn)(http_req_t *) = req->settle;

    if (!fn)
        return 0;
    req->settle = NULL;      /* once; and the answer fn sends is not held again */
    req->settle_fd = NULL;
    if (fn(req) == 0)
        return 0;
    req->answer_done = 1;
    return -EPIPE;
}

int http_send_headers(http_req_t *req, int status, const char *content_type,
                      const char *extra_headers)
{
    char head[512];
    int n, rc;

    if (req->settle && http_settle(req) != 0)
        return -EPIPE;
    if (req->headers_sent) {
        log_warn("%s %s: a second response (status %d) after headers went out",
                 req->method ? req->method : "-", req->path ? req->path : "-", status);
        return -EALREADY;
    }
    n = snprintf(head, sizeof(head), "Status: %d %s\r\nContent-Type: %s\r\n", status,
                 http_reason(status), content_type ? content_type : "application/json");
    if (n < 0 || (size_t)n >= sizeof(head))
        return -EINVAL;
    req->headers_sent = 1;
    req->status = status;
    rc = http__out(req, head, (size_t)n, 0);
    if (rc == 0)
        rc = http__extra(req, extra_headers);
    if (rc == 0)
        rc = http__out(req, "\r\n", 2, 0);
    return rc;
}

/* HEAD is answered like GET without the body (route.c matches it to the GET
 * routes): the headers, Content-Length included, go out; the body never. */
static int http__head(const http_req_t *req)
{
    return req->method && strcmp(req->method, "HEAD") == 0;
}

int http_write(http_req_t *req, const char *data, size_t len, int flush)
{
    if (http__head(req))
        return 0;
    return http__out(req, data, len, flush);
}

int http_send(http_req_t *req, int status, const char *content_type,
              const char *extra_headers, const char *body, size_t len)
{
    char cl[64];
    int n, rc;

    if (req->settle && http_settle(req) != 0)
        return -EPIPE;
    if (req->headers_sent) {
        log_warn("%s %s: a second response (status %d) after headers went out",
                 req->method ? req->method : "-", req->path ? req->path : "-", status);
        return -EALREADY;
    }
    n = snprintf(cl, sizeof(cl), "Status: %d %s\r\nContent-Length: %zu\r\n", status,
                 http_reason(status), len);
    if (n < 0 || (size_t)n >= sizeof(cl))
        return -EINVAL;
    req->headers_sent = 1;
    req->status = status;
    rc = http__out(req, cl, (size_t)n, 0);
    if (rc == 0) {
        rc = http__out(req, "Content-Type: ", 14, 0);
        if (rc == 0)
            rc = http__out(req, content_type ? content_type : "application/json",
                           strlen(content_type ? content_type : "application/json"), 0);
        if (rc == 0)
            rc = http__out(req, "\r\n", 2, 0);
    }
    if (rc == 0)
        rc = http__extra(req, extra_headers);
    if (rc == 0)
        rc = http__out(req, "\r\n", 2, 0);
    if (rc == 0 && len > 0 && !http__head(req))
        rc = http__out(req, body, len, 0);
    return rc;
}

int http_send_json(http_req_t *req, int status, json_object *obj, const char *extra_headers)
{
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

    if (!s)
        return -ENOMEM;
    return http_send(req, status, "application/json", extra_headers, s, len);
}

json_object *http_error_json(int status, const char *type, const char *code,
                             const char *param, const char *message)
{
    json_object *root = NULL, *err = NULL, *res = NULL;

    root = json_object_new_object();
    err = json_object_new_object();
    if (!root || !err)
        goto out;
    /* what we echo (a model name with byte 0xFF) stays valid UTF-8 */
    json_object_object_add(err, "message", jtext_new_echo(message, message ? strlen(message) : 0));
    json_object_object_add(err, "type",
                           json_object_new_string(type && *type ? type : http_error_type(status)));
    json_object_object_add(err, "param", param && *param ? jtext_new_echo(param, strlen(param)) : NULL);
    json_object_object_add(err, "code", code && *code ? json_object_new_string(code) : NULL);
    json_object_object_add(root, "error", err);
    err = NULL;
    res = root;
    root = NULL;
out:
    json_object_put(err);
    json_object_put(root);
    return res;
}

const char *http_err_msg(http_req_t *req, const char *msg)
{
    static const char pre[] = " (request id ", post[] = ")";
    size_t n, k;
    char *out;

    if (!msg)
        msg = "";
    if (!req || !req->info.id[0] || !req->arena)
        return msg;
    n = strlen(msg);
    k = strlen(req->info.id);
    if (!(out = arena_alloc(req->arena, n + sizeof(pre) - 1 + k + sizeof(post))))
        return msg;
    memcpy(out, msg, n);
    memcpy(out + n, pre, sizeof(pre) - 1);
    memcpy(out + n + sizeof(pre) - 1, req->info.id, k);
    memcpy(out + n + sizeof(pre) - 1 + k, post, sizeof(post));
    return out;
}

int http_send_err(http_req_t *req, const aip_err_t *e)
{
    return http_send_error(req, e->status ? e->status : 500, e->type, e->code, e->param, "%s",
                           e->msg[0] ? e->msg : "the request failed");
}

int http_send_error(http_req_t *req, int status, const char *type, const char *code,
                    const char *param, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    json_object *obj;
    int rc;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    obj = http_error_json(status, type, code, param, http_err_msg(req, msg));
    if (!obj) {
        static const char oom[] =
            "{\"error\":{\"message\":\"out of memory\",\"type\":\"api_error\","
            "\"param\":null,\"code\":null}}";
        return http_send(req, 500, "application/json", NULL, oom, sizeof(oom) - 1);
    }
    rc = http_send_json(req, status, obj, NULL);
    json_object_put(obj);
    return rc;
}

int http_client_alive(http_req_t *req)
{
    struct pollfd p;
    char ch;
    ssize_t r;

    if (req->client_gone)
        return 0;
    if (!req->fcgx || req->fcgx->ipcFd < 0)
        return 1;
    p.fd = req->fcgx->ipcFd;
    p.events = POLLIN | POLLRDHUP;
    p.revents = 0;
    if (poll(&p, 1, 0) <= 0)
        return 1;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
        goto gone;
    if (p.revents & POLLIN) {
        r = recv(p.fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                       errno != ENOTSOCK))
            goto gone;
    }
    return 1;
gone:
    req->client_gone = 1;
    return 0;
}
