/* autostart — the MCP broker on demand (docs/broker-on-demand.md, "The MCP
 * broker on demand"): a responder that finds no broker listening on the
 * calls channel starts one itself, detached from the request, guarded by a
 * lock in Redis so that one starts however many requests notice at once.
 *
 * The lock is <prefix>broker:autostart. A responder takes it with
 * SET NX PX <start_timeout> holding a random token, then starts the broker
 * with that token in its environment (AIPROXY_BROKER_TOKEN); the broker, once
 * up, replaces the token with its own record {"pid","broker","token"} and
 * keeps it alive as long as it runs (mcp-broker/ondemand.h). So while a
 * started broker lives, or one is starting, no responder starts another; a
 * broker that dies (or never came up) lets its lock expire, and the next
 * request that finds no broker starts a new one.
 *
 * Process-wide: autostart_setup runs once in main, before any thread; the
 * rest only reads what it set. */
#ifndef AIPROXY_AUTOSTART_H
#define AIPROXY_AUTOSTART_H

#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AUTOSTART_LOCK_KEY "broker:autostart"   /* after the key prefix */
#define AUTOSTART_TOKEN_ENV "AIPROXY_BROKER_TOKEN"
#define AUTOSTART_IDLE_ENV "AIPROXY_BROKER_IDLE_EXIT_S"
#define AUTOSTART_ARGV_MAX 64

/* What to start and how; filled by autostart_setup. */
typedef struct autostart_cfg {
    int enabled;
    char command[1024];               /* absolute path, or a name looked up in PATH */
    char args[AUTOSTART_ARGV_MAX][1024];
    int nargs;
    char log[1024];                   /* the broker's stdout and stderr */
    int idle_exit_s;                  /* 0: the broker never exits on its own */
    int start_timeout_ms;             /* lock lifetime while starting, and how long a
                                       * request waits for the broker it started */
} autostart_cfg_t;

/* Reads the `broker:` section (the normalised object of cfg_check_broker,
 * borrowed, may be NULL) and then the environment, which wins:
 * AIPROXY_BROKER_AUTOSTART (1/0, true/false), AIPROXY_BROKER_COMMAND,
 * AIPROXY_BROKER_LOG, AIPROXY_BROKER_IDLE_EXIT_S. `config_path` (may be
 * NULL) is the responder's config file: the default command is the
 * mcp-broker next to this program (/proc/self/exe) with -c <that file, made
 * absolute>, the default log <its directory>/mcp-broker.log (without a
 * config file: /tmp/aiproxy-mcp-broker-<uid>.log). Call once, before
 * threads. 0, or -EINVAL with err saying which setting is wrong. */
int autostart_setup(json_object *broker, const char *config_path, char *err, size_t errlen);

/* The process settings autostart_setup made (enabled 0 before it ran). */
const autostart_cfg_t *autostart_cfg(void);

/* Takes the lock <prefix>broker:autostart for `token`, on `rc` (blocking
 * context, borrowed), for ttl_ms. 1 when taken, 0 when someone holds it (a
 * broker starting or running), -EIO when Redis failed. */
int autostart_lock(redisContext *rc, const char *prefix, const char *token, int ttl_ms);

/* Gives the lock back if it still holds `token` (a start that failed), so
 * the next request may try at once. Best effort. */
void autostart_unlock(redisContext *rc, const char *prefix, const char *token);

/* Starts cfg's command detached: double fork, setsid, signals back to their
 * defaults, cwd "/", stdin from /dev/null, stdout and stderr appended to
 * cfg->log (else /dev/null), every other descriptor closed; environment:
 * this process's without the CGI request's variables (HTTP_*, REQUEST_*,
 * ...), with REDIS_URL = url, AIPROXY_REDIS_PREFIX = prefix,
 * AIPROXY_BROKER_TOKEN = token and AIPROXY_BROKER_IDLE_EXIT_S. Waits only
 * for the exec: 0 with *pid the started program's pid, or a negative errno
 * (-ENOENT: no such command...) with err saying what failed. Safe from a
 * threaded process: nothing after fork but system calls. */
int autostart_spawn(const autostart_cfg_t *cfg, const char *url, const char *prefix,
                    const char *token, pid_t *pid, char *err, size_t errlen);

/* The state of one request's wait for a broker (mcpc's publish loop). */
typedef struct autostart_wait {
    int64_t next_try_ms;     /* monotonic ms: when to look at the lock again */
    int extended;            /* the wait has been stretched to start_timeout */
    pid_t started;           /* the broker this request started, 0: none */
} autostart_wait_t;

/* Called while a request finds no broker listening (PUBLISH reached no one),
 * with `now` and the end of its wait `*until` (monotonic ms). When autostart
 * is on: stretches *until to cover a start, and at most every 250 ms tries
 * the lock; whoever takes it starts the broker. No-op when it is off. `rc`
 * is the request's command connection (borrowed; left usable). */
void autostart_nudge(autostart_wait_t *w, redisContext *rc, const char *url, const char *prefix,
                     int64_t now, int64_t *until);

#endif
