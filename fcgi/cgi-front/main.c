/* aiproxy-cgi — the CGI front (issue 14; docs/shared-hosting.md). The web
 * server runs this small program as the CGI program; it hands the request to
 * a pool of responders (aiproxy-fcgi) on a unix socket as a FastCGI request
 * and copies the answer back as it arrives. So a request costs a libc-only
 * process start, not the 38 shared libraries aiproxy-fcgi maps.
 *
 * The pool is started on demand: when nothing listens on the socket
 * (AIPROXY_CGI_SOCKET, default /tmp/aiproxy-cgi-<uid>/pool.sock), the first
 * front to take <socket>.start (flock, exclusive) starts one, detached
 * (double fork, setsid, stdio to <socket>.log), with the request's
 * environment minus the request itself (HTTP_* and the CGI variables), and
 * AIPROXY_IDLE_EXIT_S (default 300) so it leaves when unused. Every front
 * holds <socket>.lock shared from before it connects until it exits; the
 * idle pool takes it exclusively before it removes its socket and exits, so
 * no request is ever sent to a pool that is going away.
 *
 * When there is no pool and none can be started (AIPROXY_CGI_POOL=0, a
 * socket directory that cannot be made, a pool that does not come up within
 * AIPROXY_CGI_START_MS), the front execs aiproxy-fcgi, which serves the
 * request itself in plain CGI mode. Its path: AIPROXY_FCGI_BIN, default
 * aiproxy-fcgi beside this program's own file (a symlink is followed).
 *
 * libc only, and no stdio on the request path: every write is a write(2),
 * so a stream reaches the web server chunk by chunk. */
#include "fcgi/cgi-front/poolstart.h"
#include "fcgi/cgi-front/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* Plain CGI: aiproxy-fcgi serves this request itself. The body is still
 * unread on stdin. Returns only when exec fails. */
static void front__fallback(const char *bin)
{
    char *argv[] = { (char *)"aiproxy-fcgi", NULL };

    execv(bin, argv);
    fprintf(stderr, "aiproxy-cgi: cannot run %s: %s (set AIPROXY_FCGI_BIN)\n", bin,
            strerror(errno));
    relay_error(500, "Internal Server Error", "server_error",
                "the gateway cannot run its responder; the web server's error log says why");
}

static int front__join(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s%s", a, b);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* aiproxy-fcgi's path: AIPROXY_FCGI_BIN, else beside our own file. */
static int front__bin(char *out, size_t cap)
{
    const char *env = getenv("AIPROXY_FCGI_BIN");
    char self[PATH_MAX];
    ssize_t n;
    char *slash;

    if (env && *env)
        return front__join(out, cap, env, "");
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -ENOENT;
    self[n] = '\0';
    slash = strrchr(self, '/');
    if (!slash)
        return -ENOENT;
    slash[1] = '\0';
    return front__join(out, cap, self, "aiproxy-fcgi");
}

int main(void)
{
    poolstart_paths_t p;
    char bin[PATH_MAX];
    const char *pool = getenv("AIPROXY_CGI_POOL");
    int lfd = -1, sock, fd;

    /* fds 0-2 taken, so no pipe or lock of ours can become the pool's stdio */
    while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
        ;
    if (fd > 2)
        close(fd);
    signal(SIGPIPE, SIG_IGN);
    if (front__bin(bin, sizeof(bin)) != 0) {
        relay_error(500, "Internal Server Error", "server_error",
                    "the gateway cannot find aiproxy-fcgi (set AIPROXY_FCGI_BIN)");
        return 1;
    }
    if (!getenv("GATEWAY_INTERFACE")) {
        fprintf(stderr, "aiproxy-cgi: run me as a CGI program (docs/shared-hosting.md)\n");
        return 2;
    }
    if ((pool && strcmp(pool, "0") == 0) || poolstart_paths(&p) != 0)
        goto fallback;
    /* held shared until exit: an idle pool cannot leave under this request */
    lfd = open(p.lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lfd < 0 || flock(lfd, LOCK_SH) != 0)
        goto fallback;
    sock = poolstart_acquire(&p, bin);
    if (sock < 0) {
        fprintf(stderr, "aiproxy-cgi: no responder pool on %s (%s): serving as plain CGI\n",
                p.sock, strerror(-sock));
        goto fallback;
    }
    return relay_run(sock);
fallback:
    if (lfd >= 0)
        close(lfd);
    signal(SIGPIPE, SIG_DFL);
    front__fallback(bin);
    return 1;
}
