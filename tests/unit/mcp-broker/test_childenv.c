/* test_childenv — what a stdio MCP server's process gets from the broker
 * (issue 11): the short list of our variables, its inherit_env, its env, never
 * the gateway's secrets; and the user it runs as. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "mcp-broker/childenv.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *get(char **env, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; env[i]; i++)
        if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
            return env[i] + n + 1;
    return NULL;
}

static size_t count(char **env, const char *name)
{
    size_t n = strlen(name), k = 0;
    for (size_t i = 0; env[i]; i++)
        k += strncmp(env[i], name, n) == 0 && env[i][n] == '=';
    return k;
}

static char *parent[] = {
    "PATH=/usr/bin:/bin", "HOME=/root", "USER=root", "LANG=C.UTF-8", "LC_ALL=C",
    "TMPDIR=/var/tmp", "OPENAI_API_KEY=sk-openai", "ANTHROPIC_API_KEY=sk-ant",
    "ADMIN_API_KEY=adm", "REDIS_URL=redis://secret@h", "AIPROXY_MCP_COMMANDS=*",
    "DB_PASSWORD=pw", "MY_VAR=mine", "OTHER=x", "BROKEN", "=novalue", NULL,
};

static void test_minimal_by_default(void **st)
{
    (void)st;
    json_object *srv = json_tokener_parse("{\"command\":\"x\"}");
    char **env = childenv_build(parent, srv, NULL);
    assert_non_null(env);
    assert_string_equal(get(env, "PATH"), "/usr/bin:/bin");
    assert_string_equal(get(env, "HOME"), "/root");
    assert_string_equal(get(env, "LANG"), "C.UTF-8");
    assert_string_equal(get(env, "LC_ALL"), "C");
    assert_string_equal(get(env, "TMPDIR"), "/var/tmp");
    static const char *const gone[] = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ADMIN_API_KEY",
                                       "REDIS_URL", "AIPROXY_MCP_COMMANDS", "DB_PASSWORD",
                                       "MY_VAR", "OTHER", "BROKEN", "", NULL};
    for (const char *const *g = gone; *g; g++)
        if (get(env, *g))
            fail_msg("%s reached the child", *g);
    childenv_free(env);
    json_object_put(srv);
}

static void test_inherit_and_env(void **st)
{
    (void)st;
    /* listing a secret does not pass it: the broker enforces what cfg checks */
    json_object *srv = json_tokener_parse(
        "{\"command\":\"x\",\"inherit_env\":[\"MY_VAR\",\"OPENAI_API_KEY\",\"REDIS_URL\",\"NOPE\"],"
        "\"env\":{\"PATH\":\"/opt/bin\",\"FOO\":\"bar\",\"EMPTY\":null}}");
    char **env = childenv_build(parent, srv, NULL);
    assert_non_null(env);
    assert_string_equal(get(env, "MY_VAR"), "mine");
    assert_string_equal(get(env, "PATH"), "/opt/bin");
    assert_int_equal(count(env, "PATH"), 1);
    assert_string_equal(get(env, "FOO"), "bar");
    assert_string_equal(get(env, "EMPTY"), "");
    assert_null(get(env, "OPENAI_API_KEY"));
    assert_null(get(env, "REDIS_URL"));
    assert_null(get(env, "NOPE"));
    childenv_free(env);
    json_object_put(srv);
}

static void test_user_identity(void **st)
{
    (void)st;
    childenv_user_t u = {.drop = 1, .uid = 65534, .gid = 65534, .name = "nobody", .home = "/tmp"};
    json_object *srv = json_tokener_parse("{\"command\":\"x\"}");
    char **env = childenv_build(parent, srv, &u);
    assert_string_equal(get(env, "HOME"), "/tmp");
    assert_string_equal(get(env, "USER"), "nobody");
    assert_string_equal(get(env, "LOGNAME"), "nobody");
    assert_int_equal(count(env, "HOME"), 1);
    childenv_free(env);
    json_object_put(srv);
    /* the server's own env still has the last word */
    srv = json_tokener_parse("{\"command\":\"x\",\"env\":{\"HOME\":\"/srv/mcp\"}}");
    env = childenv_build(parent, srv, &u);
    assert_string_equal(get(env, "HOME"), "/srv/mcp");
    childenv_free(env);
    json_object_put(srv);
    env = childenv_build(NULL, NULL, NULL);
    assert_non_null(env);
    assert_null(env[0]);
    childenv_free(env);
}

static void test_user_resolve(void **st)
{
    (void)st;
    childenv_user_t u;
    char err[256] = "";
    struct passwd *nob = getpwnam("nobody");
    if (!nob)
        skip();
    /* not root: nothing to drop, whatever is asked */
    assert_int_equal(childenv_user_resolve(1000, "nobody", &u, err, sizeof err), 0);
    assert_false(u.drop);
    /* root: nobody by default */
    assert_int_equal(childenv_user_resolve(0, NULL, &u, err, sizeof err), 0);
    assert_true(u.drop);
    assert_int_equal(u.uid, nob->pw_uid);
    assert_string_equal(u.name, "nobody");
    assert_true(u.home[0] == '/');
    assert_int_equal(childenv_user_resolve(0, "", &u, err, sizeof err), 0);
    assert_true(u.drop);
    /* a numeric uid */
    char num[32];
    snprintf(num, sizeof num, "%u", (unsigned)nob->pw_uid);
    assert_int_equal(childenv_user_resolve(0, num, &u, err, sizeof err), 0);
    assert_true(u.drop);
    assert_int_equal(u.gid, nob->pw_gid);
    /* root on purpose */
    assert_int_equal(childenv_user_resolve(0, "root", &u, err, sizeof err), 0);
    assert_false(u.drop);
    /* an unknown user fails closed, naming the knob */
    assert_int_equal(childenv_user_resolve(0, "no-such-user-aiproxy", &u, err, sizeof err), -ENOENT);
    assert_false(u.drop);
    assert_non_null(strstr(err, "AIPROXY_MCP_USER"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_by_default),
        cmocka_unit_test(test_inherit_and_env),
        cmocka_unit_test(test_user_identity),
        cmocka_unit_test(test_user_resolve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
