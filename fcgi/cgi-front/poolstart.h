/* poolstart — the CGI front's responder pool: where its socket is, whether
 * it listens, and starting it when it does not (one starter at a time,
 * detached, with the environment minus the request). No I/O on the request
 * itself (relay.h does that). libc only. */
#ifndef AIPROXY_POOLSTART_H
#define AIPROXY_POOLSTART_H

#include <stddef.h>

#define POOLSTART_PATH 108   /* sun_path's size: every derived path is capped alike */

typedef struct poolstart_paths {
    char sock[POOLSTART_PATH];
    char lock[POOLSTART_PATH + 8];    /* SOCKET.lock: held shared by each front per request */
    char start[POOLSTART_PATH + 8];   /* SOCKET.start: held exclusively by the one starter */
    char pid[POOLSTART_PATH + 8];     /* SOCKET.pid: the pool's --pidfile */
    char log[POOLSTART_PATH + 8];     /* SOCKET.log: the pool's stdout and stderr */
} poolstart_paths_t;

/* Fills *p from AIPROXY_CGI_SOCKET, or the default
 * /tmp/aiproxy-cgi-<euid>/pool.sock (the directory made 0700; refused unless
 * it is a directory of ours that no one else may enter). Returns 0,
 * -ENAMETOOLONG, -EPERM (not ours or not private), or another -errno. */
int poolstart_paths(poolstart_paths_t *p);

/* 1 when the environ entry "NAME=VALUE" belongs to the request (HTTP_*,
 * REDIRECT_*, REQUEST_*, REMOTE_*, SERVER_*, SCRIPT_*, SSL_*, and the other
 * CGI variables: GATEWAY_INTERFACE, PATH_INFO, QUERY_STRING, CONTENT_*...),
 * which a pool started from it must not keep; else 0. */
int poolstart_is_request_var(const char *entry);

/* A socket connected to the pool at p->sock. When none listens, starts one
 * (bin: aiproxy-fcgi's path) under p->start and waits for it up to
 * AIPROXY_CGI_START_MS (default 10000), or until it exits. The caller holds
 * p->lock shared. Returns the fd (close-on-exec; the caller owns it), or a
 * -errno: then there is no pool to be had (the caller serves as plain CGI). */
int poolstart_acquire(const poolstart_paths_t *p, const char *bin);

#endif
