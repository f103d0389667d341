/* redisuv — hiredis async hooks on libuv (see redisuv.h).
 *
 * Two things keep a command's trip short (issue 20, the tool round trip):
 * - the poll is only restarted when the events it watches change: hiredis
 *   asks for "read" again after every read and write, and each uv_poll_start
 *   on a live poll costs an epoll_ctl DEL and an ADD;
 * - a command's bytes are written at the end of the loop iteration that
 *   queued it (a check handle, after the I/O callbacks), or, when a timer
 *   or code outside the loop queued it, before the loop next blocks (a
 *   prepare handle); not after one more epoll_wait for "writable" (a
 *   loopback socket almost always is). Everything queued in one iteration
 *   goes out in one write. Only when the socket takes less
 *   than all of it (or the context is still connecting) is "writable"
 *   watched, as before. redisuv_flush writes at once, for an answer that
 *   should not wait for the rest of the iteration (a log line, a span). */
#include "mcp-broker/redisuv.h"

#include <errno.h>
#include <stdlib.h>

typedef struct redisuv {
    redisAsyncContext *ac;       /* NULL once hiredis has cleaned up */
    uv_poll_t poll;
    uv_check_t flush;            /* writes what the I/O callbacks queued */
    uv_prepare_t prep;           /* ... and what was queued before the poll */
    int events;                  /* what hiredis wants watched */
    int active;                  /* what the poll watches now (-1: restart it) */
    int want_write;              /* a flush is due at the end of the iteration */
    int flushing;                /* inside the flush's redisAsyncHandleWrite */
    int open;                    /* handles not yet through their close callback */
} redisuv_t;

static void redisuv__update(redisuv_t *p);
static void redisuv__add_write(void *d);

static void redisuv__on_poll(uv_poll_t *h, int status, int events)
{
    redisuv_t *p = h->data;

    if (status < 0) {
        /* POLLERR: libuv has stopped the poll; let hiredis read the error
         * (it closes the context and fires its callbacks) */
        p->active = -1;
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

/* Makes the poll watch p->events; no system call when it already does. */
static void redisuv__update(redisuv_t *p)
{
    if (p->events == p->active)
        return;
    if (p->events)
        uv_poll_start(&p->poll, p->events, redisuv__on_poll);
    else
        uv_poll_stop(&p->poll);
    p->active = p->events;
}

/* Both handles run every iteration (unreferenced: they keep no loop
 * alive); nothing to do unless a command is queued. */
static void redisuv__flush(redisuv_t *p)
{
    if (!p->want_write || !p->ac)
        return;
    p->want_write = 0;
    p->flushing = 1;
    redisAsyncHandleWrite(p->ac); /* not all written: add_write watches "writable" */
    p->flushing = 0;
}

static void redisuv__on_check(uv_check_t *h)
{
    redisuv__flush(h->data);
}

static void redisuv__on_prepare(uv_prepare_t *h)
{
    redisuv__flush(h->data);
}

void redisuv_flush(redisAsyncContext *ac)
{
    redisuv_t *p = ac ? ac->ev.data : NULL;

    if (!p || !p->want_write || p->ac != ac || (ac->c.flags & (REDIS_IN_CALLBACK | REDIS_DISCONNECTING)))
        return;
    p->want_write = 0;
    p->flushing = 1;
    redisAsyncHandleWrite(ac); /* may free ac (a failed write): p outlives it */
    p->flushing = 0;
}

int redisuv_send_noreply(redisAsyncContext *ac, const char *cmd, size_t len)
{
    if (!ac || !ac->ev.data || (ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)))
        return -ENOTCONN;
    if (redisAppendFormattedCommand(&ac->c, cmd, len) != REDIS_OK)
        return -ENOMEM;
    redisuv__add_write(ac->ev.data);
    return 0;
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

    /* connected and not already left over by a write: at the iteration's end */
    if (!p->flushing && !(p->events & UV_WRITABLE) && (p->ac->c.flags & REDIS_CONNECTED)) {
        p->want_write = 1;
        return;
    }
    p->events |= UV_WRITABLE;
    redisuv__update(p);
}

static void redisuv__del_write(void *d)
{
    redisuv_t *p = d;
    p->want_write = 0;
    p->events &= ~UV_WRITABLE;
    redisuv__update(p);
}

static void redisuv__closed(uv_handle_t *h)
{
    redisuv_t *p = h->data;

    if (--p->open == 0)
        free(p);
}

static void redisuv__cleanup(void *d)
{
    redisuv_t *p = d;

    p->ac = NULL; /* the context is being freed */
    p->want_write = 0;
    uv_close((uv_handle_t *)&p->poll, redisuv__closed);
    uv_close((uv_handle_t *)&p->flush, redisuv__closed);
    uv_close((uv_handle_t *)&p->prep, redisuv__closed);
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
    uv_check_init(loop, &p->flush);   /* these cannot fail */
    uv_prepare_init(loop, &p->prep);
    p->ac = ac;
    p->poll.data = p;
    p->flush.data = p;
    p->prep.data = p;
    p->open = 3;
    uv_check_start(&p->flush, redisuv__on_check);
    uv_prepare_start(&p->prep, redisuv__on_prepare);
    uv_unref((uv_handle_t *)&p->flush);
    uv_unref((uv_handle_t *)&p->prep);
    ac->ev.data = p;
    ac->ev.addRead = redisuv__add_read;
    ac->ev.delRead = redisuv__del_read;
    ac->ev.addWrite = redisuv__add_write;
    ac->ev.delWrite = redisuv__del_write;
    ac->ev.cleanup = redisuv__cleanup;
    return 0;
}
