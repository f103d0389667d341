/* transport_stdio — an MCP server as a child process: newline-delimited
 * JSON-RPC on its stdin/stdout, its stderr logged line by line under its name.
 *
 * Handles: the process, three pipes and one timer (ready, then the shutdown
 * grace periods). The transport reports on_closed only when every handle is
 * closed and the child is reaped, so the owner can free it at once. */
#include "mcp-broker/transport_impl.h"
#include "mcp-broker/childenv.h"
#include "mcp-broker/jsonrpc.h"
#include "shared/log.h"
#include "shared/caps.h"
#include "shared/jget.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STDIO_GRACE_MS   2000         /* after closing stdin, before SIGTERM, then SIGKILL */
#define STDIO_READ_BUF   65536        /* one read of stdout or stderr (the framers copy it) */

extern char **environ;

typedef struct stdio_t {
    struct mcp_transport base;        /* first: the transport.c view */
    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_timer_t timer;
    int open_handles;                 /* handles not yet through their close callback */
    int exited;                       /* exit_cb ran (the child is reaped) */
    int ready_sent;
    int term_stage;                   /* 0 none, 1 SIGTERM sent, 2 SIGKILL sent */
    int orphan;                       /* spawn failed: free on the last handle close */
    char reason[256];
    jsonrpc_framer_t fout, ferr;
    char *rbuf;                       /* STDIO_READ_BUF bytes, reused by every read */
    int rbuf_busy;                    /* handed to libuv, its read callback not yet run */
} stdio_t;

typedef struct stdio_write {
    uv_write_t req;
    char data[];             /* the message and its "\n" */
} stdio_write_t;

static void stdio__handle_closed(uv_handle_t *h)
{
    stdio_t *s = h->data;

    if (--s->open_handles > 0)
        return;
    if (s->orphan) {
        /* the constructor failed after creating handles: nobody owns us */
        jsonrpc_framer_free(&s->fout);
        jsonrpc_framer_free(&s->ferr);
        free(s->rbuf);
        free(s);
        return;
    }
    mcp_transport__closed(&s->base, s->reason[0] ? s->reason : "closed");
}

static void stdio__close_handle(stdio_t *s, uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, stdio__handle_closed);
    (void)s;
}

/* Everything but the process handle; the process closes in its exit callback. */
static void stdio__close_pipes(stdio_t *s)
{
    stdio__close_handle(s, (uv_handle_t *)&s->in);
    stdio__close_handle(s, (uv_handle_t *)&s->out);
    stdio__close_handle(s, (uv_handle_t *)&s->err);
    stdio__close_handle(s, (uv_handle_t *)&s->timer);
}

static void stdio__on_exit(uv_process_t *p, int64_t status, int sig)
{
    stdio_t *s = p->data;

    s->exited = 1;
    if (!s->reason[0]) {
        if (sig)
            snprintf(s->reason, sizeof(s->reason), "process killed by signal %d", sig);
        else
            snprintf(s->reason, sizeof(s->reason), "process exited with status %lld", (long long)status);
    }
    log_info("mcp server '%s': %s", s->base.name, s->reason);
    stdio__close_pipes(s);
    stdio__close_handle(s, (uv_handle_t *)&s->proc);
}

/* Every read lands in the same buffer (a malloc and free of 64 KiB per read
 * made glibc consolidate its free lists each time): libuv reads a stream
 * right after asking for its buffer and hands it back in the read callback,
 * so the two streams never hold it at once; a fresh one is taken only if
 * that ever changes. */
static void stdio__alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    stdio_t *s = h->data;

    (void)hint;
    if (!s->rbuf)
        s->rbuf = malloc(STDIO_READ_BUF);
    b->base = s->rbuf && !s->rbuf_busy ? s->rbuf : malloc(STDIO_READ_BUF);
    b->len = b->base ? STDIO_READ_BUF : 0;
    if (b->base && b->base == s->rbuf)
        s->rbuf_busy = 1;
}

static void stdio__release(stdio_t *s, const uv_buf_t *b)
{
    if (b->base && b->base == s->rbuf)
        s->rbuf_busy = 0;
    else
        free(b->base);
}

static int stdio__on_line(void *ud, const char *line, size_t len)
{
    stdio_t *s = ud;

    if (!s->base.closed && s->base.cbs.on_message)
        s->base.cbs.on_message(s->base.cbs.ud, line, len);
    return 0;
}

static int stdio__on_errline(void *ud, const char *line, size_t len)
{
    stdio_t *s = ud;

    log_info("[%s] %.*s", s->base.name, (int)len, line);
    return 0;
}

static void stdio__on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    stdio_t *s = st->data;
    int is_err = (st == (uv_stream_t *)&s->err);

    if (n > 0) {
        int rc = jsonrpc_framer_feed(is_err ? &s->ferr : &s->fout, b->base, (size_t)n,
                                     is_err ? stdio__on_errline : stdio__on_line, s);
        if (rc == -ENOSPC)
            log_warn("mcp server '%s': dropped an over-long line on %s", s->base.name,
                     is_err ? "stderr" : "stdout");
    } else if (n < 0) {
        uv_read_stop(st);
        if (!is_err && n != UV_EOF)
            log_warn("mcp server '%s': stdout: %s", s->base.name, uv_strerror((int)n));
    }
    stdio__release(s, b);
}

static void stdio__on_timer(uv_timer_t *t)
{
    stdio_t *s = t->data;

    if (!s->ready_sent && !s->base.closing) {
        s->ready_sent = 1;
        if (s->base.cbs.on_ready)
            s->base.cbs.on_ready(s->base.cbs.ud);
        return;
    }
    if (s->exited)
        return;
    if (s->term_stage == 0) {
        log_info("mcp server '%s': still running after stdin closed, sending SIGTERM", s->base.name);
        uv_process_kill(&s->proc, SIGTERM);
        s->term_stage = 1;
        uv_timer_start(&s->timer, stdio__on_timer, STDIO_GRACE_MS, 0);
    } else if (s->term_stage == 1) {
        log_warn("mcp server '%s': ignored SIGTERM, sending SIGKILL", s->base.name);
        uv_process_kill(&s->proc, SIGKILL);
        s->term_stage = 2;
    }
}

static void stdio__on_write(uv_write_t *req, int status)
{
    stdio_write_t *w = (stdio_write_t *)req;

    if (status < 0 && status != UV_ECANCELED)
        log_warn("mcp server '%s': write to stdin: %s",
                 ((stdio_t *)req->handle->data)->base.name, uv_strerror(status));
    free(w);
}

static int stdio_send(mcp_transport_t *t, const char *json, size_t len)
{
    stdio_t *s = (stdio_t *)t;
    stdio_write_t *w = NULL;
    uv_buf_t buf;
    int rc;

    if (s->exited || uv_is_closing((uv_handle_t *)&s->in))
        return -ENOTCONN;
    w = malloc(sizeof(*w) + len + 1);
    if (!w)
        return -ENOMEM;
    memcpy(w->data, json, len);
    w->data[len] = '\n';
    buf = uv_buf_init(w->data, (unsigned int)(len + 1)); /* libuv copies the array, not the bytes */
    rc = uv_write(&w->req, (uv_stream_t *)&s->in, &buf, 1, stdio__on_write);
    if (rc < 0) {
        free(w);
        return -ENOTCONN;
    }
    return 0;
}

static void stdio_close(mcp_transport_t *t)
{
    stdio_t *s = (stdio_t *)t;

    if (!s->reason[0])
        snprintf(s->reason, sizeof(s->reason), "closed");
    if (s->exited)
        return; /* handles are already closing */
    /* MCP stdio shutdown: close stdin, wait, SIGTERM, wait, SIGKILL. */
    stdio__close_handle(s, (uv_handle_t *)&s->in);
    uv_timer_stop(&s->timer);
    s->ready_sent = 1;
    uv_timer_start(&s->timer, stdio__on_timer, STDIO_GRACE_MS, 0);
}

static void stdio_free(mcp_transport_t *t)
{
    stdio_t *s = (stdio_t *)t;

    jsonrpc_framer_free(&s->fout);
    jsonrpc_framer_free(&s->ferr);
    free(s->rbuf);
    free(s);
}

static const struct mcp_transport_ops stdio_ops = {
    .send = stdio_send,
    .set_protocol_version = NULL,
    .close = stdio_close,
    .free = stdio_free,
};

static void stdio__free_strv(char **v)
{
    if (!v)
        return;
    for (size_t i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}

mcp_transport_t *mcp_stdio_new(uv_loop_t *loop, const char *name, json_object *server,
                               const mcp_transport_cbs_t *cbs, char *err, size_t errlen)
{
    stdio_t *s = NULL;
    mcp_transport_t *res = NULL;
    json_object *jargs = jget_arr(server, "args");
    const char *cmd = jget_str(server, "command"), *cwd = jget_str(server, "cwd");
    char **argv = NULL, **envp = NULL;
    size_t nargs = 0;
    uv_process_options_t opt;
    uv_stdio_container_t stdio[3];
    childenv_user_t user;
    int rc;

    if (!cmd || !*cmd) {
        snprintf(err, errlen, "MCP server '%s': stdio transport needs a command", name);
        goto out;
    }
    if (jargs)
        nargs = json_object_array_length(jargs);
    if (cwd && !*cwd)
        cwd = NULL;

    if (childenv_user_resolve(geteuid(), getenv(CHILDENV_USER_ENV), &user, err, errlen) < 0)
        goto out;
    argv = calloc(nargs + 2, sizeof(char *));
    envp = childenv_build(environ, server, &user); /* never ours whole: docs/security.md */
    s = calloc(1, sizeof(*s));
    if (!argv || !envp || !s) {
        snprintf(err, errlen, "MCP server '%s': out of memory", name);
        goto out;
    }
    argv[0] = strdup(cmd);
    for (size_t i = 0; i < nargs; i++)
        argv[i + 1] = strdup(json_object_get_string(json_object_array_get_idx(jargs, i)));
    for (size_t i = 0; i < nargs + 1; i++)
        if (!argv[i]) {
            snprintf(err, errlen, "MCP server '%s': out of memory", name);
            goto out;
        }

    mcp_transport__init(&s->base, &stdio_ops, loop, name, cbs);
    jsonrpc_framer_init(&s->fout, CAP_STDIO_LINE);
    jsonrpc_framer_init(&s->ferr, CAP_STDIO_ERRLINE);
    uv_pipe_init(loop, &s->in, 0);
    uv_pipe_init(loop, &s->out, 0);
    uv_pipe_init(loop, &s->err, 0);
    uv_timer_init(loop, &s->timer);
    s->in.data = s->out.data = s->err.data = s->timer.data = s->proc.data = s;
    s->open_handles = 4;

    memset(&opt, 0, sizeof(opt));
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&s->in;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&s->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&s->err;
    opt.file = argv[0];
    opt.args = argv;
    opt.env = envp;
    opt.cwd = cwd;
    if (user.drop) {
        /* libuv also clears the supplementary groups before setgid/setuid */
        opt.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
        opt.uid = user.uid;
        opt.gid = user.gid;
    }
    opt.exit_cb = stdio__on_exit;
    opt.stdio_count = 3;
    opt.stdio = stdio;
    rc = uv_spawn(loop, &s->proc, &opt);
    if (rc < 0) {
        snprintf(err, errlen, "spawning '%s'%s%s failed: %s", cmd, cwd ? " in " : "",
                 cwd ? cwd : "", uv_strerror(rc));
        /* uv_spawn failed: the process handle is closed by us as well */
        s->orphan = 1; /* nobody is told: the constructor reports the failure */
        s->open_handles++;
        stdio__close_pipes(s);
        uv_close((uv_handle_t *)&s->proc, stdio__handle_closed);
        s = NULL;
        goto out;
    }
    s->open_handles++;
    log_info("mcp server '%s': started '%s' (pid %d%s%s)", name, cmd, s->proc.pid,
             user.drop ? ", user " : "", user.drop ? user.name : "");
    uv_read_start((uv_stream_t *)&s->out, stdio__alloc, stdio__on_read);
    uv_read_start((uv_stream_t *)&s->err, stdio__alloc, stdio__on_read);
    uv_timer_start(&s->timer, stdio__on_timer, 0, 0); /* on_ready from the loop, not from here */
    res = &s->base;
    s = NULL;
out:
    if (s && !s->base.ops)
        free(s); /* never initialised any handle */
    stdio__free_strv(argv);
    childenv_free(envp);
    return res;
}
