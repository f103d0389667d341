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
#include "fcgi/cgi-front/fcgirec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

#define FRONT_PATH 108                  /* sun_path's size: every derived path is capped alike */
#define FRONT_PARAMS_MAX (1u << 20)     /* the environment as PARAMS; the kernel caps it below */
#define FRONT_CHUNK 32768               /* STDIN record content */
#define FRONT_START_MS 10000            /* default wait for a started pool to listen */
#define FRONT_IDLE_EXIT_S "300"         /* the started pool's default idle exit */
#define FRONT_REQ_ID 1

struct front_paths {
    char sock[FRONT_PATH], lock[FRONT_PATH + 8], start[FRONT_PATH + 8];
    char pid[FRONT_PATH + 8], log[FRONT_PATH + 8];
};

/* An OpenAI-shaped error as the whole CGI response (only before any byte of
 * the pool's answer went out). The messages are constants without quotes. */
static void front__error(int status, const char *reason, const char *type, const char *msg)
{
    char out[1024];
    int n = snprintf(out, sizeof(out),
                     "Status: %d %s\r\nContent-Type: application/json\r\n\r\n"
                     "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,"
                     "\"code\":null}}\n", status, reason, msg, type);
    if (n > 0 && (size_t)n < sizeof(out) && write(1, out, (size_t)n) < 0)
        return;
}

static int front__write_all(int fd, const void *p, size_t len)
{
    const char *c = p;

    while (len) {
        ssize_t n = write(fd, c, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -(n < 0 ? errno : EIO);
        c += n;
        len -= (size_t)n;
    }
    return 0;
}

static int front__path(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s%s", a, b);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* The socket path and the files beside it. The default directory
 * /tmp/aiproxy-cgi-<euid> is made 0700 and must be ours and private. */
static int front__paths(struct front_paths *p)
{
    const char *env = getenv("AIPROXY_CGI_SOCKET");
    int rc;

    if (env && *env) {
        rc = front__path(p->sock, sizeof(p->sock), env, "");
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
        rc = front__path(p->sock, sizeof(p->sock), dir, "/pool.sock");
    }
    if (rc == 0)
        rc = front__path(p->lock, sizeof(p->lock), p->sock, ".lock");
    if (rc == 0)
        rc = front__path(p->start, sizeof(p->start), p->sock, ".start");
    if (rc == 0)
        rc = front__path(p->pid, sizeof(p->pid), p->sock, ".pid");
    if (rc == 0)
        rc = front__path(p->log, sizeof(p->log), p->sock, ".log");
    return rc;
}

/* A connected socket to the pool, or -errno (-ENOENT, -ECONNREFUSED: none). */
static int front__connect(const char *path)
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
static int front__is_request_var(const char *e)
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
static void front__exec_pool(const struct front_paths *p, const char *bin, int ready)
{
    static char path_info[] = "AIPROXY_PATH_INFO=1";
    static char idle[] = "AIPROXY_IDLE_EXIT_S=" FRONT_IDLE_EXIT_S;
    char sockarg[FRONT_PATH + 8], *argv[12], **envp;
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
        if (!front__is_request_var(environ[i]) &&
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
static int front__spawn(const struct front_paths *p, const char *bin)
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
        front__exec_pool(p, bin, pipefd[1]);
    }
    close(pipefd[1]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return pipefd[0];
}

static long front__env_long(const char *name, long dflt, long lo, long hi)
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

static long long front__now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connects to the pool, starting one when none listens: one starter at a
 * time (<socket>.start), each re-checking first. Returns the socket or
 * -errno (then the caller falls back to plain CGI). */
static int front__pool(const struct front_paths *p, const char *bin)
{
    long long deadline = front__now_ms() + front__env_long("AIPROXY_CGI_START_MS", FRONT_START_MS, 1,
                                                            600000);
    int fd, sfd = -1, ready = -1;

    fd = front__connect(p->sock);
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
        if (front__now_ms() > deadline) {
            fd = -ETIMEDOUT;
            goto out;
        }
        nanosleep(&ts, NULL);
    }
    fd = front__connect(p->sock);   /* another starter's pool */
    if (fd >= 0 || (fd != -ENOENT && fd != -ECONNREFUSED))
        goto out;
    ready = front__spawn(p, bin);
    if (ready < 0) {
        fd = ready;
        goto out;
    }
    for (;;) {
        struct pollfd pf = { ready, POLLIN, 0 };
        fd = front__connect(p->sock);
        if (fd >= 0 || (fd != -ENOENT && fd != -ECONNREFUSED))
            break;
        if (front__now_ms() > deadline) {
            fd = -ETIMEDOUT;
            break;
        }
        /* the pool's exit closes the pipe: POLLHUP ends the wait */
        if (poll(&pf, 1, 5) > 0 && (pf.revents & (POLLHUP | POLLIN | POLLERR))) {
            fd = front__connect(p->sock);
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

/* BEGIN_REQUEST and the environment as PARAMS, in records of at most
 * FCGIREC_MAX_CONTENT (a pair may span two: the stream is what counts). */
static int front__send_params(int fd)
{
    uint8_t *buf = malloc(FRONT_PARAMS_MAX), hdr[16];
    size_t len = 0, at = 0;
    int rc = -ENOMEM, i;

    if (!buf)
        goto out;
    for (i = 0; environ[i]; i++) {
        if ((rc = fcgirec_env_pair(buf, &len, FRONT_PARAMS_MAX, environ[i])) != 0)
            goto out;
    }
    fcgirec_begin(hdr, FRONT_REQ_ID);
    if ((rc = front__write_all(fd, hdr, 16)) != 0)
        goto out;
    while (at < len) {
        size_t n = len - at > FCGIREC_MAX_CONTENT ? FCGIREC_MAX_CONTENT : len - at;
        fcgirec_header(hdr, FCGIREC_PARAMS, FRONT_REQ_ID, n);
        if ((rc = front__write_all(fd, hdr, FCGIREC_HEADER_LEN)) != 0 ||
            (rc = front__write_all(fd, buf + at, n)) != 0)
            goto out;
        at += n;
    }
    fcgirec_header(hdr, FCGIREC_PARAMS, FRONT_REQ_ID, 0);
    rc = front__write_all(fd, hdr, FCGIREC_HEADER_LEN);
out:
    free(buf);
    return rc;
}

struct front_relay {
    int sock;
    long long body_left;        /* -1: read stdin to EOF */
    int stdin_open, sent_end;   /* stdin still read; the empty STDIN sent */
    uint8_t out[FCGIREC_HEADER_LEN + FRONT_CHUNK + FCGIREC_HEADER_LEN];
    size_t olen, ooff;
    uint8_t in[FCGIREC_HEADER_LEN + FCGIREC_MAX_CONTENT + 255];
    size_t ilen;
    int answered, ended;        /* a STDOUT byte went out; END_REQUEST seen */
};

/* Reads the next piece of the body into one STDIN record (and the empty one
 * that ends the stream once it is all read). */
static void front__fill_stdin(struct front_relay *r)
{
    size_t want = FRONT_CHUNK;
    ssize_t n = 0;

    if (r->body_left >= 0 && (long long)want > r->body_left)
        want = (size_t)r->body_left;
    if (want) {
        do {
            n = read(0, r->out + FCGIREC_HEADER_LEN, want);
        } while (n < 0 && errno == EINTR);
    }
    r->olen = r->ooff = 0;
    if (n > 0) {
        fcgirec_header(r->out, FCGIREC_STDIN, FRONT_REQ_ID, (size_t)n);
        r->olen = FCGIREC_HEADER_LEN + (size_t)n;
        if (r->body_left > 0)
            r->body_left -= n;
    }
    if (n <= 0 || r->body_left == 0) {   /* all read, or EOF early: the pool sees a short body */
        fcgirec_header(r->out + r->olen, FCGIREC_STDIN, FRONT_REQ_ID, 0);
        r->olen += FCGIREC_HEADER_LEN;
        r->stdin_open = 0;
    }
}

/* Handles the complete records in r->in. Returns 0, 1 at END_REQUEST, or
 * -EPIPE when the web server no longer takes the answer (client gone). */
static int front__records(struct front_relay *r)
{
    size_t at = 0;
    int rc = 0;

    while (r->ilen - at >= FCGIREC_HEADER_LEN) {
        fcgirec_header_t h;
        size_t total;
        if (fcgirec_parse_header(r->in + at, &h) != 0)
            return -EPROTO;
        total = FCGIREC_HEADER_LEN + h.content_len + h.padding_len;
        if (r->ilen - at < total)
            break;
        if (h.type == FCGIREC_STDOUT && h.content_len) {
            if (front__write_all(1, r->in + at + FCGIREC_HEADER_LEN, h.content_len) != 0)
                return -EPIPE;
            r->answered = 1;
        } else if (h.type == FCGIREC_STDERR && h.content_len) {
            (void)front__write_all(2, r->in + at + FCGIREC_HEADER_LEN, h.content_len);
        } else if (h.type == FCGIREC_END_REQUEST) {
            r->ended = 1;
            rc = 1;
        }
        at += total;
    }
    memmove(r->in, r->in + at, r->ilen - at);
    r->ilen -= at;
    return rc;
}

/* The request's body to the pool and its answer to stdout, both as they
 * come. Returns the exit code. */
static int front__relay(int sock)
{
    struct front_relay *r = calloc(1, sizeof(*r));
    const char *cl = getenv("CONTENT_LENGTH");
    int rc = 1;

    if (!r) {
        front__error(500, "Internal Server Error", "server_error", "the CGI front is out of memory");
        return 1;
    }
    r->sock = sock;
    r->body_left = -1;
    if (cl && *cl) {
        char *end;
        errno = 0;
        r->body_left = strtoll(cl, &end, 10);
        if (errno || *end || r->body_left < 0)
            r->body_left = 0;   /* a bad length: no body; the pool answers the request */
    }
    r->stdin_open = 1;
    if (front__send_params(sock) != 0)
        goto lost;
    if (r->body_left == 0)
        front__fill_stdin(r);   /* no body: stdin may never see EOF, do not wait on it */
    for (;;) {
        struct pollfd pf[2];
        int nf = 1, x;
        ssize_t n;

        pf[0].fd = sock;
        pf[0].events = POLLIN | (r->ooff < r->olen ? POLLOUT : 0);
        if (r->ooff >= r->olen && r->stdin_open) {
            pf[1].fd = 0;
            pf[1].events = POLLIN;
            nf = 2;
        }
        if (poll(pf, (nfds_t)nf, -1) < 0) {
            if (errno == EINTR)
                continue;
            goto lost;
        }
        if (nf == 2 && pf[1].revents)
            front__fill_stdin(r);
        if (pf[0].revents & POLLOUT) {
            n = write(sock, r->out + r->ooff, r->olen - r->ooff);
            if (n > 0) {
                r->ooff += (size_t)n;
            } else if (n < 0 && errno != EINTR && errno != EAGAIN) {
                r->stdin_open = 0;   /* the pool stopped reading: take its answer */
                r->olen = r->ooff = 0;
            }
        }
        if (!(pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        n = read(sock, r->in + r->ilen, sizeof(r->in) - r->ilen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto lost;
        r->ilen += (size_t)n;
        x = front__records(r);
        if (x == 1) {
            rc = 0;
            goto out;
        }
        if (x == -EPIPE) {
            rc = 0;   /* the client went away: closing the socket tells the pool */
            goto out;
        }
        if (x < 0)
            goto lost;
    }
lost:
    if (!r->answered)
        front__error(502, "Bad Gateway", "server_error",
                     "the aiproxy responder pool dropped the request; retry, and see the "
                     "pool's log (AIPROXY_CGI_SOCKET.log) if it persists");
out:
    free(r);
    return rc;
}

/* Plain CGI: aiproxy-fcgi serves this request itself. The body is still
 * unread on stdin. Returns only when exec fails. */
static void front__fallback(const char *bin)
{
    char *argv[] = { (char *)"aiproxy-fcgi", NULL };

    execv(bin, argv);
    fprintf(stderr, "aiproxy-cgi: cannot run %s: %s (set AIPROXY_FCGI_BIN)\n", bin,
            strerror(errno));
    front__error(500, "Internal Server Error", "server_error",
                 "the gateway cannot run its responder; the web server's error log says why");
}

/* aiproxy-fcgi's path: AIPROXY_FCGI_BIN, else beside our own file. */
static int front__bin(char *out, size_t cap)
{
    const char *env = getenv("AIPROXY_FCGI_BIN");
    char self[PATH_MAX];
    ssize_t n;
    char *slash;

    if (env && *env)
        return front__path(out, cap, env, "");
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -ENOENT;
    self[n] = '\0';
    slash = strrchr(self, '/');
    if (!slash)
        return -ENOENT;
    slash[1] = '\0';
    return front__path(out, cap, self, "aiproxy-fcgi");
}

int main(void)
{
    struct front_paths p;
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
        front__error(500, "Internal Server Error", "server_error",
                     "the gateway cannot find aiproxy-fcgi (set AIPROXY_FCGI_BIN)");
        return 1;
    }
    if (!getenv("GATEWAY_INTERFACE")) {
        fprintf(stderr, "aiproxy-cgi: run me as a CGI program (docs/shared-hosting.md)\n");
        return 2;
    }
    if ((pool && strcmp(pool, "0") == 0) || front__paths(&p) != 0)
        goto fallback;
    /* held shared until exit: an idle pool cannot leave under this request */
    lfd = open(p.lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lfd < 0 || flock(lfd, LOCK_SH) != 0)
        goto fallback;
    sock = front__pool(&p, bin);
    if (sock < 0) {
        fprintf(stderr, "aiproxy-cgi: no responder pool on %s (%s): serving as plain CGI\n",
                p.sock, strerror(-sock));
        goto fallback;
    }
    return front__relay(sock);
fallback:
    if (lfd >= 0)
        close(lfd);
    signal(SIGPIPE, SIG_DFL);
    front__fallback(bin);
    return 1;
}
