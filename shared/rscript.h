/* rscript — a Lua script on a blocking Redis connection in one round trip:
 * EVALSHA, falling back to EVAL when the server does not know the script
 * (NOSCRIPT: Redis restarted or SCRIPT FLUSH), which loads it again. */
#ifndef AIPROXY_RSCRIPT_H
#define AIPROXY_RSCRIPT_H

#include <hiredis/hiredis.h>
#include <stddef.h>

/* A script and the SHA-1 Redis knows it by. Define one per script as a
 * static _Thread_local (the sha is written on first use; one per thread
 * keeps threads from racing on it). */
typedef struct rscript {
    const char *src;
    char sha[41];        /* "" until learned */
} rscript_t;

/* Runs `s` with `nkeys` KEYS then ARGV taken from argv[0..argc) (lens: byte
 * lengths, or NULL for C strings). Returns the reply (caller frees with
 * freeReplyObject; may be a REDIS_REPLY_ERROR from the script), or NULL
 * when the connection failed (c->errstr says why; c is then unusable).
 * At most argc <= 32. The first call on a thread costs a SCRIPT LOAD. */
redisReply *rscript_run(redisContext *c, rscript_t *s, int nkeys, int argc, const char **argv,
                        const size_t *lens);

#endif
