/* tredis — see tredis.h. */
#include "tests/unit/support/tredis.h"

#include "shared/rconn.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t tredis__pid = -1;
static char tredis__sock[128];
static char tredis__url[160];

static int tredis__ping(void)
{
    char err[256];
    redisContext *c = rconn_connect(tredis__url, 200, err, sizeof err);
    redisReply *r;
    int ok;

    if (!c)
        return 0;
    r = redisCommand(c, "PING");
    ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

int tredis_start(const char *tag)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    pid_t pid;

    signal(SIGPIPE, SIG_IGN);
    if (!tredis__sock[0]) {
        snprintf(tredis__sock, sizeof tredis__sock, "/tmp/aiproxy-test-%s-%d.sock", tag,
                 (int)getpid());
        snprintf(tredis__url, sizeof tredis__url, "unix://%s", tredis__sock);
    }
    unlink(tredis__sock);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl("/usr/bin/redis-server", "redis-server", "--port", "0", "--unixsocket",
              tredis__sock, "--save", "", "--appendonly", "no", "--loglevel", "warning",
              "--logfile", "/dev/null", (char *)NULL);
        _exit(127);
    }
    tredis__pid = pid;
    for (int i = 0; i < 500; i++) {
        if (tredis__ping())
            return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            tredis__pid = -1;
            break;
        }
        nanosleep(&ts, NULL);
    }
    tredis_stop();
    return -1;
}

const char *tredis_url(void)
{
    return tredis__url;
}

const char *tredis_sock(void)
{
    return tredis__sock;
}

int tredis_drop_registry(const char *prefix)
{
    char err[256];
    redisContext *c = rconn_connect(tredis__url, 1000, err, sizeof err);
    redisReply *r;
    int rc;

    if (!c)
        return -1;
    r = redisCommand(c, "DEL %sreg:version %sreg:assistants %sreg:backends %sreg:mcp_servers "
                     "%sreg:settings", prefix, prefix, prefix, prefix, prefix);
    rc = r && r->type == REDIS_REPLY_INTEGER ? 0 : -1;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}

void tredis_stop(void)
{
    if (tredis__pid > 0) {
        kill(tredis__pid, SIGKILL);
        waitpid(tredis__pid, NULL, 0);
        tredis__pid = -1;
    }
    if (tredis__sock[0])
        unlink(tredis__sock);
}
