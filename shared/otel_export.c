/* otel_export — the exporter of otel.h: the bounded queue of finished spans
 * and the thread that POSTs them in batches (OTLP/HTTP JSON, libcurl) to the
 * collector otel_env.c read from the environment.
 *
 * The request path only takes the queue's mutex to push a pointer (never a
 * wait on the network): a full queue, or an exporter that is not running,
 * drops the span and counts it. The thread sends a batch when CAP_OTEL_BATCH
 * spans wait or a second after the first of them came; a failed POST is
 * retried only on 429/502/503/504 (Retry-After honoured, else backoff),
 * a few times, and the batch is then dropped and counted. */
#include "shared/mono.h"
#include "shared/otel.h"
#include "shared/otel_cfg.h"

#include "shared/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OTEL__TRIES 4                   /* a batch's POSTs at most (429/502/503/504) */
#define OTEL__POST_MS 10000L            /* one POST's time limit */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    otel_span_t *q[CAP_OTEL_QUEUE];
    size_t head, count;
    long long first_ms;                 /* CLOCK_MONOTONIC ms the oldest waiting span came */
    pid_t pid;                          /* the process the thread runs in; 0: none */
    pthread_t thr;
    int stopping;
    long long stop_by_ms;               /* stopping: give up sending then */
} otel__q = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0, 0, 0, 0, 0, 0 };

static atomic_ullong otel__dropped, otel__exported;
static atomic_llong otel__abort_at;     /* a POST in flight gives up at this ms (0: never) */

static long long otel__mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the queue ------------------------------------------------------------ */

void otel_span_end(otel_span_t *sp)
{
    otel_span_t *copy;
    size_t at;

    if (!otel_cfg.on)
        return;
    if (!sp->end_ns)
        sp->end_ns = otel_now_ns();
    /* the copy is made outside the lock: only the push is inside */
    if (!(copy = malloc(sizeof(*copy)))) {
        atomic_fetch_add(&otel__dropped, 1);
        return;
    }
    memcpy(copy, sp, offsetof(otel_span_t, text));
    memcpy(copy->text, sp->text, sp->text_len);
    copy->text_len = sp->text_len;
    pthread_mutex_lock(&otel__q.mu);
    if (otel__q.pid != getpid() || otel__q.stopping || otel__q.count >= CAP_OTEL_QUEUE) {
        pthread_mutex_unlock(&otel__q.mu);
        free(copy);
        atomic_fetch_add(&otel__dropped, 1);
        return;
    }
    at = (otel__q.head + otel__q.count) % CAP_OTEL_QUEUE;
    otel__q.q[at] = copy;
    if (otel__q.count++ == 0) {
        otel__q.first_ms = otel__mono_ms();
        pthread_cond_signal(&otel__q.cv);   /* its second starts */
    }
    if (otel__q.count == CAP_OTEL_BATCH)
        pthread_cond_signal(&otel__q.cv);
    pthread_mutex_unlock(&otel__q.mu);
}

unsigned long long otel_dropped(void)
{
    return atomic_load(&otel__dropped);
}

unsigned long long otel_exported(void)
{
    return atomic_load(&otel__exported);
}

/* --- the exporter thread --------------------------------------------------- */

static size_t otel__discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* Aborts a POST once the stop's bound has passed. */
static int otel__xfer(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    long long at = atomic_load(&otel__abort_at);

    (void)ud, (void)a, (void)b, (void)c, (void)d;
    return at && otel__mono_ms() > at;
}

/* Sleeps ms, or less when a stop comes whose bound is nearer. Returns 1 when
 * the wait would pass the stop's bound (give up), else 0. */
static int otel__backoff(long long ms)
{
    long long until = otel__mono_ms() + ms;
    struct timespec ts;
    int over = 0;

    pthread_mutex_lock(&otel__q.mu);
    for (;;) {
        long long now = otel__mono_ms();
        if (otel__q.stopping && until > otel__q.stop_by_ms) {
            over = 1;
            break;
        }
        if (now >= until)
            break;
        ts = mono_deadline(CLOCK_REALTIME, until - now);
        pthread_cond_timedwait(&otel__q.cv, &otel__q.mu, &ts);
    }
    pthread_mutex_unlock(&otel__q.mu);
    return over;
}

/* POSTs one body, with the retries of the spec. 0 when the collector took
 * it, -EIO when it was refused or could not be delivered. */
static int otel__post(CURL *h, struct curl_slist *hdrs, const char *body)
{
    long status = 0, delay = 500;
    curl_off_t retry_after = 0;

    for (int t = 0; t < OTEL__TRIES; t++) {
        CURLcode cc;
        curl_easy_setopt(h, CURLOPT_URL, otel_cfg.url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, OTEL__POST_MS);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, otel__discard);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, otel__xfer);
        cc = curl_easy_perform(h);
        if (cc != CURLE_OK)
            return -EIO;    /* unreachable or timed out: the next batch tries again */
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300)
            return 0;
        if (status != 429 && status != 502 && status != 503 && status != 504)
            break;
        if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0)
            delay = retry_after > 30 ? 30000 : (long)retry_after * 1000;
        if (t + 1 < OTEL__TRIES && otel__backoff(delay + (long)(otel__mono_ms() % 250)))
            break;
        delay *= 2;
    }
    log_debug("traces: the collector answered %ld: %s", status, "a batch of spans dropped");
    return -EIO;
}

/* Takes up to CAP_OTEL_BATCH spans when a batch is due (full, a second old,
 * or stopping), waiting for it. Returns how many; 0 when stopping and empty
 * (or past the stop's bound). Called with the mutex held. */
static size_t otel__take(otel_span_t **batch)
{
    size_t n = 0;

    for (;;) {
        long long now = otel__mono_ms(), left;
        struct timespec ts;
        if (otel__q.stopping && (otel__q.count == 0 || now > otel__q.stop_by_ms))
            return 0;
        if (otel__q.count >= CAP_OTEL_BATCH || otel__q.stopping ||
            (otel__q.count && now - otel__q.first_ms >= 1000))
            break;
        if (otel__q.count == 0) {   /* idle: no wake-up until a span comes */
            pthread_cond_wait(&otel__q.cv, &otel__q.mu);
            continue;
        }
        left = otel__q.first_ms + 1000 - now;
        ts = mono_deadline(CLOCK_REALTIME, left);
        pthread_cond_timedwait(&otel__q.cv, &otel__q.mu, &ts);
    }
    while (n < CAP_OTEL_BATCH && otel__q.count) {
        batch[n++] = otel__q.q[otel__q.head];
        otel__q.head = (otel__q.head + 1) % CAP_OTEL_QUEUE;
        otel__q.count--;
    }
    otel__q.first_ms = otel__mono_ms();
    return n;
}

/* The POST's headers: ours and the collector's. NULL on ENOMEM. */
static struct curl_slist *otel__header_list(void)
{
    /* no "Expect: 100-continue" wait on batches past 1 KiB */
    static const char *const ours[] = { "Expect:", "Content-Type: application/json" };
    struct curl_slist *l = NULL, *n;

    for (size_t i = 0; i < 2 + otel_cfg.nheaders; i++) {
        if (!(n = curl_slist_append(l, i < 2 ? ours[i] : otel_cfg.headers[i - 2]))) {
            curl_slist_free_all(l);
            return NULL;
        }
        l = n;
    }
    return l;
}

static void *otel__main(void *arg)
{
    static otel_span_t *batch[CAP_OTEL_BATCH];
    struct curl_slist *hdrs;
    CURL *h = curl_easy_init();
    size_t k;

    (void)arg;
    hdrs = otel__header_list();
    pthread_mutex_lock(&otel__q.mu);
    while ((k = otel__take(batch)) > 0) {
        char *body;
        pthread_mutex_unlock(&otel__q.mu);
        body = otel_encode((const otel_span_t *const *)batch, k, otel_cfg.service);
        if (body && h && hdrs && otel__post(h, hdrs, body) == 0)
            atomic_fetch_add(&otel__exported, k);
        else
            atomic_fetch_add(&otel__dropped, k);
        free(body);
        for (size_t i = 0; i < k; i++)
            free(batch[i]);
        pthread_mutex_lock(&otel__q.mu);
    }
    /* stopping: what is left is dropped */
    atomic_fetch_add(&otel__dropped, otel__q.count);
    while (otel__q.count) {
        free(otel__q.q[otel__q.head]);
        otel__q.head = (otel__q.head + 1) % CAP_OTEL_QUEUE;
        otel__q.count--;
    }
    pthread_mutex_unlock(&otel__q.mu);
    curl_slist_free_all(hdrs);
    if (h)
        curl_easy_cleanup(h);
    return NULL;
}

int otel_start(void)
{
    int rc = 0;

    if (!otel_cfg.on)
        return -ENOTSUP;
    pthread_mutex_lock(&otel__q.mu);
    if (otel__q.pid == getpid()) {
        rc = -EALREADY;
        goto out;
    }
    /* a forked child: its parent's queue is not its own */
    otel__q.head = otel__q.count = 0;
    otel__q.stopping = 0;
    atomic_store(&otel__abort_at, 0);
    rc = -pthread_create(&otel__q.thr, NULL, otel__main, NULL);
    if (rc == 0)
        otel__q.pid = getpid();
out:
    pthread_mutex_unlock(&otel__q.mu);
    return rc;
}

void otel_stop(int bound_ms)
{
    struct timespec ts;
    long long by = otel__mono_ms() + (bound_ms > 0 ? bound_ms : 0);

    pthread_mutex_lock(&otel__q.mu);
    if (otel__q.pid != getpid() || otel__q.stopping) {
        pthread_mutex_unlock(&otel__q.mu);
        return;
    }
    otel__q.stopping = 1;
    otel__q.stop_by_ms = by;
    atomic_store(&otel__abort_at, by);
    pthread_cond_broadcast(&otel__q.cv);
    pthread_mutex_unlock(&otel__q.mu);
    /* the thread keeps to the bound (the POST in flight aborts at it); a
     * little more for it to see that and leave */
    ts = mono_deadline(CLOCK_REALTIME, bound_ms + 500);
    if (pthread_timedjoin_np(otel__q.thr, NULL, &ts) != 0)
        pthread_detach(otel__q.thr);
    log_info("traces: %llu spans exported, %llu dropped by this process", otel_exported(),
             otel_dropped());
    pthread_mutex_lock(&otel__q.mu);
    otel__q.pid = 0;
    pthread_mutex_unlock(&otel__q.mu);
}
