/* regasync — the registry read on the loop's own Redis connection (see
 * regasync.h). One refresh is a small state machine driven by hiredis
 * callbacks: GET version -> (moved) MULTI..EXEC -> swap; (absent, seed set)
 * EVAL seed -> GET version again. */
#include "mcp-broker/regasync.h"
#include "shared/log.h"
#include "shared/reg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct regasync {
    reg_keys_t k;
    regasync_done_cb done;
    void *data;
    const char *seed;            /* borrowed, or NULL */
    json_object *doc;            /* the snapshot, NULL until the first read */
    long long version;
    redisAsyncContext *ac;       /* for the next round (the callbacks use their own) */
    int busy, again, healed;
    char err[512];
};

static void regasync__on_version(redisAsyncContext *c, void *r, void *priv);

regasync_t *regasync_new(const char *prefix, regasync_done_cb done, void *data)
{
    regasync_t *ra = calloc(1, sizeof(*ra));

    if (!ra)
        return NULL;
    if (reg_keys_init(&ra->k, prefix) != 0) {
        free(ra);
        return NULL;
    }
    ra->done = done;
    ra->data = data;
    return ra;
}

void regasync_free(regasync_t *ra)
{
    if (!ra)
        return;
    json_object_put(ra->doc);
    free(ra);
}

void regasync_set_seed(regasync_t *ra, const char *json)
{
    ra->seed = json;
}

int regasync_busy(const regasync_t *ra)
{
    return ra->busy;
}

const char *regasync_errstr(const regasync_t *ra)
{
    return ra->err;
}

json_object *regasync_get(regasync_t *ra, const char *kind, const char *name)
{
    json_object *m = NULL, *o = NULL;

    if (!ra->doc || !name || !json_object_object_get_ex(ra->doc, kind, &m) ||
        !json_object_object_get_ex(m, name, &o))
        return NULL;
    return o;
}

/* The first command of a round. 0, or -EIO when ac takes no commands. */
static int regasync__round(regasync_t *ra)
{
    const char *argv[2] = {"GET", ra->k.version};

    ra->healed = 0;
    if (redisAsyncCommandArgv(ra->ac, regasync__on_version, ra, 2, argv, NULL) != REDIS_OK) {
        snprintf(ra->err, sizeof(ra->err), "Redis is not connected");
        return -EIO;
    }
    return 0;
}

/* A round ended with rc: another round when one was asked for meanwhile
 * (and the connection still answers), else the refresh has settled. */
static void regasync__finish(regasync_t *ra, int rc, int conn_alive)
{
    if (ra->again && conn_alive) {
        ra->again = 0;
        if (regasync__round(ra) == 0)
            return;
        rc = -EIO;
    }
    ra->again = 0;
    ra->busy = 0;
    ra->ac = NULL;
    ra->done(ra->data, rc);
}

static void regasync__set_empty(regasync_t *ra)
{
    json_object *doc = reg_empty_doc();

    if (!doc)
        return;                  /* ENOMEM: keep the old snapshot */
    json_object_put(ra->doc);
    ra->doc = doc;
    ra->version = 0;
}

static void regasync__on_seed(redisAsyncContext *c, void *r, void *priv)
{
    regasync_t *ra = priv;
    long long status = 0;
    const char *argv[2] = {"GET", ra->k.version};

    if (!r) {
        snprintf(ra->err, sizeof(ra->err), "the Redis connection was lost re-seeding the registry");
        regasync__finish(ra, -EIO, 0);
        return;
    }
    if (reg_parse_script_reply(r, &status, ra->err, sizeof(ra->err)) < 0) {
        log_warn("registry missing and cannot be re-seeded: %s", ra->err);
        regasync__finish(ra, -EIO, 1);
        return;
    }
    if (status == 1)
        log_warn("Redis held no registry (restarted empty or flushed?): re-seeded it from the "
                 "config file; admin edits made since that were not persisted by Redis are lost");
    /* read what is there now (ours, or another writer's that won) */
    if (redisAsyncCommandArgv(c, regasync__on_version, ra, 2, argv, NULL) != REDIS_OK) {
        snprintf(ra->err, sizeof(ra->err), "Redis is not connected");
        regasync__finish(ra, -EIO, 0);
    }
}

/* Redis holds no registry: heal once per round when there is a seed, else
 * the snapshot becomes the empty registry. */
static void regasync__missing(regasync_t *ra, redisAsyncContext *c)
{
    reg_seed_cmd_t cmd;
    json_object *doc = NULL;
    int rc = -ENOENT;

    if (!ra->seed || ra->healed) {
        regasync__set_empty(ra);
        regasync__finish(ra, -ENOENT, 1);
        return;
    }
    ra->healed = 1;
    doc = json_tokener_parse(ra->seed);
    if (!doc || !json_object_is_type(doc, json_type_object)) {
        snprintf(ra->err, sizeof(ra->err),
                 "the registry is missing and the seed document is not valid JSON");
        rc = -EINVAL;
        goto out;
    }
    rc = reg_seed_cmd_build(&cmd, &ra->k, doc, 0);
    if (rc < 0) {
        snprintf(ra->err, sizeof(ra->err), "out of memory seeding the registry");
        goto out;
    }
    /* the command is formatted here: cmd and doc may go right after */
    rc = redisAsyncCommandArgv(c, regasync__on_seed, ra, cmd.argc, cmd.argv, cmd.lens) ==
                 REDIS_OK ? 0 : -EIO;
    reg_seed_cmd_clear(&cmd);
    if (rc < 0)
        snprintf(ra->err, sizeof(ra->err), "Redis is not connected");
out:
    json_object_put(doc);
    if (rc < 0) {
        log_warn("registry missing and cannot be re-seeded: %s", ra->err);
        regasync__finish(ra, rc, rc != -EIO);
    }
}

static void regasync__on_exec(redisAsyncContext *c, void *r, void *priv)
{
    regasync_t *ra = priv;
    json_object *doc = NULL;
    long long version = 0;
    int rc;

    if (!r) {
        snprintf(ra->err, sizeof(ra->err), "the Redis connection was lost reading the registry");
        regasync__finish(ra, -EIO, 0);
        return;
    }
    rc = reg_parse_snapshot(r, &ra->k, &doc, &version, ra->err, sizeof(ra->err));
    if (rc == -ENOENT) {
        regasync__missing(ra, c);
        return;
    }
    if (rc == 0) {
        json_object_put(ra->doc);
        ra->doc = doc;
        ra->version = version;
    }
    regasync__finish(ra, rc, 1);
}

static void regasync__on_version(redisAsyncContext *c, void *r, void *priv)
{
    regasync_t *ra = priv;
    long long v = 0;
    int rc, i, argc;
    const char *argv[2];
    const char *multi[1] = {"MULTI"}, *exec[1] = {"EXEC"};

    if (!r) {
        snprintf(ra->err, sizeof(ra->err), "the Redis connection was lost reading the registry");
        regasync__finish(ra, -EIO, 0);
        return;
    }
    rc = reg_parse_version(r, &ra->k, &v, ra->err, sizeof(ra->err));
    if (rc < 0) {
        regasync__finish(ra, rc, 1);
        return;
    }
    if (rc == 0) {
        snprintf(ra->err, sizeof(ra->err),
                 "Redis holds no registry (key %s is missing): seed it from a config file",
                 ra->k.version);
        regasync__missing(ra, c);
        return;
    }
    if (ra->doc && v == ra->version) {
        regasync__finish(ra, 0, 1);  /* the hot path: one GET, nothing built */
        return;
    }
    /* one consistent read; the queued commands' answers are of no interest */
    rc = redisAsyncCommandArgv(c, NULL, NULL, 1, multi, NULL);
    for (i = 0; rc == REDIS_OK && i < REG_SNAPSHOT_CMDS; i++) {
        reg_snapshot_cmd(&ra->k, i, &argc, argv);
        rc = redisAsyncCommandArgv(c, NULL, NULL, argc, argv, NULL);
    }
    if (rc == REDIS_OK)
        rc = redisAsyncCommandArgv(c, regasync__on_exec, ra, 1, exec, NULL);
    if (rc != REDIS_OK) {
        /* only on a closing connection, which discards what was queued */
        snprintf(ra->err, sizeof(ra->err), "Redis is not connected");
        regasync__finish(ra, -EIO, 0);
    }
}

int regasync_refresh(regasync_t *ra, redisAsyncContext *ac)
{
    int rc;

    if (!ac)
        return -EIO;
    if (ra->busy) {
        ra->again = 1;
        ra->ac = ac;
        return 0;
    }
    ra->ac = ac;
    rc = regasync__round(ra);
    if (rc < 0) {
        ra->ac = NULL;
        return rc;
    }
    ra->busy = 1;
    return 0;
}
