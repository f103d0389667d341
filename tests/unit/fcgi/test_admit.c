/* admit: long requests leave `reserve` threads to short ones, and wait at
 * most `wait_ms` for a slot. */
#include "fcgi/core/admit.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <time.h>
#include <cmocka.h>

static double test__ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* 8 threads, 2 reserved: the 7th long request is refused at once (no wait). */
static void test_reserve_refuses_at_once(void **state)
{
    admit_t *a = admit_new(8, 2, 0);
    int i;

    (void)state;
    assert_non_null(a);
    for (i = 0; i < 6; i++)
        assert_int_equal(admit_enter(a), 0);
    assert_int_equal(admit_enter(a), -EBUSY);
    admit_leave(a);
    assert_int_equal(admit_enter(a), 0);          /* a freed slot is taken again */
    assert_int_equal(admit_enter(a), -EBUSY);
    for (i = 0; i < 6; i++)
        admit_leave(a);
    admit_free(a);
    assert_int_equal(admit_enter(NULL), 0);       /* no admission control */
    admit_leave(NULL);
}

/* Reserve clamps to threads-1: one thread always may serve a completion. */
static void test_reserve_clamped(void **state)
{
    admit_t *a = admit_new(1, 5, 0);

    (void)state;
    assert_int_equal(admit_enter(a), 0);
    assert_int_equal(admit_enter(a), -EBUSY);
    admit_leave(a);
    admit_free(a);
}

static void *test__leave_later(void *arg)
{
    struct timespec ts = { 0, 100 * 1000 * 1000 };

    nanosleep(&ts, NULL);
    admit_leave(arg);
    return NULL;
}

/* With a wait: a slot freed during it is taken; none freed is a refusal when
 * the wait is over. At most reserve/2 wait at once: past that, at once. */
static void test_wait_bounded(void **state)
{
    admit_t *a = admit_new(4, 2, 5000);
    pthread_t th;
    double t0;

    (void)state;
    assert_int_equal(admit_enter(a), 0);
    assert_int_equal(admit_enter(a), 0);
    assert_int_equal(pthread_create(&th, NULL, test__leave_later, a), 0);
    t0 = test__ms();
    assert_int_equal(admit_enter(a), 0);          /* woken by the leave */
    assert_true(test__ms() - t0 < 5000);
    pthread_join(th, NULL);
    admit_leave(a);
    admit_leave(a);
    admit_free(a);

    a = admit_new(4, 2, 200);
    assert_int_equal(admit_enter(a), 0);
    assert_int_equal(admit_enter(a), 0);
    t0 = test__ms();
    assert_int_equal(admit_enter(a), -EBUSY);     /* nothing freed: refused after the wait */
    assert_true(test__ms() - t0 >= 190);
    admit_leave(a);
    admit_leave(a);
    admit_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserve_refuses_at_once),
        cmocka_unit_test(test_reserve_clamped),
        cmocka_unit_test(test_wait_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
