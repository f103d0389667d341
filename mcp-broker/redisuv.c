/* redisuv — hiredis async hooks on libuv (see redisuv.h). */
#include "mcp-broker/redisuv.h"

#include <errno.h>
#include <stdlib.h>

typedef struct redisuv {
    redisAsyncContext *ac;       /* NULL once hiredis has cleaned up */
    uv_poll_t poll;
    int events;
} redisuv_t;

static void redisuv__update(redisuv_t *p);

static void redisuv__on_poll(uv_poll_t *h, int status, int events)
{
    redisuv_t *p = h->data;

    if (status < 0) {
        /* POLLERR: libuv has stopped the poll; let hiredis read the error
         * (it closes the context and fires its callbacks) */
        if (p->ac)
            redisAsyncHandleRead(p->ac);
        if (p->ac)
            redisuv__update(p); /* still open: watch it again */
        return;
    }
    if (p->ac && (events & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

static void redisuv__update(redisuv_t *p)
{
    if (p->events)
        uv_poll_start(&p->poll, p->events, redisuv__on_poll);
    else
        uv_poll_stop(&p->poll);
}

static void redisuv__add_read(void *d)
{
    redisuv_t *p = d;
    p->events |= UV_READABLE;
    redisuv__update(p);
}

static void redisuv__del_read(void *d)
{
    redisuv_t *p = d;
    p->events &= ~UV_READABLE;
    redisuv__update(p);
}

static void redisuv__add_write(void *d)
{
    redisuv_t *p = d;
    p->events |= UV_WRITABLE;
    redisuv__update(p);
}

static void redisuv__del_write(void *d)
{
    redisuv_t *p = d;
    p->events &= ~UV_WRITABLE;
    redisuv__update(p);
}

static void redisuv__closed(uv_handle_t *h)
{
    free(h->data);
}

static void redisuv__cleanup(void *d)
{
    redisuv_t *p = d;

    p->ac = NULL; /* the context is being freed */
    uv_close((uv_handle_t *)&p->poll, redisuv__closed);
}

int redisuv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    redisuv_t *p;
    int rc;

    if (ac->ev.data)
        return -EEXIST;
    p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    rc = uv_poll_init(loop, &p->poll, ac->c.fd);
    if (rc != 0) {
        free(p);
        return rc;
    }
    p->ac = ac;
    p->poll.data = p;
    ac->ev.data = p;
    ac->ev.addRead = redisuv__add_read;
    ac->ev.delRead = redisuv__del_read;
    ac->ev.addWrite = redisuv__add_write;
    ac->ev.delWrite = redisuv__del_write;
    ac->ev.cleanup = redisuv__cleanup;
    return 0;
}
