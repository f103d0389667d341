/* Unit tests for shared/wire: the responder ↔ broker messages round-trip, and
 * every malformed message is refused with an error naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shared/wire.h"
#include "shared/wire_scan.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID "0123456789abcdef0123456789ABCDEF"

static void call_round_trips(void **state)
{
    json_object *args = json_tokener_parse("{\"a\":2,\"b\":3,\"s\":\"x\\\"y\"}");
    char *t = wire_req_encode(WIRE_OP_CALL, ID, "aiproxy:mcp:reply:h:1:2", "demo", "add", args,
                              1790000000123LL);
    wire_req_t r;
    char err[128];
    (void)state;
    assert_non_null(t);
    assert_int_equal(wire_req_decode(t, strlen(t), &r, err, sizeof(err)), 0);
    assert_int_equal(r.op, WIRE_OP_CALL);
    assert_string_equal(r.id, ID);
    assert_string_equal(r.reply, "aiproxy:mcp:reply:h:1:2");
    assert_string_equal(r.server, "demo");
    assert_string_equal(r.tool, "add");
    assert_int_equal(json_object_get_int(json_object_object_get(r.args, "b")), 3);
    assert_string_equal(json_object_get_string(json_object_object_get(r.args, "s")), "x\"y");
    assert_true(r.deadline == 1790000000123LL);
    wire_req_clear(&r);
    assert_null(r.root);
    free(t);
    json_object_put(args);
}

static void start_round_trips_without_tool(void **state)
{
    char *t = wire_req_encode(WIRE_OP_START, ID, "r", "demo", NULL, NULL, 5);
    wire_req_t r;
    char err[128];
    (void)state;
    assert_non_null(t);
    assert_null(strstr(t, "\"tool\""));
    assert_int_equal(wire_req_decode(t, strlen(t), &r, err, sizeof(err)), 0);
    assert_int_equal(r.op, WIRE_OP_START);
    assert_null(r.tool);
    wire_req_clear(&r);
    free(t);
}

/* The responder's "I gave up on this call": the call's id, no tool, no args;
 * an unknown op is still refused. */
static void cancel_round_trips(void **state)
{
    char *t = wire_req_encode(WIRE_OP_CANCEL, ID, "r", "demo", "ignored", NULL, 7);
    wire_req_t r;
    char err[128];
    (void)state;
    assert_non_null(t);
    assert_non_null(strstr(t, "\"op\":\"cancel\""));
    assert_null(strstr(t, "\"tool\""));
    assert_int_equal(wire_req_decode(t, strlen(t), &r, err, sizeof(err)), 0);
    assert_int_equal(r.op, WIRE_OP_CANCEL);
    assert_string_equal(r.id, ID);
    assert_string_equal(r.server, "demo");
    assert_null(r.tool);
    assert_null(r.args);
    assert_int_equal(r.deadline, 7);
    wire_req_clear(&r);
    free(t);
    t = "{\"v\":1,\"op\":\"abort\",\"id\":\"" ID "\",\"reply\":\"r\",\"server\":\"s\",\"deadline\":9}";
    assert_int_equal(wire_req_decode(t, strlen(t), &r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "cancel"));
    assert_null(wire_req_encode((enum wire_op)9, ID, "r", "s", NULL, NULL, 1));
}

static void call_without_args_gets_empty_object(void **state)
{
    const char *t = "{\"v\":1,\"op\":\"call\",\"id\":\"" ID "\",\"reply\":\"r\",\"server\":\"s\","
                    "\"tool\":\"t\",\"deadline\":9}";
    wire_req_t r;
    char err[128];
    (void)state;
    assert_int_equal(wire_req_decode(t, strlen(t), &r, err, sizeof(err)), 0);
    assert_non_null(r.args);
    assert_true(json_object_is_type(r.args, json_type_object));
    assert_int_equal(json_object_object_length(r.args), 0);
    wire_req_clear(&r);
}

static void encode_refuses_bad_arguments(void **state)
{
    (void)state;
    assert_null(wire_req_encode(WIRE_OP_CALL, "short", "r", "s", "t", NULL, 1));
    assert_null(wire_req_encode(WIRE_OP_CALL, ID, "", "s", "t", NULL, 1));
    assert_null(wire_req_encode(WIRE_OP_CALL, ID, "r", "", "t", NULL, 1));
    assert_null(wire_req_encode(WIRE_OP_CALL, ID, "r", "s", NULL, NULL, 1));
    assert_null(wire_req_encode((enum wire_op)7, ID, "r", "s", "t", NULL, 1));
}

static void malformed_requests_name_the_field(void **state)
{
    static const struct { const char *text, *field; } cases[] = {
        {"", "empty"},
        {"not json", "not valid JSON"},
        {"[1,2]", "not a JSON object"},
        {"{\"v\":1} trailing", "not valid JSON"},
        {"{\"op\":\"call\"}", "v:"},
        {"{\"v\":2,\"op\":\"call\"}", "v:"},
        {"{\"v\":1,\"op\":\"jump\"}", "op:"},
        {"{\"v\":1,\"op\":\"call\",\"id\":\"xyz\"}", "id:"},
        {"{\"v\":1,\"op\":\"call\",\"id\":\"0123456789abcdef0123456789abcdeg\"}", "id:"},
        {"{\"v\":1,\"op\":\"call\",\"id\":\"" ID "\"}", "reply:"},
        {"{\"v\":1,\"op\":\"call\",\"id\":\"" ID "\",\"reply\":\"r\"}", "server:"},
        {"{\"v\":1,\"op\":\"call\",\"id\":\"" ID "\",\"reply\":\"r\",\"server\":\"s\"}", "deadline:"},
        {"{\"v\":1,\"op\":\"call\",\"id\":\"" ID "\",\"reply\":\"r\",\"server\":\"s\",\"deadline\":-4}", "deadline:"},
        {"{\"v\":1,\"op\":\"call\",\"id\":\"" ID "\",\"reply\":\"r\",\"server\":\"s\",\"deadline\":4}", "tool:"},
        {"{\"v\":1,\"op\":\"call\",\"id\":\"" ID "\",\"reply\":\"r\",\"server\":\"s\",\"deadline\":4,"
         "\"tool\":\"t\",\"args\":[1]}", "args:"},
        {"{\"v\":1,\"op\":\"call\",\"id\":\"" ID "\",\"reply\":\"r\",\"server\":7,\"deadline\":4}", "server:"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        wire_req_t r;
        char err[128] = "";
        int rc = wire_req_decode(cases[i].text, strlen(cases[i].text), &r, err, sizeof(err));
        if (rc != -EINVAL || !strstr(err, cases[i].field))
            fail_msg("case %zu (%s): rc %d err '%s', wanted '%s'", i, cases[i].text, rc, err, cases[i].field);
        assert_null(r.root);
    }
}

static void oversized_message_refused(void **state)
{
    wire_req_t r;
    char err[128] = "";
    (void)state;
    assert_int_equal(wire_req_decode("{}", (size_t)WIRE_MAX_MSG + 1, &r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "too large"));
}

/* Integers past 64 bits reach the MCP server as written, both ways (json-c
 * alone sent 18446744073709551615). */
static void big_integers_cross_as_written(void **state)
{
    const char *req = "{\"v\":1,\"op\":\"call\",\"id\":\"" ID "\",\"reply\":\"r\","
                      "\"server\":\"s\",\"tool\":\"t\",\"deadline\":10,"
                      "\"args\":{\"a\":100000000000000000000000,\"b\":-100000000000000000000000}}";
    const char *rep = "{\"id\":\"" ID "\",\"ok\":true,"
                      "\"result\":{\"structuredContent\":{\"n\":99999999999999999999999}}}";
    wire_req_t r;
    wire_reply_t p;
    char err[128], *t;
    (void)state;
    assert_int_equal(wire_req_decode(req, strlen(req), &r, err, sizeof(err)), 0);
    t = wire_req_encode(r.op, r.id, r.reply, r.server, r.tool, r.args, r.deadline);
    assert_non_null(strstr(t, "{\"a\":100000000000000000000000,\"b\":-100000000000000000000000}"));
    free(t);
    wire_req_clear(&r);
    assert_int_equal(wire_reply_decode(rep, strlen(rep), &p, err, sizeof(err)), 0);
    t = wire_reply_result(p.id, p.result);
    assert_non_null(strstr(t, "{\"n\":99999999999999999999999}"));
    free(t);
    wire_reply_clear(&p);
}

/* The raw result reply decodes as the re-serialised one does, big
 * integers and escapes as written. */
static void raw_result_reply(void **state)
{
    const char *raw = "{ \"content\": [{\"type\":\"text\",\"text\":\"a\\\"b\"}], \"n\": 123456789012345678901234567890 }";
    char *t = wire_reply_result_raw(ID, raw, strlen(raw));
    wire_reply_t r;
    char err[128];
    json_object *n = NULL;

    (void)state;
    assert_non_null(t);
    assert_non_null(strstr(t, raw));
    assert_int_equal(wire_reply_decode(t, strlen(t), &r, err, sizeof(err)), 0);
    assert_true(r.ok);
    assert_string_equal(r.id, ID);
    assert_non_null(r.result);
    assert_true(json_object_object_get_ex(r.result, "n", &n));
    assert_string_equal(json_object_get_string(json_object_array_get_idx(
                            json_object_object_get(r.result, "content"), 0) ? json_object_object_get(
                            json_object_array_get_idx(json_object_object_get(r.result, "content"), 0), "text") : NULL),
                        "a\"b");
    wire_reply_clear(&r);
    free(t);
    /* not an object, a bad id: refused (the caller re-serialises) */
    assert_null(wire_reply_result_raw(ID, "[1]", 3));
    assert_null(wire_reply_result_raw("nothex", "{}", 2));
    assert_null(wire_reply_result_raw(ID, "{}", 0));
}

static void replies_round_trip(void **state)
{
    json_object *res = json_tokener_parse("{\"content\":[{\"type\":\"text\",\"text\":\"5\"}]}");
    json_object *tools = json_tokener_parse("[{\"name\":\"add\"}]");
    char *a = wire_reply_result(ID, res), *b = wire_reply_tools(ID, tools), *c = wire_reply_error(ID, "it \"broke\"");
    wire_reply_t r;
    char err[128];
    (void)state;
    assert_int_equal(wire_reply_decode(a, strlen(a), &r, err, sizeof(err)), 0);
    assert_true(r.ok);
    assert_non_null(r.result);
    assert_null(r.tools);
    wire_reply_clear(&r);
    assert_int_equal(wire_reply_decode(b, strlen(b), &r, err, sizeof(err)), 0);
    assert_true(r.ok);
    assert_int_equal(json_object_array_length(r.tools), 1);
    wire_reply_clear(&r);
    assert_int_equal(wire_reply_decode(c, strlen(c), &r, err, sizeof(err)), 0);
    assert_false(r.ok);
    assert_string_equal(r.error, "it \"broke\"");
    assert_string_equal(r.id, ID);
    wire_reply_clear(&r);
    free(a);
    free(b);
    free(c);
    json_object_put(res);
    json_object_put(tools);
}

static void malformed_replies_refused(void **state)
{
    static const char *const bad[] = {
        "{\"id\":\"x\",\"ok\":true,\"result\":{}}",
        "{\"id\":\"" ID "\",\"result\":{}}",
        "{\"id\":\"" ID "\",\"ok\":1,\"result\":{}}",
        "{\"id\":\"" ID "\",\"ok\":true}",
        "{\"id\":\"" ID "\",\"ok\":true,\"result\":[]}",
        "{\"id\":\"" ID "\",\"ok\":false}",
        "{\"id\":\"" ID "\",\"ok\":false,\"error\":{}}",
        "nope",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wire_reply_t r;
        char err[128] = "";
        if (wire_reply_decode(bad[i], strlen(bad[i]), &r, err, sizeof(err)) != -EINVAL || !err[0])
            fail_msg("reply case %zu accepted: %s", i, bad[i]);
        assert_null(r.root);
    }
}

/* A progress report round-trips; optional fields stay out when absent; the
 * message is capped; and it is never taken for a final answer. */
static void progress_round_trips(void **state)
{
    char *a = wire_reply_progress(ID, 3, 30, "step 3 of 30", 10000);
    char *b = wire_reply_progress(ID, 0.5, -1, NULL, -5);
    char *big = malloc(CAP_WIRE_PROGRESS_TEXT * 2 + 1), *c;
    wire_reply_t r;
    char err[128];
    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, "{\"id\":\"" ID "\",\"progress\":{\"progress\":3,\"total\":30,"
                           "\"message\":\"step 3 of 30\"},\"left_ms\":10000}");
    assert_int_equal(wire_reply_decode(a, strlen(a), &r, err, sizeof(err)), 0);
    assert_true(r.is_progress);
    assert_false(r.ok);
    assert_null(r.result);
    assert_null(r.tools);
    assert_null(r.error);
    assert_string_equal(r.id, ID);
    assert_true(r.progress == 3 && r.total == 30 && r.left_ms == 10000);
    assert_string_equal(r.message, "step 3 of 30");
    wire_reply_clear(&r);
    assert_null(strstr(b, "total"));
    assert_null(strstr(b, "message"));
    assert_int_equal(wire_reply_decode(b, strlen(b), &r, err, sizeof(err)), 0);
    assert_true(r.is_progress && r.progress == 0.5 && r.total < 0 && r.left_ms == 0);
    assert_null(r.message);
    wire_reply_clear(&r);
    /* final replies are not progress */
    {
        char *e = wire_reply_error(ID, "x");
        assert_int_equal(wire_reply_decode(e, strlen(e), &r, err, sizeof(err)), 0);
        assert_false(r.is_progress);
        wire_reply_clear(&r);
        free(e);
    }
    assert_non_null(big);
    memset(big, 'x', CAP_WIRE_PROGRESS_TEXT * 2);
    big[CAP_WIRE_PROGRESS_TEXT * 2] = 0;
    c = wire_reply_progress(ID, 1, -1, big, 1);
    assert_int_equal(wire_reply_decode(c, strlen(c), &r, err, sizeof(err)), 0);
    assert_int_equal(strlen(r.message), CAP_WIRE_PROGRESS_TEXT);
    wire_reply_clear(&r);
    /* bad arguments */
    assert_null(wire_reply_progress("nope", 1, 1, NULL, 1));
    assert_null(wire_reply_progress(ID, NAN, 1, NULL, 1));
    free(a);
    free(b);
    free(c);
    free(big);
}

/* A responder that predates progress reports drops them: they carry no
 * "ok", which every final reply has. And malformed reports are refused. */
static void malformed_progress_refused(void **state)
{
    static const char *const bad[] = {
        "{\"id\":\"" ID "\",\"progress\":{},\"left_ms\":1}",
        "{\"id\":\"" ID "\",\"progress\":{\"progress\":\"1\"},\"left_ms\":1}",
        "{\"id\":\"" ID "\",\"progress\":{\"progress\":1,\"total\":\"x\"},\"left_ms\":1}",
        "{\"id\":\"" ID "\",\"progress\":{\"progress\":1,\"message\":7},\"left_ms\":1}",
        "{\"id\":\"" ID "\",\"progress\":{\"progress\":1}}",
        "{\"id\":\"" ID "\",\"progress\":{\"progress\":1},\"left_ms\":-1}",
        "{\"id\":\"x\",\"progress\":{\"progress\":1},\"left_ms\":1}",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wire_reply_t r;
        char err[128] = "";
        if (wire_reply_decode(bad[i], strlen(bad[i]), &r, err, sizeof(err)) != -EINVAL || !err[0])
            fail_msg("progress case %zu accepted: %s", i, bad[i]);
        assert_null(r.root);
    }
}

/* A server's sampling/createMessage crosses to the responder on the call's
 * reply channel (sid + params) and the answer comes back as op "sampled". */
static void sampling_round_trips(void **state)
{
    json_object *params = json_tokener_parse("{\"messages\":[],\"maxTokens\":5}");
    json_object *res = json_tokener_parse("{\"role\":\"assistant\",\"model\":\"m\"}");
    char *t = wire_reply_sampling(ID, 7, params);
    wire_reply_t rep;
    wire_req_t r;
    char err[160];
    (void)state;
    assert_non_null(t);
    assert_int_equal(wire_reply_decode(t, strlen(t), &rep, err, sizeof(err)), 0);
    assert_true(rep.is_sampling);
    assert_false(rep.is_progress);
    assert_int_equal(rep.sid, 7);
    assert_int_equal(json_object_get_int(json_object_object_get(rep.params, "maxTokens")), 5);
    wire_reply_clear(&rep);
    free(t);
    t = wire_req_sampled(ID, "r", "demo", 9, 7, res, NULL);
    assert_non_null(t);
    assert_int_equal(wire_req_decode(t, strlen(t), &r, err, sizeof(err)), 0);
    assert_int_equal(r.op, WIRE_OP_SAMPLED);
    assert_int_equal(r.sid, 7);
    assert_string_equal(json_object_get_string(json_object_object_get(r.result, "model")), "m");
    assert_null(r.error);
    wire_req_clear(&r);
    free(t);
    t = wire_req_sampled(ID, "r", "demo", 9, 8, NULL, "sampling is not allowed");
    assert_non_null(t);
    assert_int_equal(wire_req_decode(t, strlen(t), &r, err, sizeof(err)), 0);
    assert_null(r.result);
    assert_string_equal(r.error, "sampling is not allowed");
    wire_req_clear(&r);
    free(t);
    /* bad arguments: no sid, both or neither answer, params not an object */
    assert_null(wire_req_sampled(ID, "r", "demo", 9, 0, res, NULL));
    assert_null(wire_req_sampled(ID, "r", "demo", 9, 1, res, "x"));
    assert_null(wire_req_sampled(ID, "r", "demo", 9, 1, NULL, NULL));
    assert_null(wire_reply_sampling(ID, 0, params));
    assert_null(wire_reply_sampling(ID, 1, NULL));
    json_object_put(params);
    json_object_put(res);
}

static void malformed_sampling_refused(void **state)
{
    static const char *const bad_replies[] = {
        "{\"id\":\"" ID "\",\"sampling\":{\"params\":{}}}",
        "{\"id\":\"" ID "\",\"sampling\":{\"sid\":0,\"params\":{}}}",
        "{\"id\":\"" ID "\",\"sampling\":{\"sid\":1,\"params\":[]}}",
        "{\"id\":\"" ID "\",\"sampling\":{\"sid\":\"1\",\"params\":{}}}",
    };
    static const char *const bad_reqs[] = {
        "{\"v\":1,\"op\":\"sampled\",\"id\":\"" ID "\",\"reply\":\"r\",\"server\":\"s\",\"deadline\":9,\"result\":{}}",
        "{\"v\":1,\"op\":\"sampled\",\"id\":\"" ID "\",\"reply\":\"r\",\"server\":\"s\",\"deadline\":9,\"sid\":1}",
        "{\"v\":1,\"op\":\"sampled\",\"id\":\"" ID "\",\"reply\":\"r\",\"server\":\"s\",\"deadline\":9,\"sid\":1,\"result\":{},\"error\":\"x\"}",
        "{\"v\":1,\"op\":\"sampled\",\"id\":\"" ID "\",\"reply\":\"r\",\"server\":\"s\",\"deadline\":9,\"sid\":1,\"result\":\"text\"}",
    };
    wire_reply_t rep;
    wire_req_t r;
    char err[160];
    (void)state;
    for (size_t i = 0; i < sizeof(bad_replies) / sizeof(bad_replies[0]); i++) {
        assert_int_equal(wire_reply_decode(bad_replies[i], strlen(bad_replies[i]), &rep, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "sampling"));
    }
    for (size_t i = 0; i < sizeof(bad_reqs) / sizeof(bad_reqs[0]); i++)
        assert_int_equal(wire_req_decode(bad_reqs[i], strlen(bad_reqs[i]), &r, err, sizeof(err)), -EINVAL);
}

static void id_validation(void **state)
{
    (void)state;
    assert_true(wire_id_valid(ID));
    assert_false(wire_id_valid(NULL));
    assert_false(wire_id_valid(""));
    assert_false(wire_id_valid(ID "0"));
    assert_false(wire_id_valid("0123456789abcdef0123456789abcde"));
}

/* "tp", the call's traceparent: added after encoding, read back; a value
 * that would need escaping is not added; absent, tp is NULL. */
static void traceparent_rides_along(void **state)
{
    static const char tp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    char *t = wire_req_encode(WIRE_OP_CALL, ID, "r", "demo", "add", NULL, 5), *same;
    wire_req_t r;
    char err[128];

    (void)state;
    assert_non_null(t);
    assert_int_equal(wire_req_decode(t, strlen(t), &r, err, sizeof(err)), 0);
    assert_null(r.tp);
    wire_req_clear(&r);
    same = t;
    t = wire_req_with(t, "tp", "bad\"value");
    assert_ptr_equal(t, same);
    t = wire_req_with(t, "tp", tp);
    assert_non_null(t);
    assert_int_equal(wire_req_decode(t, strlen(t), &r, err, sizeof(err)), 0);
    assert_string_equal(r.tp, tp);
    assert_string_equal(r.tool, "add");
    wire_req_clear(&r);
    free(t);
}

/* The one-pass reading of a call (wire_scan_call) gives what the full
 * parse gives, and leaves to it whatever it does not read exactly so. */
static void scanned_call_matches_the_full_parse(void **state)
{
    static const char *const same[] = {
        "{\"v\":1,\"op\":\"call\",\"id\":\"0123456789abcdef0123456789ABCDEF\",\"reply\":\"r:1\","
        "\"server\":\"demo\",\"tool\":\"echo\",\"args\":{\"text\":\"a\\\"b \\u00e9\",\"n\":[1,-2.5e3,true,null,{}],"
        "\"big\":123456789012345678901234567890},\"deadline\":1765156000000,"
        "\"rid\":\"req_Fp8L5kDbAPTFBzgWToMQWVyy\",\"tp\":\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"}",
        " { \"deadline\" : 5 , \"tool\":\"t\",\"server\":\"s\",\"reply\":\"x\",\"id\":\"0123456789abcdef0123456789abcdef\","
        "\"op\":\"call\",\"v\":1,\"extra\":[\"y\",{\"z\":false}]}\n",
        /* a repeated key: the last, as json-c */
        "{\"v\":1,\"op\":\"call\",\"id\":\"0123456789abcdef0123456789abcdef\",\"reply\":\"r\",\"server\":\"a\","
        "\"server\":\"b\",\"tool\":\"t\",\"args\":{},\"deadline\":7,\"rid\":\"bad rid\"}",
    };
    static const char *const left[] = {
        /* escapes, other ops, wrong types, bad JSON: the full parse decides */
        "{\"v\":1,\"op\":\"call\",\"id\":\"0123456789abcdef0123456789abcdef\",\"reply\":\"r\",\"server\":\"d\\u0065mo\",\"tool\":\"t\",\"deadline\":7}",
        "{\"v\":1,\"op\":\"start\",\"id\":\"0123456789abcdef0123456789abcdef\",\"reply\":\"r\",\"server\":\"s\",\"deadline\":7}",
        "{\"v\":1,\"op\":\"call\",\"id\":\"0123456789abcdef0123456789abcdef\",\"reply\":\"r\",\"server\":\"s\",\"tool\":\"t\",\"args\":[],\"deadline\":7}",
        "{\"v\":1,\"op\":\"call\",\"id\":\"0123456789abcdef0123456789abcdef\",\"reply\":\"r\",\"server\":\"s\",\"tool\":\"t\",\"deadline\":7.0}",
        "{\"v\":1,\"op\":\"call\",\"id\":\"0123456789abcdef0123456789abcdef\",\"reply\":\"r\",\"server\":\"s\",\"tool\":\"t\",\"deadline\":7,\"x\":01}",
        "{\"v\":1,\"op\":\"call\",\"id\":\"0123456789abcdef0123456789abcdef\",\"reply\":\"r\",\"server\":\"s\",\"tool\":\"t\",\"deadline\":7} x",
        "{\"v\":1,\"op\":\"call\",\"id\":\"0123456789abcdef0123456789abcdeg\",\"reply\":\"r\",\"server\":\"s\",\"tool\":\"t\",\"deadline\":7}",
        "{\"v\":1,\"op\":\"call\",\"id\":\"0123456789abcdef0123456789abcdef\",\"reply\":\"\",\"server\":\"s\",\"tool\":\"t\",\"deadline\":7}",
        "{\"v\":1,\"op\":\"call\",\"id\":\"0123456789abcdef0123456789abcdef\",\"reply\":\"r\",\"server\":\"s\",\"tool\":\"t\",\"args\":{\"a\":tru},\"deadline\":7}",
        "{\"v\":2,\"op\":\"call\",\"id\":\"0123456789abcdef0123456789abcdef\",\"reply\":\"r\",\"server\":\"s\",\"tool\":\"t\",\"deadline\":7}",
        "{\"v\":1,\"op\":\"call\",\"id\":\"0123456789abcdef0123456789abcdef\",\"reply\":\"r\",\"server\":\"s\",\"tool\":\"t\",\"deadline\":0}",
        "{\"v\":1,\"op\":\"call\",\"id\":\"0123456789abcdef0123456789abcdef\",\"reply\":\"r\",\"server\":\"caf\xc3\xa9\",\"tool\":\"t\",\"deadline\":7}",
        "{}", "", "[1]", "{\"v\":1,",
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        wire_req_t fast, full;
        json_object *slow;
        assert_int_equal(wire_scan_call(same[i], strlen(same[i]), &fast), 0);
        assert_int_equal(wire_req_decode(same[i], strlen(same[i]), &full, err, sizeof err), 0);
        assert_non_null(fast.own);
        assert_int_equal(fast.op, WIRE_OP_CALL);
        assert_string_equal(fast.id, full.id);
        assert_string_equal(fast.reply, full.reply);
        assert_string_equal(fast.server, full.server);
        assert_string_equal(fast.tool, full.tool);
        assert_int_equal(fast.deadline, full.deadline);
        assert_true((fast.rid == NULL) == (full.rid == NULL));
        if (fast.rid)
            assert_string_equal(fast.rid, full.rid);
        assert_true((fast.tp == NULL) == (full.tp == NULL));
        if (fast.tp)
            assert_string_equal(fast.tp, full.tp);
        assert_string_equal(json_object_to_json_string_ext(fast.args, JSON_C_TO_STRING_PLAIN),
                            json_object_to_json_string_ext(full.args, JSON_C_TO_STRING_PLAIN));
        /* wire_req_decode itself takes the fast path: compare with a tree */
        slow = json_tokener_parse(same[i]);
        assert_non_null(slow);
        json_object_put(slow);
        wire_req_clear(&fast);
        wire_req_clear(&full);
    }
    for (size_t i = 0; i < sizeof left / sizeof left[0]; i++) {
        wire_req_t fast;
        assert_int_equal(wire_scan_call(left[i], strlen(left[i]), &fast), 1);
        assert_null(fast.own);
        assert_null(fast.root);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(call_round_trips),
        cmocka_unit_test(start_round_trips_without_tool),
        cmocka_unit_test(cancel_round_trips),
        cmocka_unit_test(call_without_args_gets_empty_object),
        cmocka_unit_test(big_integers_cross_as_written),
        cmocka_unit_test(encode_refuses_bad_arguments),
        cmocka_unit_test(malformed_requests_name_the_field),
        cmocka_unit_test(oversized_message_refused),
        cmocka_unit_test(replies_round_trip),
        cmocka_unit_test(raw_result_reply),
        cmocka_unit_test(malformed_replies_refused),
        cmocka_unit_test(progress_round_trips),
        cmocka_unit_test(malformed_progress_refused),
        cmocka_unit_test(sampling_round_trips),
        cmocka_unit_test(malformed_sampling_refused),
        cmocka_unit_test(id_validation),
        cmocka_unit_test(traceparent_rides_along),
        cmocka_unit_test(scanned_call_matches_the_full_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
