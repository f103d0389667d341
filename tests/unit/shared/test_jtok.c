/* jtok: a thread's tokener is reused across parses (reset: a failed parse
 * leaves nothing behind), one per depth, a second one while the first is
 * out, and one that read more than JTOK_KEEP_MAX is not kept. */
#include "shared/jtok.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static json_object *parse_with(json_tokener *tok, const char *s)
{
    return json_tokener_parse_ex(tok, s, (int)strlen(s));
}

static void test_reuse_and_reset(void **state)
{
    json_tokener *a, *b;
    json_object *o;

    (void)state;
    a = jtok_get(32, 0);
    assert_non_null(a);
    assert_null(parse_with(a, "{\"x\":[1,2"));          /* left half-way */
    jtok_put(a, 9);
    b = jtok_get(32, JSON_TOKENER_STRICT);
    assert_ptr_equal(a, b);                             /* the same, reset */
    o = parse_with(b, "{\"y\":true}");
    assert_non_null(o);
    assert_int_equal(json_tokener_get_error(b), json_tokener_success);
    assert_true(json_object_get_boolean(json_object_object_get(o, "y")));
    json_object_put(o);
    jtok_put(b, 10);
    b = jtok_get(32, JSON_TOKENER_STRICT);
    assert_ptr_equal(a, b);
    assert_null(parse_with(b, "[1,]"));                /* strict, as asked: refused */
    jtok_put(b, 9);
}

static void test_depths_and_busy(void **state)
{
    json_tokener *a, *b, *c;

    (void)state;
    a = jtok_get(32, 0);
    b = jtok_get(64, 0);
    c = jtok_get(32, 0);                                /* a is out: another */
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_ptr_not_equal(a, b);
    assert_ptr_not_equal(a, c);
    jtok_put(c, 1);                                     /* not a slot's: freed */
    jtok_put(b, 1);
    jtok_put(a, 1);
    assert_ptr_equal(jtok_get(64, 0), b);
    jtok_put(b, JTOK_KEEP_MAX + 1);                     /* read too much: freed */
    b = jtok_get(64, 0);
    assert_non_null(b);
    jtok_put(b, 1);
    jtok_put(NULL, 0);
}

static void *other_thread(void *arg)
{
    json_tokener *t = jtok_get(32, 0);

    *(json_tokener **)arg = t;
    jtok_put(t, 1);
    return NULL;   /* the key's destructor frees the thread's tokeners */
}

static void test_per_thread(void **state)
{
    json_tokener *mine = jtok_get(32, 0), *theirs = NULL;
    pthread_t th;

    (void)state;
    assert_int_equal(pthread_create(&th, NULL, other_thread, &theirs), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_non_null(theirs);
    assert_ptr_not_equal(mine, theirs);
    jtok_put(mine, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse_and_reset),
        cmocka_unit_test(test_depths_and_busy),
        cmocka_unit_test(test_per_thread),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
