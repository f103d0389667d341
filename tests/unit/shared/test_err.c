/* Unit tests for shared/err: the one error value, its constructors and the
 * status-to-type vocabulary the surfaces render. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shared/err.h"
#include "shared/utf8.h"

#include <errno.h>
#include <string.h>

static void set_fills_every_field_and_returns_an_error(void **state)
{
    aip_err_t e;
    (void)state;
    aip_err_clear(&e);
    assert_false(aip_err_is_set(&e));
    assert_int_equal(aip_err_set(&e, 503, "api_error", "redis_unavailable", "cannot reach %s",
                                 "Redis"), -EIO);
    assert_true(aip_err_is_set(&e));
    assert_int_equal(e.status, 503);
    assert_string_equal(e.type, "api_error");
    assert_string_equal(e.code, "redis_unavailable");
    assert_string_equal(e.param, "");
    assert_string_equal(e.msg, "cannot reach Redis");
}

static void type_defaults_by_status(void **state)
{
    aip_err_t e;
    (void)state;
    aip_err_set(&e, 404, NULL, NULL, "x");
    assert_string_equal(e.type, "invalid_request_error");
    assert_string_equal(e.code, "");
    aip_err_set(&e, 502, "", NULL, "x");
    assert_string_equal(e.type, "api_error");
    assert_string_equal(aip_err_type(401), "authentication_error");
    assert_string_equal(aip_err_type(403), "permission_error");
    assert_string_equal(aip_err_type(429), "rate_limit_error");
    assert_string_equal(aip_err_type(400), "invalid_request_error");
}

static void param_and_prefix_keep_the_rest(void **state)
{
    aip_err_t e;
    (void)state;
    aip_err_set(&e, 504, "api_error", "mcp_timeout", "no answer in time");
    aip_err_param(&e, "tools");
    assert_int_equal(aip_err_prefix(&e, "MCP server '%s': ", "fs"), -EIO);
    assert_string_equal(e.msg, "MCP server 'fs': no answer in time");
    assert_string_equal(e.param, "tools");
    assert_string_equal(e.code, "mcp_timeout");
    assert_int_equal(e.status, 504);
    /* a new set forgets the old param */
    aip_err_set(&e, 400, NULL, NULL, "y");
    assert_string_equal(e.param, "");
}

static void common_failures_have_one_wording(void **state)
{
    aip_err_t e;
    (void)state;
    assert_int_equal(aip_err_oom(&e), -ENOMEM);
    assert_int_equal(e.status, 500);
    assert_string_equal(e.msg, "out of memory");
    assert_int_equal(aip_err_client_gone(&e), -EIO);
    assert_int_equal(e.status, 499);
    assert_string_equal(e.code, "client_gone");
}

/* A message cut at the cap never ends inside a UTF-8 character (it is echoed
 * in JSON), and a word longer than its field is cut, not overflowed. */
static void long_input_is_cut_whole(void **state)
{
    static char big[3 * AIP_ERR_MSG_MAX];
    aip_err_t e;
    (void)state;
    for (size_t i = 0; i + 2 < sizeof(big); i += 2)
        memcpy(big + i, "\xC3\xA9", 2);          /* é, 2 bytes each */
    big[sizeof(big) - 1] = '\0';
    aip_err_set(&e, 400, NULL, NULL, "x%s", big); /* odd offset: the cap splits an é */
    assert_true(strlen(e.msg) < AIP_ERR_MSG_MAX);
    assert_true(utf8_valid(e.msg, strlen(e.msg)));
    aip_err_set(&e, 400, "a_type_that_is_much_longer_than_the_field_it_goes_into_ok", NULL, "x");
    assert_int_equal(strlen(e.type), AIP_ERR_WORD_MAX - 1);
    aip_err_prefix(&e, "%s", big);
    assert_true(utf8_valid(e.msg, strlen(e.msg)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(set_fills_every_field_and_returns_an_error),
        cmocka_unit_test(type_defaults_by_status),
        cmocka_unit_test(param_and_prefix_keep_the_rest),
        cmocka_unit_test(common_failures_have_one_wording),
        cmocka_unit_test(long_input_is_cut_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
