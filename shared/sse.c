#include "shared/sse.h"
#include "shared/caps.h"

#include "shared/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct sse_parser {
    sse_event_cb cb;
    void *ud;
    buf_t line;      /* current line, without its end */
    buf_t data;      /* data of the event being built */
    buf_t event;     /* event type of the event being built */
    buf_t id;        /* last event id */
    long retry;
    int after_cr;    /* the previous byte was \r: a following \n is part of that line end */
    int bom_checked;
    int has_data;
    int broken;
};

sse_parser_t *sse_new(size_t max_event, sse_event_cb cb, void *ud)
{
    sse_parser_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->cb = cb;
    p->ud = ud;
    p->retry = -1;
    buf_init(&p->line, max_event);
    buf_init(&p->data, max_event);
    buf_init(&p->event, CAP_SSE_EVENT_NAME);
    buf_init(&p->id, CAP_SSE_ID);
    return p;
}

static int sse__dispatch(sse_parser_t *p)
{
    int rc = 0;

    if (p->has_data) {
        /* the data buffer ends with the \n of its last line: drop it */
        if (p->data.len && p->data.data[p->data.len - 1] == '\n') {
            p->data.len--;
            p->data.data[p->data.len] = '\0';
        }
        rc = p->cb(p->ud, p->event.len ? buf_str(&p->event) : "message", buf_str(&p->data),
                   p->data.len, buf_str(&p->id));
    }
    buf_reset(&p->data);
    buf_reset(&p->event);
    p->has_data = 0;
    return rc;
}

static int sse__line(sse_parser_t *p)
{
    const char *l = buf_str(&p->line), *colon, *val;
    size_t n = p->line.len, flen, vlen;
    int rc = 0;

    if (n == 0)
        return sse__dispatch(p);
    if (l[0] == ':')
        return 0;
    colon = memchr(l, ':', n);
    if (colon) {
        flen = (size_t)(colon - l);
        val = colon + 1;
        vlen = n - flen - 1;
        if (vlen && *val == ' ') {
            val++;
            vlen--;
        }
    } else {
        flen = n;
        val = "";
        vlen = 0;
    }
    if (flen == 4 && memcmp(l, "data", 4) == 0) {
        if ((rc = buf_append(&p->data, val, vlen)) < 0 || (rc = buf_append(&p->data, "\n", 1)) < 0)
            return rc;
        p->has_data = 1;
    } else if (flen == 5 && memcmp(l, "event", 5) == 0) {
        buf_reset(&p->event);
        if ((rc = buf_append(&p->event, val, vlen)) < 0)
            return rc;
    } else if (flen == 2 && memcmp(l, "id", 2) == 0) {
        if (!memchr(val, '\0', vlen)) {
            buf_reset(&p->id);
            if ((rc = buf_append(&p->id, val, vlen)) < 0)
                return rc;
        }
    } else if (flen == 5 && memcmp(l, "retry", 5) == 0) {
        long v = 0;
        size_t i;
        for (i = 0; i < vlen && val[i] >= '0' && val[i] <= '9' && v < 100000000L; i++)
            v = v * 10 + (val[i] - '0');
        if (vlen && i == vlen)
            p->retry = v;
    }
    return 0;
}

int sse_feed(sse_parser_t *p, const char *d, size_t n)
{
    size_t i = 0, start;
    int rc;

    if (p->broken)
        return -ENOSPC;
    if (!p->bom_checked && n) {
        /* a UTF-8 BOM may open the stream; it can arrive split, but in
         * practice it comes in the first read */
        if (n >= 3 && (unsigned char)d[0] == 0xEF && (unsigned char)d[1] == 0xBB &&
            (unsigned char)d[2] == 0xBF)
            i = 3;
        p->bom_checked = 1;
    }
    while (i < n) {
        if (p->after_cr) {
            p->after_cr = 0;
            if (d[i] == '\n') {
                i++;
                continue;
            }
        }
        start = i;
        while (i < n && d[i] != '\n' && d[i] != '\r')
            i++;
        if ((rc = buf_append(&p->line, d + start, i - start)) < 0)
            goto fail;
        if (i == n)
            break;
        p->after_cr = d[i] == '\r';
        i++;
        rc = sse__line(p);
        buf_reset(&p->line);
        if (rc < 0 && rc == -ENOSPC)
            goto fail;
        if (rc)
            return rc;
    }
    return 0;
fail:
    p->broken = 1;
    return -ENOSPC;
}

long sse_retry_ms(const sse_parser_t *p)
{
    return p->retry;
}

void sse_reset(sse_parser_t *p)
{
    buf_reset(&p->line);
    buf_reset(&p->data);
    buf_reset(&p->event);
    buf_reset(&p->id);
    p->has_data = 0;
    p->after_cr = 0;
    p->broken = 0;
    p->bom_checked = 0;
}

void sse_free(sse_parser_t *p)
{
    if (!p)
        return;
    buf_free(&p->line);
    buf_free(&p->data);
    buf_free(&p->event);
    buf_free(&p->id);
    free(p);
}
