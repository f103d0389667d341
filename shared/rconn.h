/* rconn — where Redis is and how to reach it (REDIS_URL), for every process.
 *
 * URLs: redis://[[user]:password@]host[:port][/db] and unix:///path/to.sock[?db=N]
 * (password also as unix://:pass@/path). Keys of aiproxy all start with a prefix,
 * AIPROXY_REDIS_PREFIX (default "aiproxy:"), so several gateways can share one
 * Redis; docs/registry.md lists every key and channel. */
#ifndef AIPROXY_RCONN_H
#define AIPROXY_RCONN_H

#include <hiredis/hiredis.h>
#include <stddef.h>

typedef struct rconn_addr {
    char host[256];      /* "" for a unix socket */
    int port;
    char path[512];      /* unix socket path, "" for TCP */
    int db;
    char user[128];
    char password[256];
} rconn_addr_t;

/* Parses a REDIS_URL. No I/O. Returns 0 or -EINVAL with err saying what is wrong. */
int rconn_parse(const char *url, rconn_addr_t *out, char *err, size_t errlen);

/* REDIS_URL from the environment, else "redis://127.0.0.1:6379/0". Never NULL. */
const char *rconn_url(void);

/* AIPROXY_REDIS_PREFIX from the environment, else "aiproxy:". Never NULL. */
const char *rconn_prefix(void);

/* A blocking connection: connect (bounded by timeout_ms), AUTH, SELECT. The same
 * timeout bounds every later command. Returns the context, or NULL with err
 * naming the URL (without password) and the reason, e.g.
 * "cannot reach Redis at redis://127.0.0.1:6379/0: Connection refused". */
redisContext *rconn_connect(const char *url, int timeout_ms, char *err, size_t errlen);

#endif
