/* REDIS_URL parsing: every accepted form and every refusal; the Sentinel
 * forms, and the reading of Sentinel, ROLE and failover replies (RESP text fed
 * to hiredis's reader, no server). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shared/rconn.h"
#include "shared/sentinel.h"

static void ok(const char *url, rconn_addr_t *a)
{
    char err[256] = "";
    int rc = rconn_parse(url, a, err, sizeof err);
    if (rc != 0)
        fail_msg("%s: %s", url, err);
}

static void bad(const char *url, const char *needle)
{
    rconn_addr_t a;
    char err[256] = "";
    assert_int_equal(rconn_parse(url, &a, err, sizeof err), -EINVAL);
    if (!strstr(err, needle))
        fail_msg("%s: error '%s' lacks '%s'", url, err, needle);
}

static void test_tcp_forms(void **state)
{
    rconn_addr_t a;
    (void)state;
    ok("redis://localhost", &a);
    assert_string_equal(a.host, "localhost");
    assert_int_equal(a.port, 6379);
    assert_int_equal(a.db, 0);
    assert_string_equal(a.path, "");
    ok("redis://10.0.0.1:7000/3", &a);
    assert_string_equal(a.host, "10.0.0.1");
    assert_int_equal(a.port, 7000);
    assert_int_equal(a.db, 3);
    ok("redis://h:1/", &a);
    assert_int_equal(a.db, 0);
    ok("redis://[::1]:6380/2", &a);
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.port, 6380);
    assert_int_equal(a.db, 2);
}

static void test_auth_forms(void **state)
{
    rconn_addr_t a;
    (void)state;
    ok("redis://:s3cret@h:6379/0", &a);
    assert_string_equal(a.user, "");
    assert_string_equal(a.password, "s3cret");
    ok("redis://alice:pw@h", &a);
    assert_string_equal(a.user, "alice");
    assert_string_equal(a.password, "pw");
    ok("redis://onlypass@h", &a);
    assert_string_equal(a.password, "onlypass");
    ok("redis://:p%40ss%3Aw@h", &a);      /* %-escapes: "p@ss:w" */
    assert_string_equal(a.password, "p@ss:w");
    ok("redis://:a@b@h:1", &a);           /* the last '@' ends the userinfo */
    assert_string_equal(a.password, "a@b");
    assert_string_equal(a.host, "h");
}

static void test_unix_forms(void **state)
{
    rconn_addr_t a;
    (void)state;
    ok("unix:///run/redis.sock", &a);
    assert_string_equal(a.path, "/run/redis.sock");
    assert_string_equal(a.host, "");
    assert_int_equal(a.db, 0);
    ok("unix:///tmp/r.sock?db=5", &a);
    assert_string_equal(a.path, "/tmp/r.sock");
    assert_int_equal(a.db, 5);
    ok("unix://:pw@/tmp/r.sock", &a);
    assert_string_equal(a.password, "pw");
    assert_string_equal(a.path, "/tmp/r.sock");
}

static void test_refusals(void **state)
{
    (void)state;
    bad("", "empty");
    bad("http://h", "scheme");
    bad("rediss://h", "TLS");
    bad("redis://", "no host");
    bad("redis://:6379", "no host");
    bad("redis://h:0", "port");
    bad("redis://h:65536", "port");
    bad("redis://h:12x", "port");
    bad("redis://h:6379/x", "database");
    bad("redis://h:6379/-1", "database");
    bad("redis://[::1", "'['");
    bad("redis://[::1]x", "':port'");
    bad("redis://:%zz@h", "%-escape");
    bad("redis://:%4@h", "%-escape");
    bad("redis://:%00@h", "%00");
    bad("unix://relative.sock", "absolute");
    bad("unix:///", "no socket path");
    bad("unix:///tmp/s?database=1", "?db=N");
    bad("unix:///tmp/s?db=", "?db=N");
}

static void test_too_long(void **state)
{
    char url[2048];
    (void)state;
    memset(url, 'a', sizeof url);
    memcpy(url, "redis://", 8);
    url[sizeof url - 1] = '\0';
    bad(url, "too long");
}

static void test_env_defaults(void **state)
{
    (void)state;
    unsetenv("REDIS_URL");
    unsetenv("AIPROXY_REDIS_PREFIX");
    assert_string_equal(rconn_url(), "redis://127.0.0.1:6379/0");
    assert_string_equal(rconn_prefix(), "aiproxy:");
    setenv("REDIS_URL", "unix:///x.sock", 1);
    setenv("AIPROXY_REDIS_PREFIX", "t1:", 1);
    assert_string_equal(rconn_url(), "unix:///x.sock");
    assert_string_equal(rconn_prefix(), "t1:");
    unsetenv("REDIS_URL");
    unsetenv("AIPROXY_REDIS_PREFIX");
}

static void test_connect_refused_names_url_not_password(void **state)
{
    char err[512] = "";
    redisContext *c;
    (void)state;
    c = rconn_connect("unix://:topsecret@/nonexistent/dir/redis.sock", 500, err, sizeof err);
    assert_null(c);
    assert_non_null(strstr(err, "cannot reach Redis at unix:///nonexistent/dir/redis.sock"));
    assert_null(strstr(err, "topsecret"));
    c = rconn_connect("bogus://x", 500, err, sizeof err);
    assert_null(c);
    assert_non_null(strstr(err, "bad REDIS_URL"));
}


static void test_sentinel_forms(void **state)
{
    rconn_addr_t a;
    char shown[1024];
    (void)state;
    ok("redis+sentinel://s1:26380,s2,[::1]:26381/mymaster", &a);
    assert_int_equal(a.nsentinels, 3);
    assert_string_equal(a.sentinels[0].host, "s1");
    assert_int_equal(a.sentinels[0].port, 26380);
    assert_string_equal(a.sentinels[1].host, "s2");
    assert_int_equal(a.sentinels[1].port, 26379);       /* Sentinel's default port */
    assert_string_equal(a.sentinels[2].host, "::1");
    assert_int_equal(a.sentinels[2].port, 26381);
    assert_string_equal(a.master, "mymaster");
    assert_string_equal(a.host, "");                    /* asked of the Sentinels */
    assert_string_equal(a.path, "");
    assert_int_equal(a.db, 0);
    assert_string_equal(a.password, "");
    assert_string_equal(a.sentinel_password, "");
    ok("redis+sentinel://alice:p%40w@h:1/m%20x/7?sentinel_password=s%26p", &a);
    assert_string_equal(a.user, "alice");
    assert_string_equal(a.password, "p@w");             /* the master's */
    assert_string_equal(a.master, "m x");
    assert_int_equal(a.db, 7);
    assert_string_equal(a.sentinel_password, "s&p");
    assert_int_equal(a.nsentinels, 1);
    rconn_redacted(&a, shown, sizeof shown);
    assert_string_equal(shown, "redis+sentinel://h:1/m x/7");
    ok("redis+sentinel://:pw@h/m/", &a);
    assert_int_equal(a.db, 0);
    assert_string_equal(a.password, "pw");
    ok("redis+sentinel://s1:26380,s2,[::1]:26381/mymaster", &a);
    rconn_redacted(&a, shown, sizeof shown);
    assert_string_equal(shown, "redis+sentinel://s1:26380,s2:26379,[::1]:26381/mymaster/0");
    ok("redis://:pw@h:7/2", &a);                        /* plain URLs carry no Sentinel */
    assert_int_equal(a.nsentinels, 0);
    assert_string_equal(a.master, "");
    rconn_redacted(&a, shown, sizeof shown);
    assert_string_equal(shown, "redis://h:7/2");
}

static void test_sentinel_refusals(void **state)
{
    char url[512];
    size_t at;
    int i;
    (void)state;
    bad("redis+sentinel://h", "master's name");
    bad("redis+sentinel://h:26379", "master's name");
    bad("redis+sentinel://h/", "empty master name");
    bad("redis+sentinel://h//0", "empty master name");
    bad("redis+sentinel:///m", "no host");
    bad("redis+sentinel://a,,b/m", "no host");
    bad("redis+sentinel://a,/m", "no host");
    bad("redis+sentinel://h:0/m", "port");
    bad("redis+sentinel://h:x/m", "port");
    bad("redis+sentinel://[::1/m", "'['");
    bad("redis+sentinel://h/m/x", "database");
    bad("redis+sentinel://h/m/1/2", "database");
    bad("redis+sentinel://h/m?password=x", "sentinel_password");
    bad("redis+sentinel://h/m?sentinel_password=a&b=c", "sentinel_password");
    bad("redis+sentinel://h/m?sentinel_password=%zz", "%-escape");
    bad("redis+sentinel://h/%00", "%00");
    bad("redis+sentinel://:%4@h/m", "%-escape");
    snprintf(url, sizeof url, "redis+sentinel://");
    for (i = 0; i <= CAP_REDIS_SENTINELS; i++) {
        at = strlen(url);
        snprintf(url + at, sizeof url - at, "%sh%d", i ? "," : "", i);
    }
    at = strlen(url);
    snprintf(url + at, sizeof url - at, "/m");
    bad(url, "too many Sentinels");
}

/* The first reply in RESP text `resp` (caller frees). */
static redisReply *reply(const char *resp)
{
    redisReader *rd = redisReaderCreate();
    void *r = NULL;
    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, resp, strlen(resp)), REDIS_OK);
    assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
    assert_non_null(r);
    redisReaderFree(rd);
    return r;
}

static int master_of(const char *resp, char *host, int *port, char *err)
{
    redisReply *r = reply(resp);
    int rc = sentinel_parse_master(r, host, 64, port, err, 256);
    freeReplyObject(r);
    return rc;
}

static void test_sentinel_master_reply(void **state)
{
    char host[64] = "", err[256] = "";
    int port = 0;
    (void)state;
    assert_int_equal(master_of("*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6380\r\n", host, &port, err), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 6380);
    assert_int_equal(master_of("*2\r\n$3\r\n::1\r\n$4\r\n6381\r\n", host, &port, err), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(master_of("*-1\r\n", host, &port, err), -ENOENT);     /* unknown name */
    assert_int_equal(master_of("$-1\r\n", host, &port, err), -ENOENT);
    assert_int_equal(master_of("-NOAUTH Authentication required.\r\n", host, &port, err), -EIO);
    assert_non_null(strstr(err, "NOAUTH"));
    assert_int_equal(master_of("*1\r\n$1\r\nh\r\n", host, &port, err), -EPROTO);
    assert_int_equal(master_of("*2\r\n$1\r\nh\r\n$1\r\n0\r\n", host, &port, err), -EPROTO);
    assert_int_equal(master_of("*2\r\n$1\r\nh\r\n$5\r\n70000\r\n", host, &port, err), -EPROTO);
    assert_int_equal(master_of("*2\r\n$1\r\nh\r\n$2\r\n1x\r\n", host, &port, err), -EPROTO);
    assert_int_equal(master_of("*2\r\n$0\r\n\r\n$2\r\n10\r\n", host, &port, err), -EPROTO);
    assert_int_equal(master_of("*2\r\n:1\r\n$2\r\n10\r\n", host, &port, err), -EPROTO);
    assert_int_equal(master_of("+OK\r\n", host, &port, err), -EPROTO);
    {   /* longer than the caller's buffer: refused, not cut */
        char big[200];
        memset(big, 0, sizeof big);
        snprintf(big, sizeof big, "*2\r\n$70\r\n%070d\r\n$2\r\n10\r\n", 0);
        assert_int_equal(master_of(big, host, &port, err), -EPROTO);
    }
    assert_int_equal(sentinel_parse_master(NULL, host, sizeof host, &port, err, sizeof err), -EPROTO);
}

static int role_of(const char *resp)
{
    redisReply *r = reply(resp);
    int rc = sentinel_parse_role(r);
    freeReplyObject(r);
    return rc;
}

static void test_role_reply(void **state)
{
    (void)state;
    assert_int_equal(role_of("*3\r\n$6\r\nmaster\r\n:3129659\r\n*1\r\n*3\r\n$9\r\n127.0.0.1\r\n"
                             "$4\r\n9001\r\n$7\r\n3129242\r\n"), 1);
    assert_int_equal(role_of("*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n"), 1);
    assert_int_equal(role_of("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:9000\r\n$9\r\nconnected\r\n"
                             ":3167038\r\n"), 0);
    assert_int_equal(role_of("*2\r\n$8\r\nsentinel\r\n*1\r\n$6\r\nmaster\r\n"), 0);
    assert_int_equal(role_of("-LOADING Redis is loading the dataset in memory\r\n"), 0);
    assert_int_equal(role_of("*0\r\n"), -EPROTO);
    assert_int_equal(role_of(":1\r\n"), -EPROTO);
    assert_int_equal(role_of("*1\r\n:1\r\n"), -EPROTO);
    assert_int_equal(sentinel_parse_role(NULL), -EPROTO);
}

static int lost(const char *resp)
{
    redisReply *r = reply(resp);
    int rc = rconn_reply_lost(r);
    freeReplyObject(r);
    return rc;
}

static void test_reply_lost(void **state)
{
    (void)state;
    assert_true(lost("-READONLY You can't write against a read only replica.\r\n"));
    assert_true(lost("-LOADING Redis is loading the dataset in memory\r\n"));
    assert_true(lost("-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n"));
    assert_true(lost("-READONLY\r\n"));
    /* Redis 6 wraps a script's refused write in its own error */
    assert_true(lost("-ERR Error running script (call to f_1): @user_script:1: @user_script: 1: "
                     "-READONLY You can't write against a read only replica.\r\n"));
    assert_false(lost("-ERR wrong number of arguments\r\n"));
    assert_false(lost("-NOAUTH Authentication required.\r\n"));
    assert_false(lost("-READONLYX not a code\r\n"));
    assert_false(lost("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"));
    assert_false(lost("+READONLY\r\n"));                /* a status, not an error */
    assert_false(lost("$8\r\nREADONLY\r\n"));
    assert_false(rconn_reply_lost(NULL));
}

static void test_sentinel_unreachable_vs_unknown(void **state)
{
    rconn_addr_t a, m;
    char err[512] = "";
    redisContext *c;
    (void)state;
    /* port 1 on loopback: refused at once, so "no Sentinel reachable" */
    c = rconn_connect("redis+sentinel://:topsecret@127.0.0.1:1,127.0.0.1:2/mym/0"
                      "?sentinel_password=alsosecret", 500, err, sizeof err);
    assert_null(c);
    assert_non_null(strstr(err, "no Sentinel reachable for redis+sentinel://127.0.0.1:1,127.0.0.1:2/mym/0"));
    assert_null(strstr(err, "topsecret"));
    assert_null(strstr(err, "alsosecret"));
    ok("redis+sentinel://127.0.0.1:1/mym", &a);
    assert_int_equal(rconn_resolve(&a, 500, &m, err, sizeof err), -EHOSTUNREACH);
    /* a plain address resolves to itself without I/O */
    ok("redis://:pw@h:7/2", &a);
    assert_int_equal(rconn_resolve(&a, 500, &m, err, sizeof err), 0);
    assert_string_equal(m.host, "h");
    assert_int_equal(m.port, 7);
    assert_string_equal(m.password, "pw");
}

/* A fake Sentinel on a loopback port, a thread per connection: to SENTINEL
 * it answers `master_reply` (with "%d" its own port), to ROLE `role_reply`,
 * to SUBSCRIBE the confirmation then each of `events` (RESP texts), to
 * anything else +OK. Enough to drive rconn's resolution and the watcher
 * without a real Sentinel (the integration test has real ones). */
#define FAKE_CONNS 16
typedef struct fake {
    int lfd, port;
    const char *master_reply, *role_reply, *events;
    atomic_int sentinel_asks, role_asks, nconns;
    int fds[FAKE_CONNS];
    pthread_t th, conns[FAKE_CONNS];
} fake_t;

typedef struct fake_conn {
    fake_t *f;
    int fd;
} fake_conn_t;

static const char FAKE_REPLICA[] = "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:1\r\n$9\r\nconnected\r\n:0\r\n";
static const char FAKE_MASTER[] = "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n";

static void *fake_conn(void *arg)
{
    fake_conn_t *fc = arg;
    fake_t *f = fc->f;
    char in[1024], out[1024];
    ssize_t n;

    while ((n = read(fc->fd, in, sizeof in - 1)) > 0) {
        in[n] = '\0';
        if (strstr(in, "SUBSCRIBE")) {
            snprintf(out, sizeof out, "*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n%s",
                     f->events ? f->events : "");
        } else if (strstr(in, "SENTINEL")) {
            f->sentinel_asks++;
            snprintf(out, sizeof out, f->master_reply, f->port);
        } else if (strstr(in, "ROLE")) {
            f->role_asks++;
            snprintf(out, sizeof out, "%s", f->role_reply);
        } else if (strstr(in, "PING")) {
            snprintf(out, sizeof out, "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
        } else {
            snprintf(out, sizeof out, "+OK\r\n");
        }
        if (write(fc->fd, out, strlen(out)) < 0)
            break;
    }
    free(fc);
    return NULL;
}

static void *fake_run(void *arg)
{
    fake_t *f = arg;
    int fd;

    while ((fd = accept(f->lfd, NULL, NULL)) >= 0) {
        fake_conn_t *fc = malloc(sizeof *fc);
        int i = f->nconns;
        if (!fc || i == FAKE_CONNS) {
            free(fc);
            close(fd);
            continue;
        }
        fc->f = f;
        fc->fd = f->fds[i] = fd;
        if (pthread_create(&f->conns[i], NULL, fake_conn, fc) != 0) {
            free(fc);
            close(fd);
            continue;
        }
        f->nconns = i + 1;
    }
    return NULL;
}

static void fake_start(fake_t *f, const char *master_reply, const char *role_reply,
                       const char *events)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;

    memset(f, 0, sizeof *f);
    f->master_reply = master_reply;
    f->role_reply = role_reply;
    f->events = events;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(f->lfd, 8), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sa, &len), 0);
    f->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&f->th, NULL, fake_run, f), 0);
}

/* Ends the accept and every connection (the watcher's included: it then
 * finds no Sentinel and keeps trying, harmlessly, until the program exits). */
static void fake_stop(fake_t *f)
{
    int i;

    shutdown(f->lfd, SHUT_RDWR);
    pthread_join(f->th, NULL);
    for (i = 0; i < f->nconns; i++) {
        shutdown(f->fds[i], SHUT_RDWR);
        pthread_join(f->conns[i], NULL);
        close(f->fds[i]);
    }
    close(f->lfd);
}

static void test_sentinel_unknown_master(void **state)
{
    fake_t f;
    char url[128], err[512] = "";
    (void)state;
    fake_start(&f, "*-1\r\n", FAKE_MASTER, NULL);
    /* the first Sentinel is down, the second answers: "master unknown", not "unreachable" */
    snprintf(url, sizeof url, "redis+sentinel://127.0.0.1:1,127.0.0.1:%d/nosuch", f.port);
    assert_null(rconn_connect(url, 500, err, sizeof err));
    assert_non_null(strstr(err, "do not know a master named 'nosuch'"));
    assert_non_null(strstr(err, "1 of 2 answered"));
    fake_stop(&f);
    assert_int_equal(f.sentinel_asks, 1);
}

static void test_sentinel_master_not_master(void **state)
{
    fake_t f;
    char url[128], err[512] = "";
    rconn_addr_t a, m;
    (void)state;
    fake_start(&f, "*2\r\n$9\r\n127.0.0.1\r\n$5\r\n%05d\r\n", FAKE_REPLICA, NULL);
    snprintf(url, sizeof url, "redis+sentinel://127.0.0.1:%d/mym", f.port);
    assert_null(rconn_connect(url, 500, err, sizeof err));
    assert_non_null(strstr(err, "is not a master after 3 tries"));
    assert_non_null(strstr(err, "master 'mym' from Sentinel"));
    ok(url, &a);
    assert_int_equal(rconn_resolve(&a, 500, &m, err, sizeof err), -ECONNREFUSED);
    fake_stop(&f);
    assert_int_equal(f.sentinel_asks, 6);      /* asked again before each ROLE */
    assert_int_equal(f.role_asks, 6);
}

/* A "message" on +switch-master, as a Sentinel sends it (RESP). */
static void switch_msg(char *out, size_t n, const char *text)
{
    snprintf(out, n, "*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$%zu\r\n%s\r\n", strlen(text), text);
}

static void test_switch_message(void **state)
{
    char resp[256], host[64] = "";
    int port = 0;
    redisReply *r;
    (void)state;
    switch_msg(resp, sizeof resp, "mym 127.0.0.1 6379 10.0.0.2 6380");
    r = reply(resp);
    assert_int_equal(sentinel_parse_switch(r, "mym", host, sizeof host, &port), 1);
    assert_string_equal(host, "10.0.0.2");
    assert_int_equal(port, 6380);
    assert_int_equal(sentinel_parse_switch(r, "other", host, sizeof host, &port), 0);
    freeReplyObject(r);
    switch_msg(resp, sizeof resp, "mym 127.0.0.1 6379 10.0.0.2");      /* cut short */
    r = reply(resp);
    assert_int_equal(sentinel_parse_switch(r, "mym", host, sizeof host, &port), 0);
    freeReplyObject(r);
    switch_msg(resp, sizeof resp, "mym 127.0.0.1 6379 10.0.0.2 0");
    r = reply(resp);
    assert_int_equal(sentinel_parse_switch(r, "mym", host, sizeof host, &port), 0);
    freeReplyObject(r);
    r = reply("*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n");
    assert_int_equal(sentinel_parse_switch(r, "mym", host, sizeof host, &port), 0);
    freeReplyObject(r);
    r = reply("*3\r\n$7\r\nmessage\r\n$6\r\n+sdown\r\n$32\r\nmym 127.0.0.1 6379 10.0.0.2 6380\r\n");
    assert_int_equal(sentinel_parse_switch(r, "mym", host, sizeof host, &port), 0);
    freeReplyObject(r);
    assert_int_equal(sentinel_parse_switch(NULL, "mym", host, sizeof host, &port), 0);
}

/* The watcher: a Sentinel connection opens it; a +switch-master for another
 * name is ignored, one for ours moves rconn_epoch(); it survives a fork of
 * the process. Runs once per process (the watcher is per process). */
static void test_watcher_moves_epoch(void **state)
{
    fake_t f;
    char url[128], err[512] = "", events[512], m1[200], m2[200];
    redisContext *c;
    pid_t pid;
    int i, status;
    (void)state;
    switch_msg(m1, sizeof m1, "other 127.0.0.1 1 127.0.0.1 2");
    switch_msg(m2, sizeof m2, "mym 127.0.0.1 1 127.0.0.1 7777");
    snprintf(events, sizeof events, "%s%s", m1, m2);
    fake_start(&f, "*2\r\n$9\r\n127.0.0.1\r\n$5\r\n%05d\r\n", FAKE_MASTER, events);
    assert_int_equal(rconn_epoch(), 0);
    snprintf(url, sizeof url, "redis+sentinel://127.0.0.1:%d/mym", f.port);
    c = rconn_connect(url, 500, err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    redisFree(c);
    for (i = 0; i < 500 && rconn_epoch() == 0; i++)     /* bounded: 5 s */
        usleep(10000);
    assert_int_equal(rconn_epoch(), 1);
    /* a fork stops the thread (the child starts single-threaded) and the
     * parent's is started again: its new link hears the switch again */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (i = 0; i < 500 && rconn_epoch() == 1; i++)
        usleep(10000);
    assert_true(rconn_epoch() > 1);
    fake_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_forms),
        cmocka_unit_test(test_auth_forms),
        cmocka_unit_test(test_unix_forms),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_env_defaults),
        cmocka_unit_test(test_connect_refused_names_url_not_password),
        cmocka_unit_test(test_sentinel_forms),
        cmocka_unit_test(test_sentinel_refusals),
        cmocka_unit_test(test_sentinel_master_reply),
        cmocka_unit_test(test_role_reply),
        cmocka_unit_test(test_reply_lost),
        cmocka_unit_test(test_sentinel_unreachable_vs_unknown),
        cmocka_unit_test(test_sentinel_unknown_master),
        cmocka_unit_test(test_sentinel_master_not_master),
        cmocka_unit_test(test_switch_message),
        cmocka_unit_test(test_watcher_moves_epoch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
