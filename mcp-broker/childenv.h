/* childenv — what a stdio MCP server's process gets from the broker: its
 * environment and the user it runs as (docs/security.md).
 *
 * A child sees only a short list of the broker's variables (CHILDENV_BASE:
 * PATH, HOME, USER, LOGNAME, LANG, LC_*, TZ, TMPDIR and the sanitizer
 * options), the ones its server lists in "inherit_env", and its server's own
 * "env" over those. The gateway's own secrets (cfg_env_is_secret:
 * ADMIN_API_KEY, OPENAI_API_KEY, ANTHROPIC_API_KEY, REDIS_URL, AIPROXY_*) are
 * never inherited, even when listed. A broker running as root runs children as
 * AIPROXY_MCP_USER (default "nobody"; "root" keeps root). No I/O except the
 * passwd lookup and one stat() in childenv_user_resolve. */
#ifndef AIPROXY_CHILDENV_H
#define AIPROXY_CHILDENV_H

#include <json-c/json.h>
#include <stddef.h>
#include <sys/types.h>

#define CHILDENV_USER_ENV     "AIPROXY_MCP_USER"
#define CHILDENV_USER_DEFAULT "nobody"

typedef struct childenv_user {
    int drop;           /* 1: run the child as uid/gid, with the identity below */
    uid_t uid;
    gid_t gid;
    char name[64];      /* USER and LOGNAME */
    char home[512];     /* HOME: the user's home if it is a directory, else /tmp */
} childenv_user_t;

/* Decides who a child runs as. `euid` is the broker's effective uid, `spec`
 * the AIPROXY_MCP_USER value (NULL or "" means "nobody"). Not root: no
 * change (out->drop 0), whatever spec says. Root and spec "root" (or "0"):
 * no change either, the operator's explicit choice. Otherwise spec names a
 * user (or is a numeric uid) looked up in the passwd database. Returns 0, or
 * -ENOENT with err naming the knob when the user does not exist (callers must
 * then not spawn: failing closed beats running as root). */
int childenv_user_resolve(uid_t euid, const char *spec, childenv_user_t *out, char *err,
                          size_t errlen);

/* The environment for the child of registry entry `server` (borrowed; reads
 * "env" and "inherit_env"), from `parent` (a NULL-terminated "NAME=value"
 * array, normally environ) and `user` (may be NULL: no identity change).
 * Returns a NULL-terminated malloc'd array of malloc'd strings for
 * childenv_free, or NULL on ENOMEM. */
char **childenv_build(char *const *parent, json_object *server, const childenv_user_t *user);

/* Frees what childenv_build returned (NULL is fine). */
void childenv_free(char **env);

#endif
