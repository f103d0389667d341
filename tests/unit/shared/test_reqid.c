/* Unit tests for shared/reqid (request ids: what a client may send, what we
 * make) and the request id on the broker wire ("rid", shared/wire). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shared/reqid.h"
#include "shared/wire.h"

#include <stdlib.h>
#include <string.h>

#define ID "0123456789abcdef0123456789abcdef"

static void reqid_valid_takes_the_documented_alphabet(void **state)
{
    char longest[REQID_MAX + 1];

    (void)state;
    assert_true(reqid_valid("a"));
    assert_true(reqid_valid("req_ABCdef0123456789xyzXYZ"));
    assert_true(reqid_valid("my-id.1:2@host/x+y=z_w"));
    memset(longest, 'x', REQID_MAX);
    longest[REQID_MAX] = '\0';
    assert_true(reqid_valid(longest));
}

static void reqid_valid_refuses_anything_else(void **state)
{
    static const char *const bad[] = {
        "", "a b", "a\"b", "a\\b", "a\r\nSet-Cookie: x=1", "a\nb", "a\tb", "<script>",
        "caf\xc3\xa9", "\xff", "a,b", "a;b", "a'b", "{}", "a%20b", "a?b", "a#b", "a*b",
    };
    char toolong[REQID_MAX + 2];

    (void)state;
    assert_false(reqid_valid(NULL));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(reqid_valid(bad[i]));
    memset(toolong, 'x', REQID_MAX + 1);
    toolong[REQID_MAX + 1] = '\0';
    assert_false(reqid_valid(toolong));
}

/* "req_" + 24 of [A-Za-z0-9]. */
static void test__shape(const char *id)
{
    assert_int_equal(strlen(id), 4 + REQID_RANDOM);
    assert_memory_equal(id, "req_", 4);
    for (size_t i = 4; id[i]; i++)
        assert_true((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
                    (id[i] >= '0' && id[i] <= '9'));
    assert_true(reqid_valid(id));
}

static int test__cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void reqid_new_has_the_shape_and_never_repeats(void **state)
{
    enum { N = 5000 };
    char (*ids)[REQID_MAX + 1] = calloc(N, sizeof(*ids));

    (void)state;
    assert_non_null(ids);
    for (int i = 0; i < N; i++) {
        reqid_new(ids[i]);
        test__shape(ids[i]);
    }
    qsort(ids, N, sizeof(*ids), test__cmp);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);
}

static void reqid_take_keeps_a_good_id_and_replaces_a_bad_one(void **state)
{
    char out[REQID_MAX + 1];
    char toolong[REQID_MAX + 2];

    (void)state;
    assert_int_equal(reqid_take("client-42", out), 1);
    assert_string_equal(out, "client-42");
    assert_int_equal(reqid_take(NULL, out), 0);
    test__shape(out);
    assert_int_equal(reqid_take("bad id\r\n", out), 0);
    test__shape(out);
    memset(toolong, 'y', REQID_MAX + 1);
    toolong[REQID_MAX + 1] = '\0';
    assert_int_equal(reqid_take(toolong, out), 0);
    test__shape(out);
}

static void wire_call_carries_the_request_id(void **state)
{
    char err[160];
    wire_req_t r;
    char *t;

    (void)state;
    t = wire_req_encode_rid(WIRE_OP_CALL, ID, "reply", "demo", "add", NULL, 5, "req_abc");
    assert_non_null(t);
    assert_non_null(strstr(t, "\"rid\":\"req_abc\""));
    assert_int_equal(wire_req_decode(t, strlen(t), &r, err, sizeof(err)), 0);
    assert_string_equal(r.rid, "req_abc");
    wire_req_clear(&r);
    free(t);

    /* none, or one we would not pass on: no "rid" at all */
    t = wire_req_encode_rid(WIRE_OP_CALL, ID, "reply", "demo", "add", NULL, 5, "bad id");
    assert_non_null(t);
    assert_null(strstr(t, "rid"));
    assert_int_equal(wire_req_decode(t, strlen(t), &r, err, sizeof(err)), 0);
    assert_null(r.rid);
    wire_req_clear(&r);
    free(t);
}

static void wire_decode_drops_a_hostile_rid(void **state)
{
    static const char msg[] = "{\"v\":1,\"op\":\"call\",\"id\":\"" ID "\",\"reply\":\"r\","
                              "\"server\":\"s\",\"tool\":\"t\",\"args\":{},\"deadline\":5,"
                              "\"rid\":\"x\\ny\"}";
    char err[160];
    wire_req_t r;

    (void)state;
    assert_int_equal(wire_req_decode(msg, strlen(msg), &r, err, sizeof(err)), 0);
    assert_null(r.rid);
    wire_req_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reqid_valid_takes_the_documented_alphabet),
        cmocka_unit_test(reqid_valid_refuses_anything_else),
        cmocka_unit_test(reqid_new_has_the_shape_and_never_repeats),
        cmocka_unit_test(reqid_take_keeps_a_good_id_and_replaces_a_bad_one),
        cmocka_unit_test(wire_call_carries_the_request_id),
        cmocka_unit_test(wire_decode_drops_a_hostile_rid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
