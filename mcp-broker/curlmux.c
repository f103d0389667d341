/* curlmux — libcurl's multi_socket interface on a libuv loop, after curl's
 * documented multi-uv example: one uv_poll_t per socket curl asks us to watch,
 * one uv_timer_t for curl's timeout, curl_multi_socket_action on each event,
 * then the finished transfers are collected and their `done` callbacks run.
 *
 * libcurl refuses multi calls made from inside its own callbacks
 * (CURLM_RECURSIVE_API_CALL). Transports deliver messages from write
 * callbacks, and the session layer may then send (add a transfer) or close
 * (remove one). So while curl runs (`depth` > 0), adds are queued and removes
 * become deferred aborts, both carried out as soon as curl returns. */
#include "mcp-broker/curlmux.h"

#include "shared/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

typedef struct curlmux__xfer {
    CURL *easy;
    curlmux_done_cb done;
    void *ud;
    int pending;                 /* queued, not yet in the multi */
    int aborted;                 /* removed from inside curl: finish with an abort */
    struct curlmux__xfer *next;  /* in m->xfers */
} curlmux__xfer_t;

typedef struct curlmux__sock {
    uv_poll_t poll;
    curl_socket_t fd;
    curlmux_t *m;
} curlmux__sock_t;

struct curlmux {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    int depth;                   /* >0 while inside a curl_multi_* call */
    int dirty;                   /* queued adds or aborts wait for depth 0 */
    curlmux__xfer_t *xfers;      /* every transfer we track */
    struct curlmux *next;        /* in curlmux__all */
};

/* One mux per loop, found by loop: the header's contract (curlmux_get) lets
 * every transport share the loop's mux without threading a handle through the
 * session layer. Guarded by a mutex because tests may run loops on threads. */
static curlmux_t *curlmux__all;
static pthread_mutex_t curlmux__lock = PTHREAD_MUTEX_INITIALIZER;

static void curlmux__drive(curlmux_t *m, curl_socket_t fd, int ev_bitmask);

static curlmux__xfer_t *curlmux__find(curlmux_t *m, CURL *easy, curlmux__xfer_t ***prevp)
{
    curlmux__xfer_t **pp = &m->xfers;

    while (*pp && (*pp)->easy != easy)
        pp = &(*pp)->next;
    if (prevp)
        *prevp = pp;
    return *pp;
}

static void curlmux__unlink(curlmux_t *m, curlmux__xfer_t *x)
{
    curlmux__xfer_t **pp = NULL;

    if (curlmux__find(m, x->easy, &pp) == x)
        *pp = x->next;
}

/* Hands finished transfers back to their owners. Runs at depth 0 only, so the
 * done callbacks may add and remove transfers freely. */
static void curlmux__collect(curlmux_t *m)
{
    CURLMsg *msg;
    int left = 0;

    while ((msg = curl_multi_info_read(m->multi, &left))) {
        CURL *easy;
        CURLcode res;
        long status = 0;
        curlmux__xfer_t *x;

        if (msg->msg != CURLMSG_DONE)
            continue;
        easy = msg->easy_handle;
        res = msg->data.result;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(m->multi, easy);
        x = curlmux__find(m, easy, NULL);
        if (!x)
            continue;
        curlmux__unlink(m, x);
        if (x->aborted)
            res = CURLE_ABORTED_BY_CALLBACK;
        x->done(x->ud, easy, res, status);
        free(x);
    }
}

/* Carries out the adds and aborts requested while curl was running. */
static void curlmux__flush(curlmux_t *m)
{
    while (m->dirty && m->depth == 0) {
        curlmux__xfer_t *x, *next;
        int kick = 0;

        m->dirty = 0;
        for (x = m->xfers; x; x = next) {
            next = x->next;
            if (x->aborted) {
                CURL *easy = x->easy;

                if (!x->pending)
                    curl_multi_remove_handle(m->multi, easy);
                curlmux__unlink(m, x);
                x->done(x->ud, easy, CURLE_ABORTED_BY_CALLBACK, 0);
                free(x);
                m->dirty = 1;   /* done may have changed the list: rescan */
                break;
            }
            if (x->pending) {
                x->pending = 0;
                if (curl_multi_add_handle(m->multi, x->easy) != CURLM_OK) {
                    CURL *easy = x->easy;

                    curlmux__unlink(m, x);
                    x->done(x->ud, easy, CURLE_FAILED_INIT, 0);
                    free(x);
                    m->dirty = 1;
                    break;
                }
                kick = 1;
            }
        }
        if (kick)
            curlmux__drive(m, CURL_SOCKET_TIMEOUT, 0);
    }
}

static void curlmux__drive(curlmux_t *m, curl_socket_t fd, int ev_bitmask)
{
    int running = 0;

    m->depth++;
    curl_multi_socket_action(m->multi, fd, ev_bitmask, &running);
    m->depth--;
    if (m->depth == 0) {
        curlmux__collect(m);
        curlmux__flush(m);
    }
}

static void curlmux__on_poll(uv_poll_t *h, int status, int events)
{
    curlmux__sock_t *s = h->data;
    int flags = 0;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curlmux__drive(s->m, s->fd, flags);
}

static void curlmux__on_timer(uv_timer_t *h)
{
    curlmux__drive(h->data, CURL_SOCKET_TIMEOUT, 0);
}

static void curlmux__sock_closed(uv_handle_t *h)
{
    free(h->data);
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching one socket. */
static int curlmux__socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    curlmux_t *m = userp;
    curlmux__sock_t *s = socketp;
    int events = 0;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, curlmux__sock_closed);
            curl_multi_assign(m->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->fd = fd;
        s->m = m;
        if (uv_poll_init_socket(m->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        curl_multi_assign(m->multi, fd, s);
    }
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, curlmux__on_poll);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer; 0 means "call me soon", which
 * we do from the loop rather than recursively. */
static int curlmux__timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    curlmux_t *m = userp;

    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&m->timer);
    else
        uv_timer_start(&m->timer, curlmux__on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

curlmux_t *curlmux_get(uv_loop_t *loop)
{
    curlmux_t *m;

    pthread_mutex_lock(&curlmux__lock);
    for (m = curlmux__all; m && m->loop != loop; m = m->next)
        ;
    if (m)
        goto out;
    m = calloc(1, sizeof(*m));
    if (!m)
        goto out;
    m->loop = loop;
    m->multi = curl_multi_init();
    if (!m->multi || uv_timer_init(loop, &m->timer) != 0) {
        if (m->multi)
            curl_multi_cleanup(m->multi);
        free(m);
        m = NULL;
        goto out;
    }
    m->timer.data = m;
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, curlmux__socket_cb);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, curlmux__timer_cb);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    m->next = curlmux__all;
    curlmux__all = m;
out:
    pthread_mutex_unlock(&curlmux__lock);
    return m;
}

int curlmux_add(curlmux_t *m, CURL *easy, curlmux_done_cb done, void *ud)
{
    curlmux__xfer_t *x = NULL;
    int rc = -EIO;

    if (!m || !easy || !done)
        goto out;
    x = calloc(1, sizeof(*x));
    if (!x)
        goto out;
    x->easy = easy;
    x->done = done;
    x->ud = ud;
    if (m->depth > 0) {
        /* inside a curl callback: curl would refuse the add */
        x->pending = 1;
        m->dirty = 1;
    } else if (curl_multi_add_handle(m->multi, easy) != CURLM_OK) {
        goto out;
    }
    x->next = m->xfers;
    m->xfers = x;
    x = NULL;
    rc = 0;
out:
    free(x);
    return rc;
}

int curlmux_remove(curlmux_t *m, CURL *easy)
{
    curlmux__xfer_t *x;

    if (!m || !easy || !(x = curlmux__find(m, easy, NULL)))
        return 0;
    if (m->depth > 0) {
        /* inside a curl callback: removing now would be refused, and the
         * easy's callbacks may still run until curl returns */
        x->aborted = 1;
        m->dirty = 1;
        return 1;
    }
    if (!x->pending)
        curl_multi_remove_handle(m->multi, easy);
    curlmux__unlink(m, x);
    free(x);
    return 0;
}

static void curlmux__timer_closed(uv_handle_t *h)
{
    curlmux_t *m = h->data;

    free(m);
}

void curlmux_close(curlmux_t *m)
{
    curlmux_t **pp;

    if (!m)
        return;
    pthread_mutex_lock(&curlmux__lock);
    for (pp = &curlmux__all; *pp && *pp != m; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = m->next;
    pthread_mutex_unlock(&curlmux__lock);
    if (m->xfers)
        log_warn("curlmux: closing with transfers still running");
    while (m->xfers) {
        curlmux__xfer_t *x = m->xfers;

        m->xfers = x->next;
        if (!x->pending)
            curl_multi_remove_handle(m->multi, x->easy);
        free(x);
    }
    /* curl_multi_cleanup calls the socket callback with CURL_POLL_REMOVE for
     * sockets still watched, closing their uv_poll handles */
    curl_multi_cleanup(m->multi);
    m->multi = NULL;
    uv_timer_stop(&m->timer);
    uv_close((uv_handle_t *)&m->timer, curlmux__timer_closed);
}
