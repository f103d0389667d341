/* poolstart — finding or starting the CGI front's responder pool (poolstart.h). */
#include "fcgi/cgi-front/poolstart.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define POOLSTART_START_MS 10000            /* default wait for a started pool to listen */
#define POOLSTART_IDLE_EXIT_S "300"         /* the started pool's default idle exit */

static int poolstart__path(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s%s", a, b);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* The socket path and the files beside it. The default directory
 * /tmp/aiproxy-cgi-<euid> is made 0700 and must be ours and private. */
int poolstart_paths(poolstart_paths_t *p)
{
    const char *env = getenv("AIPROXY_CGI_SOCKET");
    int rc;

    if (env && *env) {
        rc = poolstart__path(p->sock, sizeof(p->sock), env, "");
    } else {
        char dir[64];
        struct stat st;
        snprintf(dir, sizeof(dir), "/tmp/aiproxy-cgi-%u", (unsigned)geteuid());
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return -errno;
        if (lstat(dir, &st) != 0)
            return -errno;
        if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
            return -EPERM;   /* someone else's, or open to others: not ours to trust */
        rc = poolstart__path(p->sock, sizeof(p->sock), dir, "/pool.sock");
    }
    if (rc == 0)
        rc = poolstart__path(p->lock, sizeof(p->lock), p->sock, ".lock");
    if (rc == 0)
        rc = poolstart__path(p->start, sizeof(p->start), p->sock, ".start");
    if (rc == 0)
        rc = poolstart__path(p->pid, sizeof(p->pid), p->sock, ".pid");
    if (rc == 0)
        rc = poolstart__path(p->log, sizeof(p->log), p->sock, ".log");
    return rc;
}

/* A connected socket to the pool, or -errno (-ENOENT, -ECONNREFUSED: none). */
static int poolstart__connect(const char *path)
{
    struct sockaddr_un sa;
    int fd, rc;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    do {
        rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* The CGI variables: the request, not the deployment. The pool started
 * from a request's environment must not keep its headers (a client's
 * Authorization) nor believe it is a CGI program (GATEWAY_INTERFACE). */
int poolstart_is_request_var(const char *e)
{
    static const char *const exact[] = {
        "GATEWAY_INTERFACE=", "PATH_INFO=", "PATH_TRANSLATED=", "QUERY_STRING=",
        "CONTENT_TYPE=", "CONTENT_LENGTH=", "AUTH_TYPE=", "DOCUMENT_ROOT=", "DOCUMENT_URI=",
        "CONTEXT_PREFIX=", "CONTEXT_DOCUMENT_ROOT=", "HTTPS=", "UNIQUE_ID=", "REDIRECT_STATUS=",
        "SERVER_ADDR=", NULL,
    };
    static const char *const prefix[] = {
        "HTTP_", "REDIRECT_", "REQUEST_", "REMOTE_", "SCRIPT_", "SERVER_", "SSL_", NULL,
    };
    int i;

    for (i = 0; exact[i]; i++)
        if (strncmp(e, exact[i], strlen(exact[i])) == 0)
            return 1;
    for (i = 0; prefix[i]; i++)
        if (strncmp(e, prefix[i], strlen(prefix[i])) == 0)
            return 1;
    return 0;
}

/* In the grandchild: the environment and argv of the pool, then exec. Never
 * returns. `ready` is the write end of the starter's pipe, kept open across
 * exec: its EOF tells the starter the pool died. */
static void poolstart__exec_pool(const poolstart_paths_t *p, const char *bin, int ready)
{
    static char path_info[] = "AIPROXY_PATH_INFO=1";
    static char idle[] = "AIPROXY_IDLE_EXIT_S=" POOLSTART_IDLE_EXIT_S;
    char sockarg[POOLSTART_PATH + 8], *argv[12], **envp;
    const char *config = getenv("AIPROXY_CONFIG"), *threads = getenv("AIPROXY_CGI_THREADS");
    size_t n = 0, i;
    int a = 0, fd;

    for (i = 0; environ[i]; i++)
        n++;
    envp = calloc(n + 3, sizeof(*envp));
    if (!envp)
        _exit(127);
    n = 0;
    for (i = 0; environ[i]; i++)
        if (!poolstart_is_request_var(environ[i]) &&
            strncmp(environ[i], "AIPROXY_PATH_INFO=", 18) != 0)
            envp[n++] = environ[i];
    envp[n++] = path_info;   /* the routes are the PATH_INFO, as in plain CGI */
    if (!getenv("AIPROXY_IDLE_EXIT_S"))
        envp[n++] = idle;
    envp[n] = NULL;

    snprintf(sockarg, sizeof(sockarg), "unix:%s", p->sock);
    argv[a++] = (char *)"aiproxy-fcgi";
    argv[a++] = (char *)"-s";
    argv[a++] = sockarg;
    argv[a++] = (char *)"-w";
    argv[a++] = (char *)"0";
    argv[a++] = (char *)"--pidfile";
    argv[a++] = (char *)p->pid;
    if (threads && *threads) {
        argv[a++] = (char *)"-t";
        argv[a++] = (char *)threads;
    }
    if (config && *config) {
        argv[a++] = (char *)"-c";
        argv[a++] = (char *)config;
    }
    argv[a] = NULL;

    /* stdio: never the web server's pipes (it waits for their EOF) */
    fd = open("/dev/null", O_RDONLY);
    if (fd < 0 || dup2(fd, 0) < 0)
        _exit(127);
    fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
        _exit(127);
    if (ready > 2 && ready != 3) {
        if (dup2(ready, 3) < 0)
            _exit(127);
        ready = 3;
    }
    /* nothing else the web server gave us: every fd above the pipe */
    closefrom(ready + 1);
    execve(bin, argv, envp);
    _exit(127);
}

/* Starts the pool, detached. Returns the read end of a pipe whose write end
 * only the pool holds (EOF: it died), or -errno. */
static int poolstart__spawn(const poolstart_paths_t *p, const char *bin)
{
    int pipefd[2], status;
    pid_t pid;

    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pipefd[0]);
        close(pipefd[1]);
        return -e;
    }
    if (pid == 0) {
        int fl;
        close(pipefd[0]);
        setsid();
        if (fork() != 0)
            _exit(0);       /* the middle child: the pool is nobody's child here */
        signal(SIGPIPE, SIG_DFL);
        fl = fcntl(pipefd[1], F_GETFD);
        if (fl >= 0)
            fcntl(pipefd[1], F_SETFD, fl & ~FD_CLOEXEC);
        poolstart__exec_pool(p, bin, pipefd[1]);
    }
    close(pipefd[1]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return pipefd[0];
}

static long poolstart__env_long(const char *name, long dflt, long lo, long hi)
{
    const char *s = getenv(name);
    char *end;
    long v;

    if (!s || !*s)
        return dflt;
    errno = 0;
    v = strtol(s, &end, 10);
    return errno || *end || v < lo || v > hi ? dflt : v;
}

static long long poolstart__now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connects to the pool, starting one when none listens: one starter at a
 * time (<socket>.start), each re-checking first. Returns the socket or
 * -errno (then the caller falls back to plain CGI). */
int poolstart_acquire(const poolstart_paths_t *p, const char *bin)
{
    long long deadline = poolstart__now_ms() + poolstart__env_long("AIPROXY_CGI_START_MS", POOLSTART_START_MS, 1,
                                                            600000);
    int fd, sfd = -1, ready = -1;

    fd = poolstart__connect(p->sock);
    if (fd >= 0 || (fd != -ENOENT && fd != -ECONNREFUSED))
        return fd;
    sfd = open(p->start, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (sfd < 0) {
        fd = -errno;
        goto out;
    }
    for (;;) {   /* bounded: a starter holds it only while its pool comes up */
        struct timespec ts = { 0, 2 * 1000 * 1000 };
        if (flock(sfd, LOCK_EX | LOCK_NB) == 0)
            break;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            fd = -errno;
            goto out;
        }
        if (poolstart__now_ms() > deadline) {
            fd = -ETIMEDOUT;
            goto out;
        }
        nanosleep(&ts, NULL);
    }
    fd = poolstart__connect(p->sock);   /* another starter's pool */
    if (fd >= 0 || (fd != -ENOENT && fd != -ECONNREFUSED))
        goto out;
    ready = poolstart__spawn(p, bin);
    if (ready < 0) {
        fd = ready;
        goto out;
    }
    for (;;) {
        struct pollfd pf = { ready, POLLIN, 0 };
        fd = poolstart__connect(p->sock);
        if (fd >= 0 || (fd != -ENOENT && fd != -ECONNREFUSED))
            break;
        if (poolstart__now_ms() > deadline) {
            fd = -ETIMEDOUT;
            break;
        }
        /* the pool's exit closes the pipe: POLLHUP ends the wait */
        if (poll(&pf, 1, 5) > 0 && (pf.revents & (POLLHUP | POLLIN | POLLERR))) {
            fd = poolstart__connect(p->sock);
            if (fd < 0)
                fd = -ECHILD;
            break;
        }
    }
out:
    if (ready >= 0)
        close(ready);
    if (sfd >= 0)
        close(sfd);   /* releases the start lock */
    return fd;
}
