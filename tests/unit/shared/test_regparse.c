/* The registry protocol without I/O (reg_parse_version, reg_parse_snapshot,
 * reg_parse_script_reply, reg_seed_cmd_build): canned RESP answers, turned
 * into replies by hiredis's own reader, exactly as both the blocking
 * responder path and the broker's async path receive them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "shared/reg.h"

/* One reply from RESP text (owned by the caller: freeReplyObject). */
static redisReply *resp(const char *text)
{
    redisReader *rd = redisReaderCreate();
    void *rep = NULL;

    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, text, strlen(text)), REDIS_OK);
    assert_int_equal(redisReaderGetReply(rd, &rep), REDIS_OK);
    assert_non_null(rep);
    redisReaderFree(rd);
    return rep;
}

static void test_keys(void **state)
{
    reg_keys_t k;
    char longp[200];

    (void)state;
    assert_int_equal(reg_keys_init(&k, "p:"), 0);
    assert_string_equal(k.version, "p:reg:version");
    assert_string_equal(k.mcp_servers, "p:reg:mcp_servers");
    assert_string_equal(k.changed, "p:reg:changed");
    memset(longp, 'x', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    assert_int_equal(reg_keys_init(&k, longp), -EINVAL);
}

static void test_version(void **state)
{
    reg_keys_t k;
    char err[256] = "";
    long long v = 0;
    redisReply *r;

    (void)state;
    reg_keys_init(&k, "p:");
    r = resp("$2\r\n42\r\n");
    assert_int_equal(reg_parse_version(r, &k, &v, err, sizeof err), 1);
    assert_int_equal(v, 42);
    freeReplyObject(r);
    r = resp("$-1\r\n");
    assert_int_equal(reg_parse_version(r, &k, &v, err, sizeof err), 0);
    freeReplyObject(r);
    r = resp("$3\r\nabc\r\n");
    assert_int_equal(reg_parse_version(r, &k, &v, err, sizeof err), -EIO);
    assert_non_null(strstr(err, "p:reg:version holds 'abc'"));
    freeReplyObject(r);
    r = resp("-WRONGTYPE nope\r\n");
    assert_int_equal(reg_parse_version(r, &k, &v, err, sizeof err), -EIO);
    assert_non_null(strstr(err, "WRONGTYPE"));
    freeReplyObject(r);
}

static void test_snapshot_cmds(void **state)
{
    reg_keys_t k;
    const char *argv[2];
    int argc;

    (void)state;
    reg_keys_init(&k, "p:");
    reg_snapshot_cmd(&k, 0, &argc, argv);
    assert_int_equal(argc, 2);
    assert_string_equal(argv[0], "GET");
    assert_string_equal(argv[1], "p:reg:version");
    reg_snapshot_cmd(&k, 3, &argc, argv);
    assert_string_equal(argv[0], "HGETALL");
    assert_string_equal(argv[1], "p:reg:mcp_servers");
    reg_snapshot_cmd(&k, REG_SNAPSHOT_CMDS - 1, &argc, argv);
    assert_string_equal(argv[1], "p:reg:settings");
}

static void test_snapshot(void **state)
{
    reg_keys_t k;
    char err[256] = "";
    long long v = 0;
    json_object *doc = NULL, *o;
    /* version 7; one assistant; one bad backend entry (skipped); one MCP
     * server; settings that are not JSON (replaced by the defaults) */
    redisReply *r = resp("*5\r\n"
                         "$1\r\n7\r\n"
                         "*2\r\n$1\r\na\r\n$13\r\n{\"backend\":1}\r\n"
                         "*2\r\n$1\r\nb\r\n$3\r\n[1]\r\n"
                         "*2\r\n$4\r\ndemo\r\n$21\r\n{\"transport\":\"stdio\"}\r\n"
                         "$3\r\nbad\r\n");

    (void)state;
    reg_keys_init(&k, "p:");
    assert_int_equal(reg_parse_snapshot(r, &k, &doc, &v, err, sizeof err), 0);
    assert_int_equal(v, 7);
    assert_non_null(doc);
    assert_true(json_object_object_get_ex(doc, "assistants", &o));
    assert_true(json_object_object_get_ex(o, "a", &o));
    assert_true(json_object_object_get_ex(doc, "backends", &o));
    assert_int_equal(json_object_object_length(o), 0);
    assert_true(json_object_object_get_ex(doc, "mcp_servers", &o));
    assert_true(json_object_object_get_ex(o, "demo", &o));
    assert_string_equal(json_object_get_string(json_object_object_get(o, "transport")), "stdio");
    assert_true(json_object_object_get_ex(doc, "settings", &o));
    assert_true(json_object_object_get_ex(o, "proxy_api_keys", NULL));
    json_object_put(doc);
    freeReplyObject(r);
}

static void test_snapshot_missing_and_bad(void **state)
{
    reg_keys_t k;
    char err[256] = "";
    long long v = 5;
    json_object *doc = NULL;
    redisReply *r;

    (void)state;
    reg_keys_init(&k, "p:");
    /* no version key: no registry */
    r = resp("*5\r\n$-1\r\n*0\r\n*0\r\n*0\r\n$-1\r\n");
    assert_int_equal(reg_parse_snapshot(r, &k, &doc, &v, err, sizeof err), -ENOENT);
    assert_null(doc);
    assert_int_equal(v, 5);
    assert_non_null(strstr(err, "no registry (key p:reg:version is missing)"));
    freeReplyObject(r);
    /* EXEC aborted, or an error */
    r = resp("*-1\r\n");
    assert_int_equal(reg_parse_snapshot(r, &k, &doc, &v, err, sizeof err), -EIO);
    assert_null(doc);
    freeReplyObject(r);
    r = resp("-EXECABORT Transaction discarded\r\n");
    assert_int_equal(reg_parse_snapshot(r, &k, &doc, &v, err, sizeof err), -EIO);
    assert_non_null(strstr(err, "EXECABORT"));
    freeReplyObject(r);
}

static void test_empty_doc(void **state)
{
    json_object *d = reg_empty_doc(), *o;

    (void)state;
    assert_non_null(d);
    assert_true(json_object_object_get_ex(d, "mcp_servers", &o));
    assert_int_equal(json_object_object_length(o), 0);
    json_object_put(d);
}

static void test_seed_cmd_and_reply(void **state)
{
    reg_keys_t k;
    reg_seed_cmd_t cmd;
    json_object *doc = json_tokener_parse("{\"mcp_servers\":{\"demo\":{\"transport\":\"stdio\"}},"
                                          "\"backends\":{}}");
    char err[256] = "";
    long long st = -9;
    redisReply *r;

    (void)state;
    reg_keys_init(&k, "p:");
    assert_int_equal(reg_seed_cmd_build(&cmd, &k, doc, 0), 0);
    /* EVAL script 5 keys, 4 + 3 counts, one name/json pair */
    assert_int_equal(cmd.argc, 3 + 5 + 4 + 3 + 2);
    assert_string_equal(cmd.argv[0], "EVAL");
    assert_string_equal(cmd.argv[3], "p:reg:version");
    assert_string_equal(cmd.argv[8], "0");
    assert_string_equal(cmd.argv[9], "p:reg:changed");
    assert_string_equal(cmd.argv[12], "0");   /* assistants */
    assert_string_equal(cmd.argv[14], "1");   /* mcp_servers */
    assert_string_equal(cmd.argv[15], "demo");
    assert_int_equal(cmd.lens[15], 4);
    reg_seed_cmd_clear(&cmd);
    reg_seed_cmd_clear(&cmd);                 /* twice is harmless */
    json_object_put(doc);

    r = resp("*2\r\n:1\r\n:3\r\n");
    assert_int_equal(reg_parse_script_reply(r, &st, err, sizeof err), 0);
    assert_int_equal(st, 1);
    freeReplyObject(r);
    r = resp("-ERR script\r\n");
    assert_int_equal(reg_parse_script_reply(r, &st, err, sizeof err), -EIO);
    assert_non_null(strstr(err, "ERR script"));
    freeReplyObject(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_snapshot_cmds),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_snapshot_missing_and_bad),
        cmocka_unit_test(test_empty_doc),
        cmocka_unit_test(test_seed_cmd_and_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
