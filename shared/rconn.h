/* rconn — where Redis is and how to reach it (REDIS_URL), for every process.
 *
 * URLs: redis://[[user]:password@]host[:port][/db] and unix:///path/to.sock[?db=N]
 * (password also as unix://:pass@/path), and
 * redis+sentinel://[[user]:password@]host1[:26379],host2[:26379]/mastername[/db]
 *   [?sentinel_password=PW]: the master is asked of the Sentinels on every
 * connect (the password in the userinfo is the master's; docs/redis.md). Keys of
 * aiproxy all start with a prefix,
 * AIPROXY_REDIS_PREFIX (default "aiproxy:"), so several gateways can share one
 * Redis; docs/registry.md lists every key and channel. */
#ifndef AIPROXY_RCONN_H
#define AIPROXY_RCONN_H

#include "shared/caps.h"

#include <hiredis/hiredis.h>
#include <stddef.h>

typedef struct rconn_hostport {
    char host[256];
    int port;
} rconn_hostport_t;

typedef struct rconn_addr {
    char host[256];      /* "" for a unix socket or Sentinel URL */
    int port;
    char path[512];      /* unix socket path, "" for TCP */
    int db;
    char user[128];      /* the master's (or the one Redis's) credentials */
    char password[256];
    /* redis+sentinel:// only (master "" otherwise): the master's name, the
     * Sentinels in the URL's order, and their own password ("" for none) */
    char master[128];
    int nsentinels;
    rconn_hostport_t sentinels[CAP_REDIS_SENTINELS];
    char sentinel_password[256];
} rconn_addr_t;

/* Parses a REDIS_URL. No I/O. Returns 0 or -EINVAL with err saying what is wrong. */
int rconn_parse(const char *url, rconn_addr_t *out, char *err, size_t errlen);

/* The address of `a` for messages and logs: the URL without any password,
 * e.g. "redis+sentinel://s1:26379,s2:26379/mymaster/0". Always terminated. */
void rconn_redacted(const rconn_addr_t *a, char *out, size_t n);

/* For a Sentinel address: asks the Sentinels for the master (each tried in
 * turn, bounded by a short timeout, the last one that answered first), checks
 * with ROLE that it is one, and fills *out with a plain redis:// address of it
 * (credentials and db of `a`, no Sentinels). For any other address *out = *a
 * and nothing is done. Blocks up to a few Sentinel timeouts plus timeout_ms.
 * Returns 0, or -EHOSTUNREACH (no Sentinel answered), -ENOENT (none knows the
 * master), -ECONNREFUSED (the master named cannot be reached or is not a
 * master) with err saying which, never a password. For callers that connect
 * themselves (the broker's async connections). */
int rconn_resolve(const rconn_addr_t *a, int timeout_ms, rconn_addr_t *out, char *err,
                  size_t errlen);

/* A number that moves each time a Sentinel announces that the master moved
 * (+switch-master, heard by a thread rconn_connect starts on its first
 * Sentinel connection in a process); always 0 without a Sentinel URL. A
 * holder of a long-lived connection keeps the value it saw before connecting
 * and, when it differs, drops the connection and reconnects: a master demoted
 * in a switchover keeps accepting writes (then lost) until Sentinel
 * reconfigures it, seconds later. Thread-safe, no I/O. */
unsigned rconn_epoch(void);

/* 1 when `r` is an error reply saying this connection no longer reaches a
 * usable master — READONLY (a replica: the old master after a failover),
 * LOADING, MASTERDOWN, also inside a script's error text — so the caller drops
 * the connection as if it were lost and reconnects (which re-resolves the
 * master). 0 for any other reply, NULL included. No I/O. */
int rconn_reply_lost(const redisReply *r);

/* REDIS_URL from the environment, else "redis://127.0.0.1:6379/0". Never NULL. */
const char *rconn_url(void);

/* AIPROXY_REDIS_PREFIX from the environment, else "aiproxy:". Never NULL. */
const char *rconn_prefix(void);

/* A blocking connection: connect (bounded by timeout_ms), AUTH, SELECT. The same
 * timeout bounds every later command. A Sentinel URL is resolved first, on
 * every call (rconn_resolve; the master's ROLE is checked on the connection
 * returned). Returns the context, or NULL with err naming the URL (without
 * password) and the reason, e.g.
 * "cannot reach Redis at redis://127.0.0.1:6379/0: Connection refused". */
redisContext *rconn_connect(const char *url, int timeout_ms, char *err, size_t errlen);

#endif
