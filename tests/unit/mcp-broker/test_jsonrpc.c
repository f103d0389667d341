/* Unit tests for mcp-broker/jsonrpc: newline framing at every split point,
 * over-long lines, and the classification of requests, notifications and
 * responses (and refusal of what is none of them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mcp-broker/jsonrpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lines {
    char got[8][128];
    int n;
} lines_t;

static int collect(void *ud, const char *line, size_t len)
{
    lines_t *l = ud;
    if (l->n < 8) {
        snprintf(l->got[l->n], sizeof(l->got[0]), "%.*s", (int)len, line);
        assert_int_equal(strlen(line), len); /* NUL-terminated at len */
    }
    l->n++;
    return 0;
}

static void frames_at_every_split_point(void **state)
{
    const char *in = "{\"a\":1}\n\r\n  \n{\"b\":2}\r\n{\"c\":3}\n{\"partial\"";
    size_t n = strlen(in);
    (void)state;
    for (size_t cut = 0; cut <= n; cut++) {
        jsonrpc_framer_t f;
        lines_t l;
        memset(&l, 0, sizeof(l));
        jsonrpc_framer_init(&f, 1024);
        assert_int_equal(jsonrpc_framer_feed(&f, in, cut, collect, &l), 0);
        assert_int_equal(jsonrpc_framer_feed(&f, in + cut, n - cut, collect, &l), 0);
        assert_int_equal(l.n, 3);
        assert_string_equal(l.got[0], "{\"a\":1}");
        assert_string_equal(l.got[1], "{\"b\":2}");
        assert_string_equal(l.got[2], "{\"c\":3}");
        jsonrpc_framer_free(&f);
    }
}

static void overlong_line_dropped_rest_kept(void **state)
{
    jsonrpc_framer_t f;
    lines_t l;
    char big[100];
    (void)state;
    memset(&l, 0, sizeof(l));
    memset(big, 'x', sizeof(big));
    jsonrpc_framer_init(&f, 16);
    assert_int_equal(jsonrpc_framer_feed(&f, "{\"ok\":1}\n", 9, collect, &l), 0);
    assert_int_equal(jsonrpc_framer_feed(&f, big, 10, collect, &l), 0);
    assert_int_equal(jsonrpc_framer_feed(&f, big, sizeof(big), collect, &l), -ENOSPC);
    assert_int_equal(jsonrpc_framer_feed(&f, "yyy\n{\"next\":2}\n", 15, collect, &l), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.got[0], "{\"ok\":1}");
    assert_string_equal(l.got[1], "{\"next\":2}");
    jsonrpc_framer_free(&f);
}

static int stop_at_first(void *ud, const char *line, size_t len)
{
    (void)line;
    (void)len;
    ++*(int *)ud;
    return 7;
}

static void callback_can_stop(void **state)
{
    jsonrpc_framer_t f;
    int calls = 0;
    (void)state;
    jsonrpc_framer_init(&f, 64);
    assert_int_equal(jsonrpc_framer_feed(&f, "a\nb\n", 4, stop_at_first, &calls), 7);
    assert_int_equal(calls, 1);
    jsonrpc_framer_free(&f);
}

static int classify(const char *text, jsonrpc_msg_t *m, json_object **keep, char *err)
{
    *keep = json_tokener_parse(text);
    return jsonrpc_classify(*keep, m, err, 128);
}

static void classifies_each_kind(void **state)
{
    jsonrpc_msg_t m;
    json_object *o;
    char err[128];
    (void)state;

    assert_int_equal(classify("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}", &m, &o, err), 0);
    assert_int_equal(m.kind, JSONRPC_REQUEST);
    assert_string_equal(m.method, "ping");
    assert_true(m.num_id == 7);
    json_object_put(o);

    assert_int_equal(classify("{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"roots/list\",\"params\":{}}", &m, &o, err), 0);
    assert_int_equal(m.kind, JSONRPC_REQUEST);
    assert_true(m.num_id == -1);
    assert_string_equal(json_object_get_string(m.id), "abc");
    assert_non_null(m.params);
    json_object_put(o);

    assert_int_equal(classify("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}", &m, &o, err), 0);
    assert_int_equal(m.kind, JSONRPC_NOTIFICATION);
    assert_null(m.id);
    json_object_put(o);

    assert_int_equal(classify("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"tools\":[]}}", &m, &o, err), 0);
    assert_int_equal(m.kind, JSONRPC_RESULT);
    assert_true(m.num_id == 3);
    assert_non_null(m.result);
    json_object_put(o);

    assert_int_equal(classify("{\"jsonrpc\":\"2.0\",\"id\":4,\"error\":{\"code\":-32602,\"message\":\"bad\"}}", &m, &o, err), 0);
    assert_int_equal(m.kind, JSONRPC_ERROR);
    assert_true(m.err_code == -32602);
    assert_string_equal(m.err_message, "bad");
    json_object_put(o);

    /* an error about a request the server could not even parse has id null */
    assert_int_equal(classify("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700}}", &m, &o, err), 0);
    assert_int_equal(m.kind, JSONRPC_ERROR);
    assert_string_equal(m.err_message, "");
    json_object_put(o);
}

static void refuses_what_is_not_jsonrpc(void **state)
{
    static const char *const bad[] = {
        "[1]",
        "{\"id\":1,\"method\":\"x\"}",
        "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"x\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"result\":{}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":{\"x\":1},\"method\":\"m\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":{}}",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        jsonrpc_msg_t m;
        json_object *o;
        char err[128] = "";
        if (classify(bad[i], &m, &o, err) != -EINVAL || !err[0])
            fail_msg("accepted: %s", bad[i]);
        json_object_put(o);
    }
    {
        jsonrpc_msg_t m;
        char err[128] = "";
        assert_int_equal(jsonrpc_classify(NULL, &m, err, sizeof(err)), -EINVAL);
    }
}

static void builders_produce_what_classify_reads(void **state)
{
    json_object *params = json_tokener_parse("{\"cursor\":\"2\"}"), *id = json_object_new_string("srv-1");
    char *req = jsonrpc_request(12, "tools/list", params);
    char *note = jsonrpc_notification("notifications/initialized", NULL);
    char *res = jsonrpc_result(id, NULL);
    char *er = jsonrpc_error(id, JSONRPC_METHOD_NOT_FOUND, "Method not found: x");
    jsonrpc_msg_t m;
    json_object *o;
    char err[128];
    (void)state;

    assert_int_equal(classify(req, &m, &o, err), 0);
    assert_int_equal(m.kind, JSONRPC_REQUEST);
    assert_true(m.num_id == 12);
    assert_string_equal(json_object_get_string(json_object_object_get(m.params, "cursor")), "2");
    json_object_put(o);
    assert_int_equal(classify(note, &m, &o, err), 0);
    assert_int_equal(m.kind, JSONRPC_NOTIFICATION);
    assert_null(m.params);
    json_object_put(o);
    assert_int_equal(classify(res, &m, &o, err), 0);
    assert_int_equal(m.kind, JSONRPC_RESULT);
    assert_string_equal(json_object_get_string(m.id), "srv-1");
    json_object_put(o);
    assert_int_equal(classify(er, &m, &o, err), 0);
    assert_int_equal(m.kind, JSONRPC_ERROR);
    assert_true(m.err_code == -32601);
    json_object_put(o);
    free(req);
    free(note);
    free(res);
    free(er);
    json_object_put(params);
    json_object_put(id);
}

/* jsonrpc_member_raw on `json`: "" when not found (or the rc otherwise). */
static int member(const char *json, const char *key, char *out, size_t n)
{
    const char *v = NULL;
    size_t vlen = 0;
    int rc = jsonrpc_member_raw(json, strlen(json), key, &v, &vlen);

    out[0] = '\0';
    if (rc == 0)
        snprintf(out, n, "%.*s", (int)vlen, v);
    return rc;
}

static void member_raw_cuts_the_value_as_written(void **state)
{
    char got[256];

    (void)state;
    assert_int_equal(member("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[{\"type\":\"text\","
                            "\"text\":\"a } ] \\\" { [ b\"}],\"n\":123456789012345678901234567890}}",
                            "result", got, sizeof got), 0);
    assert_string_equal(got, "{\"content\":[{\"type\":\"text\",\"text\":\"a } ] \\\" { [ b\"}],"
                             "\"n\":123456789012345678901234567890}");
    /* blanks around, scalars, the last of a repeated key */
    assert_int_equal(member(" { \"a\" : 1 , \"b\" : [ 1, {\"c\":[]} ] , \"a\":\"x\\\\\" }\n", "a", got, sizeof got), 0);
    assert_string_equal(got, "\"x\\\\\"");
    assert_int_equal(member("{\"a\":1,\"b\":[1,{\"c\":[]}]}", "b", got, sizeof got), 0);
    assert_string_equal(got, "[1,{\"c\":[]}]");
    assert_int_equal(member("{\"a\":true}", "a", got, sizeof got), 0);
    assert_string_equal(got, "true");
    /* a key nested deeper is not a member; none at all */
    assert_int_equal(member("{\"x\":{\"result\":{}}}", "result", got, sizeof got), -ENOENT);
    assert_int_equal(member("{}", "result", got, sizeof got), -ENOENT);
    /* not an object, cut, broken */
    assert_int_equal(member("[{\"result\":{}}]", "result", got, sizeof got), -EINVAL);
    assert_int_equal(member("{\"result\":{\"a\":1}", "result", got, sizeof got), -EINVAL);
    assert_int_equal(member("{\"result\":\"abc", "result", got, sizeof got), -EINVAL);
    assert_int_equal(member("{\"result\" {}}", "result", got, sizeof got), -EINVAL);
    assert_int_equal(member("{\"result\":}", "result", got, sizeof got), -EINVAL);
    assert_int_equal(member("", "result", got, sizeof got), -EINVAL);
}

/* The escaper writes what json-c writes for the same string, so a line
 * built with it reads back as the string it was given. */
static void put_str_writes_what_json_c_writes(void **state)
{
    static const char *const cases[] = {
        "", "echo", "a\"b\\c", "tab\there\nnl\rcr\bbs\fff", "\x01\x1f ctl", "a/b", "caf\xc3\xa9 \xe2\x82\xac",
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf_t b;
        json_object *o = json_object_new_string(cases[i]), *back;

        buf_init(&b, 1024);
        assert_int_equal(buf_json_str(&b, cases[i], strlen(cases[i])), 0);
        assert_string_equal(buf_str(&b), json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
        back = json_tokener_parse(buf_str(&b));
        assert_non_null(back);
        assert_string_equal(json_object_get_string(back), cases[i]);
        json_object_put(back);
        json_object_put(o);
        buf_free(&b);
    }
}

/* jsonrpc_scan_result takes the common call answer without a tree, and
 * leaves everything else (and anything it cannot vouch for) to the parse. */
static void scan_result_takes_only_the_plain_answer(void **state)
{
    static const char ok[] = " {\"jsonrpc\":\"2.0\", \"id\":42,\"result\":{\"content\":[{\"type\":"
                             "\"text\",\"text\":\"a\\\"b \\u00e9 \xc3\xa9\"}],\"isError\":true}} ";
    static const char *left[] = {
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-1,\"message\":\"x\"}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":\"1\",\"result\":{}}",          /* a string id */
        "{\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1.0,\"result\":{}}",
        "{\"jsonrpc\":\"2.0\",\"id\":-3,\"result\":{}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1234567890123456789,\"result\":{}}",
        "{\"jsonrpc\":\"1.0\",\"id\":1,\"result\":{}}",
        "{\"id\":1,\"result\":{}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":[]}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"isError\":1}}",   /* json-c decides */
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"x\":\"\\u00e9\"}}", /* escape at its top */
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"x\":NaN}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"x\":01}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}} x",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}",
        "[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}]",
        "",
    };
    const char *res = NULL;
    size_t rlen = 0;
    int64_t id = 0;
    int is_error = -1;

    (void)state;
    assert_int_equal(jsonrpc_scan_result(ok, sizeof(ok) - 1, &id, &res, &rlen, &is_error), 0);
    assert_int_equal(id, 42);
    assert_int_equal(is_error, 1);
    assert_int_equal(rlen, strlen(strstr(ok, "{\"content")) - 2);    /* "} " after it */
    assert_memory_equal(res, strstr(ok, "{\"content"), rlen);
    assert_int_equal(jsonrpc_scan_result("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}", 36, &id,
                                         &res, &rlen, &is_error), 0);
    assert_int_equal(id, 7);
    assert_int_equal(is_error, 0);
    assert_int_equal(rlen, 2);
    for (size_t i = 0; i < sizeof(left) / sizeof(left[0]); i++)
        assert_int_equal(jsonrpc_scan_result(left[i], strlen(left[i]), &id, &res, &rlen, &is_error), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frames_at_every_split_point),
        cmocka_unit_test(overlong_line_dropped_rest_kept),
        cmocka_unit_test(callback_can_stop),
        cmocka_unit_test(classifies_each_kind),
        cmocka_unit_test(refuses_what_is_not_jsonrpc),
        cmocka_unit_test(builders_produce_what_classify_reads),
        cmocka_unit_test(member_raw_cuts_the_value_as_written),
        cmocka_unit_test(put_str_writes_what_json_c_writes),
        cmocka_unit_test(scan_result_takes_only_the_plain_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
