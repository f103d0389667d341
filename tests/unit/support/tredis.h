/* tredis — a private redis-server for unit tests: on a unix socket under
 * /tmp named after the test program and its pid, no persistence, killed with
 * the test (PR_SET_PDEATHSIG) if the test dies first. One per process. */
#ifndef AIPROXY_TREDIS_H
#define AIPROXY_TREDIS_H

/* Names the socket after `tag` (once, before the first start) and starts the
 * server, waiting (bounded, 5 s) until it answers PING. Also ignores SIGPIPE,
 * as every daemon does: a write to a Redis that went away must fail, not
 * kill. Returns 0, or -1 when the server did not come up (then stopped). */
int tredis_start(const char *tag);

/* The server's URL ("unix:///tmp/...sock"); valid after tredis_start. */
const char *tredis_url(void);

/* The path of its unix socket; valid after tredis_start. */
const char *tredis_sock(void);

/* Drops the registry keys of `prefix` (as a Redis restarted empty would
 * lose them). Returns 0, or -1 when Redis did not answer. */
int tredis_drop_registry(const char *prefix);

/* Kills the server (SIGKILL, reaped) and removes its socket. Restarting
 * with tredis_start gives an empty server on the same URL. */
void tredis_stop(void);

#endif
