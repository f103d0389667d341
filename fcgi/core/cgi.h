/* cgi — plain CGI mode: the web server starts the program for one request,
 * with the request's meta-variables in the environment, its body on stdin,
 * and reads the answer (a "Status:" header, headers, body) from stdout.
 *
 * The request goes through the same serve path as a FastCGI one (routes,
 * auth, the agent loop, streaming, errors in each surface's shape): only the
 * streams differ. libfcgi's fcgiapp layer has no CGI streams (its CGI
 * fallback lives in the stdio API, which is not thread-safe and owns
 * stdout), so this module builds FCGX_Streams over file descriptors, whose
 * buffer procs are the public fillBuffProc/emptyBuffProc hooks of
 * FCGX_Stream. FCGX_FFlush on such a stream is a write(2): a CGI stream is as
 * live as a FastCGI one. */
#ifndef AIPROXY_CGI_H
#define AIPROXY_CGI_H

#include "fcgi/core/serve.h"

#include <fcgiapp.h>

/* Is this process a CGI program? True when fd 0 is not a FastCGI listen
 * socket (libfcgi's FCGX_IsCGI) and the web server set GATEWAY_INTERFACE, as
 * every CGI server does: a shell with neither keeps today's error message. */
int cgi_detect(void);

typedef struct cgi_io cgi_io_t;

/* Streams over `in_fd` (read) and `out_fd`, `err_fd` (written; buffered
 * until FCGX_FFlush or cgi_io_close). The fds are borrowed: the caller (the
 * process's exit) closes them. NULL on ENOMEM. */
cgi_io_t *cgi_io_new(int in_fd, int out_fd, int err_fd);

/* An FCGX_Request over the streams, `envp` as its params (borrowed; for CGI
 * the process's environ). ipcFd is -1: there is no connection to keep or to
 * poll, so a hang-up shows as a failed write. Valid until cgi_io_free. */
FCGX_Request *cgi_io_request(cgi_io_t *io, char **envp);

/* Reads and drops what is left of the request body that the request did
 * not read (an answer from the headers: 401, 413...), after flushing the
 * answer: `content_length` bytes (the CONTENT_LENGTH variable), or, when
 * the server sent none (a chunked upload), up to EOF unless `method` is GET
 * or HEAD. The web server writes the whole body before it reads the answer,
 * and a process that exits with body bytes unread makes mod_cgid's socket
 * reset: the answer would be lost. Returns 0, -EFBIG when more than 64 MiB
 * are left (the client sent that much past a refusal: not all read), -EIO
 * when the body ends early. */
int cgi_io_discard(cgi_io_t *io, const char *content_length, const char *method);

/* Flushes and closes the output streams. Returns 0, or -EPIPE when a write
 * failed (the web server dropped the request). */
int cgi_io_close(cgi_io_t *io);

/* Frees the streams (after cgi_io_close; NULL is fine). */
void cgi_io_free(cgi_io_t *io);

/* Answers a request that cannot be served at all (the configuration does
 * not load) with `status` and an OpenAI-shaped error on stdout, instead of
 * leaving the web server to say "premature end of script headers" in HTML.
 * `msg` is shown to the client: say what to do, not where files are.
 * Returns 0, or -EPIPE when stdout is gone. */
int cgi_send_error(int status, const char *code, const char *msg);

/* Serves the one request of a CGI process: services for it (registry
 * connection, agent, broker client) built, used and freed; no pool, no
 * threads. `cfg` is the serve configuration main built (cfg->path_info set).
 * Returns the process's exit code: 0 once an answer went out, even an error
 * answer; 1 when none could be written. */
int cgi_run(const serve_cfg_t *cfg);

#endif
