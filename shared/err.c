/* err — the one error value (err.h). */
#include "shared/err.h"

#include "shared/utf8.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void err__word(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* A vsnprintf cut can end inside a UTF-8 sequence: the message is echoed in
 * JSON, so cut back to a whole character. */
static void err__tidy(char *msg, size_t cap)
{
    size_t n = strlen(msg), i;

    if (n == 0 || n + 1 < cap)
        return;
    i = n - 1;
    while (i > 0 && ((unsigned char)msg[i] & 0xC0) == 0x80)
        i--;
    if (!utf8_valid(msg + i, n - i))
        msg[i] = '\0';
}

void aip_err_clear(aip_err_t *e)
{
    memset(e, 0, sizeof(*e));
}

const char *aip_err_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 429: return "rate_limit_error";
    default:  return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

int aip_err_set(aip_err_t *e, int status, const char *type, const char *code,
                const char *fmt, ...)
{
    va_list ap;

    e->status = status;
    err__word(e->type, sizeof(e->type), type && *type ? type : aip_err_type(status));
    err__word(e->code, sizeof(e->code), code);
    e->param[0] = '\0';
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    err__tidy(e->msg, sizeof(e->msg));
    return -EIO;
}

aip_err_t *aip_err_param(aip_err_t *e, const char *param)
{
    err__word(e->param, sizeof(e->param), param);
    return e;
}

int aip_err_prefix(aip_err_t *e, const char *fmt, ...)
{
    char head[AIP_ERR_MSG_MAX], old[AIP_ERR_MSG_MAX];
    size_t hn, on;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(head, sizeof(head), fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof(old));
    hn = strlen(head);
    on = strnlen(old, sizeof(old) - 1);
    if (on > sizeof(e->msg) - 1 - hn)
        on = sizeof(e->msg) - 1 - hn;
    memcpy(e->msg, head, hn);
    memcpy(e->msg + hn, old, on);
    e->msg[hn + on] = '\0';
    err__tidy(e->msg, sizeof(e->msg));
    return -EIO;
}

int aip_err_oom(aip_err_t *e)
{
    aip_err_set(e, 500, "api_error", NULL, "out of memory");
    return -ENOMEM;
}

int aip_err_client_gone(aip_err_t *e)
{
    return aip_err_set(e, 499, "api_error", "client_gone", "the client closed the connection");
}

int aip_err_is_set(const aip_err_t *e)
{
    return e->status != 0;
}
