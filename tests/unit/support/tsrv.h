/* tsrv — a tiny in-process HTTP/1.1 server for unit tests: it plays the
 * upstream LLM for the agent's tests. One connection at a time, on a thread,
 * on 127.0.0.1 with a kernel-chosen port. */
#ifndef AIPROXY_TSRV_H
#define AIPROXY_TSRV_H

#include <stddef.h>

typedef struct tsrv tsrv_t;

/* Called on the server thread once per request, after the head and the body
 * (Content-Length bytes) were read: `req` is the whole request text, `body`
 * points into it. Write the answer to fd (tsrv_say); the connection is closed
 * when the handler returns. */
typedef void (*tsrv_handler)(void *ud, int fd, const char *req, const char *body);

/* Starts the server; NULL on failure. */
tsrv_t *tsrv_start(tsrv_handler handler, void *ud);

int tsrv_port(const tsrv_t *s);

/* Stops the thread and frees everything. NULL is a no-op. */
void tsrv_stop(tsrv_t *s);

/* Sends all of a string (errors ignored: the client may have left). */
void tsrv_say(int fd, const char *text);

/* Waits, at most 10 s, for the client to close its end; 1 when it did. */
int tsrv_wait_close(int fd);

#endif
