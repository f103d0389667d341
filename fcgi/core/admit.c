/* admit — a counted slot pool under a mutex, with a bounded wait. */
#include "fcgi/core/admit.h"
#include "fcgi/metrics/metrics.h"

#include "shared/mono.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct admit {
    pthread_mutex_t mu;
    pthread_cond_t freed;    /* signalled by admit_leave */
    int slots;               /* long requests at most: threads - reserve */
    int max_waiters;         /* reserve / 2: the rest of the reserve never waits */
    int wait_ms;
    int busy;                /* long requests in progress */
    int waiters;
};

admit_t *admit_new(int threads, int reserve, int wait_ms)
{
    admit_t *a = calloc(1, sizeof(*a)), *res = NULL;
    pthread_condattr_t ca;
    int ca_ok = 0;

    if (!a)
        goto out;
    if (threads < 1)
        threads = 1;
    if (reserve < 0)
        reserve = 0;
    if (reserve > threads - 1)
        reserve = threads - 1;
    a->slots = threads - reserve;
    a->max_waiters = reserve / 2;
    a->wait_ms = wait_ms > 0 ? wait_ms : 0;
    if (pthread_condattr_init(&ca) != 0)
        goto out;
    ca_ok = 1;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&a->mu, NULL) != 0)
        goto out;
    if (pthread_cond_init(&a->freed, &ca) != 0) {
        pthread_mutex_destroy(&a->mu);
        goto out;
    }
    res = a;
    a = NULL;
out:
    if (ca_ok)
        pthread_condattr_destroy(&ca);
    free(a);
    return res;
}

void admit_free(admit_t *a)
{
    if (!a)
        return;
    pthread_cond_destroy(&a->freed);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

int admit_enter(admit_t *a)
{
    struct timespec until;
    int rc = -EBUSY;

    if (!a)
        return 0;
    pthread_mutex_lock(&a->mu);
    if (a->busy < a->slots) {
        rc = 0;
        goto out;
    }
    if (a->wait_ms == 0 || a->waiters >= a->max_waiters)
        goto out;
    until = mono_deadline(CLOCK_MONOTONIC, a->wait_ms);
    a->waiters++;
    while (a->busy >= a->slots) {
        if (pthread_cond_timedwait(&a->freed, &a->mu, &until) == ETIMEDOUT)
            break;
    }
    a->waiters--;
    if (a->busy < a->slots)
        rc = 0;
out:
    if (rc == 0)
        a->busy++;
    pthread_mutex_unlock(&a->mu);
    if (rc == 0)
        metrics_in_flight(1);
    return rc;
}

void admit_leave(admit_t *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    if (a->busy > 0)
        a->busy--;
    pthread_cond_signal(&a->freed);
    pthread_mutex_unlock(&a->mu);
    metrics_in_flight(-1);
}
