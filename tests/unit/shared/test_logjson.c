/* Unit tests for the log's JSON format (AIPROXY_LOG_FORMAT=json) and the
 * request id on log lines: every line parses as one JSON object whatever the
 * message holds (quotes, newlines, control bytes, ill-formed UTF-8, a
 * message past the line's size), and the text format stays what it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shared/log.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char test__dir[] = "/tmp/aiproxy-test-logjson-XXXXXX";
static char test__path[PATH_MAX];

static char *test__slurp(void)
{
    static char buf[1 << 17];
    int fd = open(test__path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* The file's lines parsed: each must be one JSON object. Returns how many. */
static int test__parse_lines(json_object **out, int max)
{
    char *text = test__slurp(), *save = NULL;
    int n = 0;

    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_tokener *tok = json_tokener_new();
        json_object *o = json_tokener_parse_ex(tok, line, (int)strlen(line));
        if (!o || json_tokener_get_error(tok) != json_tokener_success ||
            !json_object_is_type(o, json_type_object))
            fail_msg("not one JSON object: %s", line);
        json_tokener_free(tok);
        assert_true(n < max);
        out[n++] = o;
    }
    return n;
}

static const char *test__get(json_object *o, const char *k)
{
    json_object *v = NULL;

    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

static int test__setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(test__dir));
    snprintf(test__path, sizeof(test__path), "%s/log", test__dir);
    return 0;
}

static int test__teardown(void **state)
{
    (void)state;
    unlink(test__path);
    rmdir(test__dir);
    return 0;
}

static void json_lines_parse_whatever_the_message_holds(void **state)
{
    json_object *lines[8];
    char big[6000];
    int n;

    (void)state;
    setenv("AIPROXY_LOG_FORMAT", "json", 1);
    log_init("test-json", LOG_LVL_INFO);
    assert_true(log_json());
    assert_int_equal(log_reopen(test__path), 0);
    memset(big, '"', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    log_warn("quote \" backslash \\ newline \n tab \t bell \a del \x7f bad \xff\xfe utf8 caf\xc3\xa9");
    log_set_request("req_ABC123");
    log_error("%s", big);
    log_set_request(NULL);
    log_fields(LOG_LVL_INFO, "access", "{\"request_id\":\"r1\",\"status\":200,\"ok\":true}");
    log_fields(LOG_LVL_INFO, "empty", "{}");
    log_debug("not written at info");
    log_reopen(NULL);
    n = test__parse_lines(lines, 8);
    assert_int_equal(n, 4);

    assert_string_equal(test__get(lines[0], "level"), "warn");
    assert_string_equal(test__get(lines[0], "component"), "test-json");
    assert_non_null(test__get(lines[0], "time"));
    assert_non_null(strstr(test__get(lines[0], "msg"), "quote \" backslash \\ newline \n tab"));
    assert_non_null(strstr(test__get(lines[0], "msg"), "caf\xc3\xa9"));
    assert_null(test__get(lines[0], "request_id"));

    assert_string_equal(test__get(lines[1], "level"), "error");
    assert_string_equal(test__get(lines[1], "request_id"), "req_ABC123");
    assert_true(strlen(test__get(lines[1], "msg")) > 100);   /* cut, still valid */

    assert_string_equal(test__get(lines[2], "msg"), "access");
    assert_string_equal(test__get(lines[2], "request_id"), "r1");
    assert_string_equal(test__get(lines[2], "status"), "200");
    assert_string_equal(test__get(lines[3], "msg"), "empty");
    for (int i = 0; i < n; i++)
        json_object_put(lines[i]);
    unsetenv("AIPROXY_LOG_FORMAT");
}

static void text_lines_end_with_the_request_id(void **state)
{
    const char *text;

    (void)state;
    unsetenv("AIPROXY_LOG_FORMAT");
    log_init("test-text", LOG_LVL_INFO);
    assert_false(log_json());
    assert_int_equal(log_reopen(test__path), 0);
    close(open(test__path, O_WRONLY | O_TRUNC));
    log_set_request("req_XYZ");
    log_warn("something failed");
    log_set_request(NULL);
    log_warn("no request");
    log_fields(LOG_LVL_INFO, "as text", "{\"a\":1}");
    log_reopen(NULL);
    text = test__slurp();
    assert_non_null(strstr(text, " test-text["));
    assert_non_null(strstr(text, "] warn: something failed rid=req_XYZ\n"));
    assert_non_null(strstr(text, "] warn: no request\n"));
    assert_non_null(strstr(text, "] info: as text\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_lines_parse_whatever_the_message_holds),
        cmocka_unit_test(text_lines_end_with_the_request_id),
    };
    return cmocka_run_group_tests(tests, test__setup, test__teardown);
}
