/* Unit tests for shared/url (URLs as shown to clients and logs: no secrets)
 * and shared/sat (saturating sums of counts an upstream sends). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shared/sat.h"
#include "shared/url.h"

#include <string.h>

static void expect(const char *url, const char *want)
{
    char out[256];

    assert_string_equal(url_redact(url, out, sizeof(out)), want);
}

static void url_redact_drops_userinfo_query_and_fragment(void **state)
{
    (void)state;
    expect("http://user:PASS@host:8080/v1", "http://host:8080/v1");
    expect("https://host/v1?key=SECRET&x=1", "https://host/v1");
    expect("http://u:p@host/v1?key=SECRET#frag", "http://host/v1");
    expect("http://host?key=SECRET", "http://host");
    expect("http://user:p@ss@host/", "http://host/");       /* the last '@' ends the userinfo */
    expect("http://[::1]:9/v1", "http://[::1]:9/v1");
    expect("http://host/a@b/c", "http://host/a@b/c");        /* '@' in the path is no userinfo */
    expect("redis://:hunter2@127.0.0.1:6379/0", "redis://127.0.0.1:6379/0");
    expect("unix:///tmp/r.sock?db=2&password=x", "unix:///tmp/r.sock");
    expect("user:PASS@host/v1", "host/v1");                  /* no scheme */
    expect("", "");
    expect(NULL, "?");
}

static void url_redact_cuts_to_the_buffer(void **state)
{
    char out[12];

    (void)state;
    memset(out, 'x', sizeof(out));
    assert_string_equal(url_redact("http://u:SECRET@example.com/v1", out, sizeof(out)),
                        "http://exam");
    assert_string_equal(url_redact("http://x", out, 1), "");
}

static void sat_add_sticks_at_the_limits(void **state)
{
    (void)state;
    assert_true(sat_add_i64(2, 3) == 5);
    assert_true(sat_add_i64(INT64_MAX, 5) == INT64_MAX);
    assert_true(sat_add_i64(5, INT64_MAX) == INT64_MAX);
    assert_true(sat_add_i64(INT64_MAX, INT64_MAX) == INT64_MAX);
    assert_true(sat_add_i64(INT64_MIN, -5) == INT64_MIN);
    assert_true(sat_add_i64(INT64_MAX, -5) == INT64_MAX - 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(url_redact_drops_userinfo_query_and_fragment),
        cmocka_unit_test(url_redact_cuts_to_the_buffer),
        cmocka_unit_test(sat_add_sticks_at_the_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
