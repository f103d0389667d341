/* rscript — see rscript.h. */
#include "shared/rscript.h"

#include <stdio.h>
#include <string.h>

#define RSCRIPT_MAX_ARGS 32

/* SCRIPT LOAD: the sha into s->sha. 0, -1 on a connection failure (*failed
 * set), -2 when the server refused it (EVAL will say why). */
static int rscript__load(redisContext *c, rscript_t *s, int *failed)
{
    redisReply *rep = redisCommand(c, "SCRIPT LOAD %s", s->src);
    int rc = -2;

    if (!rep) {
        *failed = 1;
        return -1;
    }
    if (rep->type == REDIS_REPLY_STRING && rep->len == 40) {
        memcpy(s->sha, rep->str, 40);
        s->sha[40] = '\0';
        rc = 0;
    }
    freeReplyObject(rep);
    return rc;
}

redisReply *rscript_run(redisContext *c, rscript_t *s, int nkeys, int argc, const char **argv,
                        const size_t *lens)
{
    const char *av[RSCRIPT_MAX_ARGS + 3];
    size_t al[RSCRIPT_MAX_ARGS + 3];
    char nk[16];
    redisReply *rep = NULL;
    int failed = 0;

    if (!c || argc < 0 || argc > RSCRIPT_MAX_ARGS)
        return NULL;
    snprintf(nk, sizeof nk, "%d", nkeys);
    av[1] = NULL;
    av[2] = nk;
    al[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        av[3 + i] = argv[i];
        al[3 + i] = lens ? lens[i] : strlen(argv[i]);
    }
    if (!s->sha[0] && rscript__load(c, s, &failed) == -1)
        return NULL;
    if (s->sha[0]) {
        av[0] = "EVALSHA";
        av[1] = s->sha;
        al[0] = 7;
        al[1] = 40;
        rep = redisCommandArgv(c, argc + 3, av, al);
        if (!rep || rep->type != REDIS_REPLY_ERROR || strncmp(rep->str, "NOSCRIPT", 8) != 0)
            return rep;
        freeReplyObject(rep);
    }
    /* not known (flushed, or the load was refused): EVAL loads it again */
    av[0] = "EVAL";
    av[1] = s->src;
    al[0] = 4;
    al[1] = strlen(s->src);
    return redisCommandArgv(c, argc + 3, av, al);
}
