/* buf_reserve: one allocation for what follows, the cap still holds, and a
 * refused reservation leaves the buffer as it was. */
#include "shared/buf.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static void test_reserve_then_append(void **state)
{
    buf_t b;
    const char *p;

    (void)state;
    buf_init(&b, 1000);
    assert_int_equal(buf_reserve(&b, 400), 0);
    assert_true(b.cap >= 401);
    assert_int_equal(b.len, 0);
    p = b.data;
    for (int i = 0; i < 40; i++)
        assert_int_equal(buf_puts(&b, "0123456789"), 0);
    assert_ptr_equal(b.data, p);                 /* no growth on the way */
    assert_int_equal(b.len, 400);
    assert_int_equal(strlen(buf_str(&b)), 400);
    buf_free(&b);
}

static void test_reserve_past_cap(void **state)
{
    buf_t b;

    (void)state;
    buf_init(&b, 100);
    assert_int_equal(buf_puts(&b, "abc"), 0);
    assert_int_equal(buf_reserve(&b, 98), -ENOSPC);
    assert_string_equal(buf_str(&b), "abc");
    assert_int_equal(buf_reserve(&b, 97), 0);
    assert_true(b.cap <= 101);
    assert_string_equal(buf_str(&b), "abc");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserve_then_append),
        cmocka_unit_test(test_reserve_past_cap),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
