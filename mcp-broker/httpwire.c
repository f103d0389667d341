/* httpwire — request building and response reading for the MCP HTTP
 * transports. See httpwire.h. */
#include "mcp-broker/httpwire.h"
#include "shared/caps.h"
#include "shared/reqid.h"
#include "shared/otel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int httpwire_conf_read(httpwire_conf_t *c, const char *name, json_object *server, char *err,
                       size_t errlen)
{
    json_object *ju = NULL, *jh = NULL;
    const char *url;
    int rc = -EINVAL;

    memset(c, 0, sizeof(*c));
    if (!json_object_object_get_ex(server, "url", &ju) || !json_object_is_type(ju, json_type_string)) {
        snprintf(err, errlen, "MCP server '%s': url: required for an HTTP transport", name);
        goto out;
    }
    url = json_object_get_string(ju);
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) {
        snprintf(err, errlen, "MCP server '%s': url: must start with http:// or https:// (got '%.100s')",
                 name, url);
        goto out;
    }
    c->url = strdup(url);
    if (!c->url) {
        snprintf(err, errlen, "MCP server '%s': out of memory", name);
        rc = -ENOMEM;
        goto out;
    }
    if (json_object_object_get_ex(server, "headers", &jh) && jh) {
        if (!json_object_is_type(jh, json_type_object)) {
            snprintf(err, errlen, "MCP server '%s': headers: must be an object of strings", name);
            goto out;
        }
        json_object_object_foreach(jh, k, v) {
            char line[CAP_MCPHTTP_HEADER];
            struct curl_slist *n;
            const char *val = json_object_get_string(v);

            if (!json_object_is_type(v, json_type_string) || strpbrk(k, "\r\n: ") || !*k ||
                strpbrk(val, "\r\n")) {
                snprintf(err, errlen, "MCP server '%s': headers.%.64s: must be a string without line breaks",
                         name, k);
                goto out;
            }
            if ((size_t)snprintf(line, sizeof(line), "%s: %s", k, val) >= sizeof(line)) {
                snprintf(err, errlen, "MCP server '%s': headers.%.64s: too long", name, k);
                goto out;
            }
            n = curl_slist_append(c->headers, line);
            if (!n) {
                snprintf(err, errlen, "MCP server '%s': out of memory", name);
                rc = -ENOMEM;
                goto out;
            }
            c->headers = n;
        }
    }
    rc = 0;
out:
    return rc;
}

void httpwire_conf_free(httpwire_conf_t *c)
{
    free(c->url);
    curl_slist_free_all(c->headers);
    memset(c, 0, sizeof(*c));
}

static int httpwire__on_event(void *ud, const char *event, const char *data, size_t len, const char *id)
{
    httpwire_req_t *r = ud;

    if (id && *id)
        snprintf(r->last_event_id, sizeof(r->last_event_id), "%s", id);
    if (len == 0)   /* priming events and keep-alives carry no message */
        return 0;
    return r->cb(r->ud, event, data, len, id);
}

/* Decides at the first body byte how to read the response. */
static int httpwire__sniff(httpwire_req_t *r)
{
    char *ct = NULL;

    r->sniffed = 1;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct);
    if (r->status >= 200 && r->status < 300 && ct && strncasecmp(ct, "text/event-stream", 17) == 0) {
        r->is_sse = 1;
        r->sse = sse_new(CAP_MCPHTTP_BODY, httpwire__on_event, r);
        if (!r->sse)
            return -ENOMEM;
    }
    return 0;
}

static size_t httpwire__write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    httpwire_req_t *r = ud;
    size_t n = size * nmemb;

    if (r->abort)
        return 0;
    if (!r->sniffed && httpwire__sniff(r) < 0)
        return 0;
    if (r->is_sse) {
        if (sse_feed(r->sse, ptr, n) != 0)
            return 0;
        if (r->sse)
            r->retry_ms = sse_retry_ms(r->sse);
        return r->abort ? 0 : n;
    }
    if (r->status >= 200 && r->status < 300) {
        if (buf_append(&r->resp, ptr, n) < 0)
            return 0;   /* past the cap: fail the transfer */
    } else if (r->resp.len < CAP_MCPHTTP_ERRTXT) {
        size_t room = CAP_MCPHTTP_ERRTXT - r->resp.len;
        (void)buf_append(&r->resp, ptr, n < room ? n : room);
    }
    return n;
}

/* Copies the value of header line `ptr` (n bytes) after its k-byte name and
 * colon into dst (trimmed) when it fits. */
static void httpwire__hval(const char *ptr, size_t n, size_t k, char *dst, size_t cap)
{
    const char *v = ptr + k;
    size_t vl = n - k;

    while (vl && (*v == ' ' || *v == '\t')) {
        v++;
        vl--;
    }
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (vl < cap) {
        memcpy(dst, v, vl);
        dst[vl] = '\0';
    }
}

static size_t httpwire__header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    httpwire_req_t *r = ud;
    size_t n = size * nmemb, k = sizeof("mcp-session-id:") - 1;

    if (n > 17 && strncasecmp(ptr, "www-authenticate:", 17) == 0)
        httpwire__hval(ptr, n, 17, r->www_auth, sizeof(r->www_auth));

    if (n > k && strncasecmp(ptr, "mcp-session-id:", k) == 0) {
        const char *v = ptr + k;
        size_t vl = n - k;

        while (vl && (*v == ' ' || *v == '\t')) {
            v++;
            vl--;
        }
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        if (vl < sizeof(r->session_id)) {
            memcpy(r->session_id, v, vl);
            r->session_id[vl] = '\0';
        }
    }
    return n;
}

int httpwire_req_init(httpwire_req_t *req, const char *method, const char *url,
                      const struct curl_slist *conf_headers, const char *const *extra,
                      const char *body, size_t body_len, httpwire_msg_cb cb, void *ud)
{
    const struct curl_slist *h;
    int rc = -ENOMEM;

    memset(req, 0, sizeof(*req));
    buf_init(&req->resp, CAP_MCPHTTP_BODY);
    req->retry_ms = -1;
    req->cb = cb;
    req->ud = ud;
    req->easy = curl_easy_init();
    if (!req->easy)
        goto out;
    for (h = conf_headers; h; h = h->next) {
        struct curl_slist *n = curl_slist_append(req->hdrs, h->data);
        if (!n)
            goto out;
        req->hdrs = n;
    }
    for (; extra && *extra; extra++) {
        struct curl_slist *n = curl_slist_append(req->hdrs, *extra);
        if (!n)
            goto out;
        req->hdrs = n;
    }
    curl_easy_setopt(req->easy, CURLOPT_URL, url);
    curl_easy_setopt(req->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(req->easy, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, req->hdrs);
    curl_easy_setopt(req->easy, CURLOPT_WRITEFUNCTION, httpwire__write);
    curl_easy_setopt(req->easy, CURLOPT_WRITEDATA, req);
    curl_easy_setopt(req->easy, CURLOPT_HEADERFUNCTION, httpwire__header);
    curl_easy_setopt(req->easy, CURLOPT_HEADERDATA, req);
    curl_easy_setopt(req->easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(req->easy, CURLOPT_USERAGENT, "aiproxy-mcp/1");
    if (strcmp(method, "POST") == 0) {
        req->body = malloc(body_len + 1);
        if (!req->body)
            goto out;
        memcpy(req->body, body, body_len);
        req->body[body_len] = '\0';
        curl_easy_setopt(req->easy, CURLOPT_POST, 1L);
        curl_easy_setopt(req->easy, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(req->easy, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(req->easy, CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L);
        curl_easy_setopt(req->easy, CURLOPT_TIMEOUT, 10L);
    }
    rc = 0;
out:
    return rc;
}

int httpwire_req_finish(httpwire_req_t *req)
{
    if (!req->sniffed)
        curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);
    if (req->is_sse || req->status < 200 || req->status >= 300 || req->resp.len == 0)
        return 0;
    return req->cb(req->ud, NULL, buf_str(&req->resp), req->resp.len, "");
}

void httpwire_req_free(httpwire_req_t *req)
{
    if (req->easy)
        curl_easy_cleanup(req->easy);
    curl_slist_free_all(req->hdrs);
    free(req->body);
    sse_free(req->sse);
    buf_free(&req->resp);
    memset(req, 0, sizeof(*req));
}

char *httpwire_error_response(const char *id, const char *message)
{
    json_object *o = json_object_new_object(), *e = json_object_new_object(), *jid = NULL;
    char *out = NULL;

    if (!o || !e)
        goto out;
    jid = json_tokener_parse(id);
    json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
    json_object_object_add(o, "id", jid);
    json_object_object_add(e, "code", json_object_new_int(-32000));
    json_object_object_add(e, "message", json_object_new_string(message));
    json_object_object_add(o, "error", e);
    e = NULL;
    out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
out:
    json_object_put(e);
    json_object_put(o);
    return out;
}

int httpwire_request_id(const char *json, size_t len, char *idbuf, size_t idlen, char *method,
                        size_t methodlen)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = NULL, *jm = NULL, *jid = NULL;
    int is_req = 0;

    if (method && methodlen)
        method[0] = '\0';
    if (!tok)
        goto out;
    o = json_tokener_parse_ex(tok, json, (int)len);
    if (!o || !json_object_is_type(o, json_type_object))
        goto out;
    if (json_object_object_get_ex(o, "method", &jm) && method && methodlen)
        snprintf(method, methodlen, "%s", json_object_get_string(jm));
    if (jm && json_object_object_get_ex(o, "id", &jid) && jid) {
        snprintf(idbuf, idlen, "%s", json_object_to_json_string_ext(jid, JSON_C_TO_STRING_PLAIN));
        is_req = 1;
    }
out:
    json_object_put(o);
    if (tok)
        json_tokener_free(tok);
    return is_req;
}

int httpwire_body_rid(const char *json, size_t len, char *out, size_t cap)
{
    json_tokener *tok;
    json_object *o = NULL, *params, *meta, *v;
    const char *rid;
    int found = 0;

    if (!json || !memmem(json, len, REQID_MCP_META, sizeof(REQID_MCP_META) - 1))
        return 0;
    if (!(tok = json_tokener_new()))
        return 0;
    o = json_tokener_parse_ex(tok, json, (int)len);
    if (o && json_object_object_get_ex(o, "params", &params) &&
        json_object_object_get_ex(params, "_meta", &meta) &&
        json_object_object_get_ex(meta, REQID_MCP_META, &v) &&
        json_object_is_type(v, json_type_string) && reqid_valid(rid = json_object_get_string(v))) {
        int n = snprintf(out, cap, "X-Request-Id: %s", rid);
        found = n > 0 && (size_t)n < cap;
    }
    json_object_put(o);
    json_tokener_free(tok);
    return found;
}

int httpwire_is_response_to(const char *json, size_t len, const char *id)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = NULL, *jid = NULL;
    int yes = 0;

    if (!tok)
        goto out;
    o = json_tokener_parse_ex(tok, json, (int)len);
    if (!o || !json_object_is_type(o, json_type_object) || json_object_object_get_ex(o, "method", NULL))
        goto out;
    if (json_object_object_get_ex(o, "id", &jid) && jid &&
        strcmp(json_object_to_json_string_ext(jid, JSON_C_TO_STRING_PLAIN), id) == 0)
        yes = 1;
out:
    json_object_put(o);
    if (tok)
        json_tokener_free(tok);
    return yes;
}

int httpwire_traceparent(const char *json, size_t len, char *out)
{
    static const char key[] = "\"_meta\":{";
    static const char tpk[] = "\"traceparent\":\"";
    const char *m = json ? memmem(json, len, key, sizeof(key) - 1) : NULL, *t, *end;
    otel_ctx_t c;

    if (!m)
        return 0;
    /* within _meta's own members: up to its first closing brace (its values
     * are scalars: progressToken, traceparent and the like) */
    end = memchr(m, '}', len - (size_t)(m - json));
    t = end ? memmem(m, (size_t)(end - m), tpk, sizeof(tpk) - 1) : NULL;
    if (!t || (size_t)(end - t) < sizeof(tpk) - 1 + OTEL_TP_LEN + 1)
        return 0;
    t += sizeof(tpk) - 1;
    if (t[OTEL_TP_LEN] != '"')
        return 0;
    memcpy(out, t, OTEL_TP_LEN);
    out[OTEL_TP_LEN] = '\0';
    return otel_tp_parse(out, &c) == 0;
}
