/* The waiting clocks (shared/mono.h): a deadline is "now + ms" on the clock
 * asked for, with nanoseconds always in [0, 1e9), past ones included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shared/mono.h"

static long long ts_ms(struct timespec t)
{
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void test_deadlines(void **state)
{
    static const long long offs[] = { 0, 1, 999, 1000, 1500, 123456, -1, -999, -1500 };
    (void)state;
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        struct timespec before, d, after;
        clock_gettime(CLOCK_REALTIME, &before);
        d = mono_deadline(CLOCK_REALTIME, offs[i]);
        clock_gettime(CLOCK_REALTIME, &after);
        assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
        /* between the readings around it, moved by offs[i] (ms rounding: 1) */
        assert_true(ts_ms(d) >= ts_ms(before) + offs[i] - 1);
        assert_true(ts_ms(d) <= ts_ms(after) + offs[i] + 1);
    }
    {
        long long a = mono_ms();
        struct timespec d = mono_deadline(CLOCK_MONOTONIC, 250);
        long long b = mono_ms();
        assert_true(ts_ms(d) >= a + 249 && ts_ms(d) <= b + 251);
        assert_true(b >= a);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadlines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
