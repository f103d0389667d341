/* autostart (the MCP broker on demand) against a private redis-server: the
 * lock lets one of many contenders (threads at once) start a broker, gives
 * way only to its own token, and the broker's claim script (ondemand.h)
 * takes over a responder's token but never another broker's record; the
 * spawn detaches the program (new session, stdin /dev/null, output in its
 * log, no descriptor of ours, no CGI variables, the token in its
 * environment) and reports a command that cannot run; nudge starts one
 * program for many waiting requests and stretches their wait. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/autostart.h"
#include "mcp-broker/ondemand.h"
#include "shared/cfg.h"
#include "shared/rconn.h"
#include "tests/unit/support/tredis.h"

#define PREFIX "ta:"
#define KEY PREFIX AUTOSTART_LOCK_KEY

static redisContext *conn(void)
{
    char err[256] = "";
    redisContext *c = rconn_connect(tredis_url(), 2000, err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    return c;
}

/* The string at KEY, or "" when there is none. */
static void get_key(redisContext *c, char *out, size_t n)
{
    redisReply *r = redisCommand(c, "GET %s", KEY);
    assert_non_null(r);
    snprintf(out, n, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
}

static long long eval(redisContext *c, const char *lua, const char *a1, const char *a2)
{
    redisReply *r = redisCommand(c, "EVAL %s 1 %s %s %s 5000", lua, KEY, a1, a2);
    long long v;
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    v = r->integer;
    freeReplyObject(r);
    return v;
}

static void del_key(redisContext *c)
{
    freeReplyObject(redisCommand(c, "DEL %s", KEY));
}

/* --- the lock ----------------------------------------------------------------- */

#define CONTENDERS 16
static pthread_barrier_t g_start;

typedef struct contender {
    int idx, won;
} contender_t;

static void *contend(void *arg)
{
    char token[40];
    redisContext *c = conn();
    contender_t *me = arg;

    snprintf(token, sizeof token, "tok%02d", me->idx);
    pthread_barrier_wait(&g_start);
    me->won = autostart_lock(c, PREFIX, token, 5000);
    redisFree(c);
    return NULL;
}

static void one_of_many_takes_the_lock(void **state)
{
    pthread_t th[CONTENDERS];
    contender_t who[CONTENDERS];
    int total = 0;
    redisContext *c = conn();
    char v[256];

    (void)state;
    del_key(c);
    pthread_barrier_init(&g_start, NULL, CONTENDERS);
    for (int i = 0; i < CONTENDERS; i++) {
        who[i].idx = i;
        assert_int_equal(pthread_create(&th[i], NULL, contend, &who[i]), 0);
    }
    for (int i = 0; i < CONTENDERS; i++) {
        pthread_join(th[i], NULL);
        assert_true(who[i].won == 0 || who[i].won == 1);
        total += who[i].won;
    }
    pthread_barrier_destroy(&g_start);
    assert_int_equal(total, 1);
    /* held: nobody else gets it; unlock with a wrong token leaves it */
    assert_int_equal(autostart_lock(c, PREFIX, "late", 5000), 0);
    get_key(c, v, sizeof v);
    autostart_unlock(c, PREFIX, "not-the-holder");
    get_key(c, v + 128, sizeof v - 128);
    assert_string_equal(v, v + 128);
    autostart_unlock(c, PREFIX, v);
    get_key(c, v, sizeof v);
    assert_string_equal(v, "");
    assert_int_equal(autostart_lock(c, PREFIX, "again", 5000), 1);
    del_key(c);
    redisFree(c);
}

/* The broker's claim: a responder's token (or nothing) becomes its record;
 * its own record is renewed; another broker's record is left alone (0), and
 * the release deletes only its own. */
static void broker_claims_the_token_not_another_record(void **state)
{
    redisContext *c = conn();
    char rec[256], other[256], v[256];

    (void)state;
    del_key(c);
    assert_int_equal(ondemand_record(rec, sizeof rec, "b1", "tokA"), 0);
    assert_int_equal(ondemand_record(other, sizeof other, "b2", "tokB"), 0);
    assert_int_equal(autostart_lock(c, PREFIX, "tokA", 5000), 1);
    assert_int_equal(eval(c, ondemand_claim_lua, "tokA", rec), 1);
    get_key(c, v, sizeof v);
    assert_string_equal(v, rec);
    assert_non_null(strstr(v, "\"pid\":"));
    assert_int_equal(eval(c, ondemand_claim_lua, "tokA", rec), 1);     /* renewal */
    assert_int_equal(autostart_lock(c, PREFIX, "tokC", 5000), 0);     /* no second start */
    assert_int_equal(eval(c, ondemand_claim_lua, "tokB", other), 0);  /* one too many */
    freeReplyObject(redisCommand(c, "EVAL %s 1 %s %s", ondemand_release_lua, KEY, other));
    get_key(c, v, sizeof v);
    assert_string_equal(v, rec);
    freeReplyObject(redisCommand(c, "EVAL %s 1 %s %s", ondemand_release_lua, KEY, rec));
    get_key(c, v, sizeof v);
    assert_string_equal(v, "");
    assert_int_equal(eval(c, ondemand_claim_lua, "tokB", other), 1);  /* expired: free */
    del_key(c);
    redisFree(c);
}

static void idle_seconds_parse(void **state)
{
    int v = -1;

    (void)state;
    /* the two sides name the same key and variables (agent/ and mcp-broker/
     * may not include each other) */
    assert_string_equal(AUTOSTART_LOCK_KEY, ONDEMAND_KEY);
    assert_string_equal(AUTOSTART_TOKEN_ENV, ONDEMAND_TOKEN_ENV);
    assert_string_equal(AUTOSTART_IDLE_ENV, ONDEMAND_IDLE_ENV);
    assert_int_equal(CFG_BROKER_IDLE_MAX_S, ONDEMAND_IDLE_MAX_S);
    assert_int_equal(ondemand_parse_idle("30", &v), 0);
    assert_int_equal(v, 30);
    assert_int_equal(ondemand_parse_idle("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(ondemand_parse_idle("-1", &v), -EINVAL);
    assert_int_equal(ondemand_parse_idle("5s", &v), -EINVAL);
    assert_int_equal(ondemand_parse_idle("", &v), -EINVAL);
    assert_int_equal(ondemand_parse_idle("604801", &v), -EINVAL);
}

/* --- the spawn ----------------------------------------------------------------- */

static char g_dir[128];

/* Reads file into out (NUL-terminated); waits for it, bounded, when `wait`. */
static int slurp(const char *file, char *out, size_t n, int wait)
{
    for (int i = 0; i < (wait ? 500 : 1); i++) {
        int fd = open(file, O_RDONLY);
        if (fd >= 0) {
            ssize_t r = read(fd, out, n - 1);
            close(fd);
            if (r > 0 && (!wait || memchr(out, '!', (size_t)r))) {
                out[r] = '\0';
                return 0;
            }
        }
        poll(NULL, 0, 20);
    }
    out[0] = '\0';
    return -1;
}

static autostart_cfg_t sh_cfg(const char *script)
{
    autostart_cfg_t c;

    memset(&c, 0, sizeof c);
    c.enabled = 1;
    snprintf(c.command, sizeof c.command, "sh");       /* looked up in PATH */
    snprintf(c.args[0], sizeof c.args[0], "-c");
    snprintf(c.args[1], sizeof c.args[1], "%s", script);
    c.nargs = 2;
    snprintf(c.log, sizeof c.log, "%s/out.log", g_dir);
    c.start_timeout_ms = 5000;
    return c;
}

static void spawn_detaches(void **state)
{
    char script[1024], out[8192], file[256];
    autostart_cfg_t c;
    pid_t pid = 0;
    char err[256] = "";
    int leak = open("/dev/null", O_RDONLY);   /* a descriptor of ours, not CLOEXEC */

    (void)state;
    assert_true(leak > 2);
    snprintf(file, sizeof file, "%s/report", g_dir);
    /* what the program sees: its pid and session, stdin, its descriptors,
     * the environment it was given; "!" ends the report */
    snprintf(script, sizeof script,
             "exec > %s.tmp; echo pid=$$; echo sid=$(cut -d' ' -f6 /proc/$$/stat);"
             " echo in=$(readlink /proc/$$/fd/0); ls /proc/self/fd | tr '\\n' ' '; echo;"
             " env | grep -E '^(HTTP_|REQUEST_METHOD|REDIS_URL|AIPROXY_)' | sort; echo '!';"
             " echo to-the-log >&2; mv %s.tmp %s",
             file, file, file);
    c = sh_cfg(script);
    setenv("HTTP_AUTHORIZATION", "Bearer sk-client", 1);
    setenv("REQUEST_METHOD", "POST", 1);
    setenv("AIPROXY_BROKER_TOKEN", "inherited", 1);
    assert_int_equal(autostart_spawn(&c, "unix:///r.sock", "px:", "tok123", &pid, err, sizeof err), 0);
    unsetenv("HTTP_AUTHORIZATION");
    unsetenv("REQUEST_METHOD");
    unsetenv("AIPROXY_BROKER_TOKEN");
    close(leak);
    assert_true(pid > 0);
    assert_int_equal(slurp(file, out, sizeof out, 1), 0);
    {
        char want[64];
        snprintf(want, sizeof want, "pid=%d\n", (int)pid);
        assert_non_null(strstr(out, want));
        snprintf(want, sizeof want, "sid=%d\n", (int)getsid(0));
        if (strstr(out, want))
            fail_msg("same session as the parent:\n%s", out);
    }
    assert_non_null(strstr(out, "in=/dev/null\n"));
    /* ls's: stdin, the pipe to tr, the log, its directory: nothing of ours */
    if (!strstr(out, "\n0 1 2 3 \n"))
        fail_msg("descriptors leaked into the program:\n%s", out);
    assert_null(strstr(out, "HTTP_AUTHORIZATION"));
    assert_null(strstr(out, "REQUEST_METHOD"));
    assert_null(strstr(out, "inherited"));
    assert_non_null(strstr(out, "REDIS_URL=unix:///r.sock\n"));
    assert_non_null(strstr(out, "AIPROXY_REDIS_PREFIX=px:\n"));
    assert_non_null(strstr(out, "AIPROXY_BROKER_TOKEN=tok123\n"));
    assert_non_null(strstr(out, "AIPROXY_BROKER_IDLE_EXIT_S=0\n"));
    snprintf(file, sizeof file, "%s/out.log", g_dir);
    for (int i = 0; i < 250 && (slurp(file, out, sizeof out, 0) || !strstr(out, "to-the-log")); i++)
        poll(NULL, 0, 20);
    assert_non_null(strstr(out, "to-the-log"));
}

static void spawn_reports_what_cannot_run(void **state)
{
    autostart_cfg_t c = sh_cfg("true");
    char err[256] = "", path[256];
    pid_t pid = 1;
    int fd;

    (void)state;
    snprintf(c.command, sizeof c.command, "/nonexistent/mcp-broker");
    c.nargs = 0;
    assert_int_equal(autostart_spawn(&c, "u", "p:", "t", &pid, err, sizeof err), -ENOENT);
    assert_int_equal(pid, 0);
    assert_non_null(strstr(err, "/nonexistent/mcp-broker"));
    snprintf(path, sizeof path, "%s/not-executable", g_dir);
    fd = open(path, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    close(fd);
    snprintf(c.command, sizeof c.command, "%s", path);
    assert_int_equal(autostart_spawn(&c, "u", "p:", "t", &pid, err, sizeof err), -EACCES);
    /* a binary exec refuses (not a program at all) is reported by the child */
    assert_int_equal(chmod(path, 0755), 0);
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "\x7f" "ELF garbage", 12), 12);
    close(fd);
    assert_true(autostart_spawn(&c, "u", "p:", "t", &pid, err, sizeof err) < 0);
    assert_non_null(strstr(err, "cannot start"));
}

/* --- nudge: what a waiting request does ----------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nudge_starts_one_for_many(void **state)
{
    json_object *b = json_tokener_parse("{\"autostart\":true,\"command\":\"sh\",\"args\":[\"-c\","
                                        "\"echo started >> $LOGDIR/starts\"],\"log\":\"\","
                                        "\"idle_exit_s\":7,\"start_timeout\":3}");
    autostart_wait_t w1 = {0}, w2 = {0};
    redisContext *c = conn();
    char err[256] = "", file[256], out[256];
    int64_t now = now_ms(), until1 = now + 100, until2 = now + 100;

    (void)state;
    del_key(c);
    setenv("LOGDIR", g_dir, 1);
    snprintf(file, sizeof file, "%s/nudge.log", g_dir);
    setenv("AIPROXY_BROKER_LOG", file, 1);          /* the environment wins over "log" */
    assert_int_equal(autostart_setup(b, NULL, err, sizeof err), 0);
    unsetenv("AIPROXY_BROKER_LOG");
    assert_string_equal(autostart_cfg()->log, file);
    assert_true(autostart_cfg()->enabled);
    assert_int_equal(autostart_cfg()->idle_exit_s, 7);
    autostart_nudge(&w1, c, tredis_url(), PREFIX, now, &until1);
    autostart_nudge(&w2, c, tredis_url(), PREFIX, now, &until2);
    autostart_nudge(&w2, c, tredis_url(), PREFIX, now + 300, &until2);   /* tries again: held */
    assert_true(w1.started > 0);
    assert_int_equal(w2.started, 0);
    assert_true(until1 >= now + 3000 && until2 >= now + 3000);           /* stretched to start_timeout */
    snprintf(file, sizeof file, "%s/starts", g_dir);
    for (int i = 0; i < 250 && (slurp(file, out, sizeof out, 0) || !strstr(out, "started")); i++)
        poll(NULL, 0, 20);
    assert_string_equal(out, "started\n");
    /* off: nothing happens, the wait is not stretched */
    setenv("AIPROXY_BROKER_AUTOSTART", "0", 1);
    assert_int_equal(autostart_setup(b, NULL, err, sizeof err), 0);
    unsetenv("AIPROXY_BROKER_AUTOSTART");
    {
        autostart_wait_t w3 = {0};
        int64_t until3 = now + 100;
        del_key(c);
        autostart_nudge(&w3, c, tredis_url(), PREFIX, now, &until3);
        assert_int_equal(until3, now + 100);
        assert_int_equal(w3.started, 0);
    }
    setenv("AIPROXY_BROKER_AUTOSTART", "maybe", 1);
    assert_int_equal(autostart_setup(NULL, NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "AIPROXY_BROKER_AUTOSTART"));
    unsetenv("AIPROXY_BROKER_AUTOSTART");
    /* the default: the mcp-broker beside this program, on the config given */
    assert_int_equal(autostart_setup(NULL, "/", err, sizeof err), 0);
    assert_non_null(strstr(autostart_cfg()->command, "/mcp-broker"));
    assert_string_equal(autostart_cfg()->args[0], "-c");
    assert_string_equal(autostart_cfg()->args[1], "/");
    assert_string_equal(autostart_cfg()->log, "//mcp-broker.log");
    /* a config that cannot be resolved matters only when the broker would
     * be started with it: CGI mode passes AIPROXY_CONFIG, read only to seed
     * an empty Redis (cgi.test.js) */
    assert_int_equal(autostart_setup(NULL, "/nonexistent/aiproxy.yaml", err, sizeof err), 0);
    assert_false(autostart_cfg()->enabled);
    setenv("AIPROXY_BROKER_AUTOSTART", "1", 1);
    assert_int_equal(autostart_setup(NULL, "/nonexistent/aiproxy.yaml", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "/nonexistent/aiproxy.yaml"));
    unsetenv("AIPROXY_BROKER_AUTOSTART");
    del_key(c);
    redisFree(c);
    json_object_put(b);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/test_autostart.%d", (int)getpid());
    if (mkdir(g_dir, 0700) != 0)
        return -1;
    return tredis_start("autostart");
}

static int group_teardown(void **state)
{
    char cmd[256];

    (void)state;
    tredis_stop();
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_of_many_takes_the_lock),
        cmocka_unit_test(broker_claims_the_token_not_another_record),
        cmocka_unit_test(idle_seconds_parse),
        cmocka_unit_test(spawn_detaches),
        cmocka_unit_test(spawn_reports_what_cannot_run),
        cmocka_unit_test(nudge_starts_one_for_many),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
