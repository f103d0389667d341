/* childenv — see childenv.h. */
#include "mcp-broker/childenv.h"
#include "shared/caps.h"

#include "shared/cfg.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* What every child may see of the broker's environment: enough to find
 * programs, write temporary files and speak the operator's locale. The
 * sanitizer options only matter to sanitizer builds (our tests) and hold no
 * secret. "LC_*" is a prefix. */
static const char *const childenv__base[] = {
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_*", "TZ", "TMPDIR",
    "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", NULL,
};

typedef struct ce_vec {
    char **v;
    size_t n, cap;
} ce_vec_t;

static int childenv__in_base(const char *name, size_t len)
{
    for (const char *const *b = childenv__base; *b; b++) {
        size_t bl = strlen(*b);
        if (bl > 0 && (*b)[bl - 1] == '*') {
            if (len >= bl - 1 && strncmp(name, *b, bl - 1) == 0)
                return 1;
        } else if (bl == len && strncmp(name, *b, len) == 0) {
            return 1;
        }
    }
    return 0;
}

static int childenv__listed(json_object *list, const char *name, size_t len)
{
    size_t n = list && json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;

    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(list, i);
        if (json_object_is_type(e, json_type_string) &&
            (size_t)json_object_get_string_len(e) == len &&
            strncmp(json_object_get_string(e), name, len) == 0)
            return 1;
    }
    return 0;
}

/* NAME=value into the vector, replacing an entry of the same name. */
static int childenv__set(ce_vec_t *vec, const char *name, size_t nlen, const char *value)
{
    size_t vlen = strlen(value), i;
    char *s;

    if (!(s = malloc(nlen + vlen + 2)))
        return -ENOMEM;
    memcpy(s, name, nlen);
    s[nlen] = '=';
    memcpy(s + nlen + 1, value, vlen + 1);
    for (i = 0; i < vec->n; i++) {
        if (strncmp(vec->v[i], s, nlen + 1) == 0) {
            free(vec->v[i]);
            vec->v[i] = s;
            return 0;
        }
    }
    if (vec->n + 1 >= vec->cap) {
        free(s); /* the caller sized the vector: cannot happen */
        return -ENOSPC;
    }
    vec->v[vec->n++] = s;
    return 0;
}

char **childenv_build(char *const *parent, json_object *server, const childenv_user_t *user)
{
    json_object *env = NULL, *inherit = NULL;
    ce_vec_t vec = {0};
    size_t np = 0;
    char **res = NULL;

    if (server && json_object_object_get_ex(server, "env", &env) &&
        !json_object_is_type(env, json_type_object))
        env = NULL;
    if (server)
        json_object_object_get_ex(server, "inherit_env", &inherit);
    while (parent && parent[np])
        np++;
    vec.cap = np + (env ? (size_t)json_object_object_length(env) : 0) + 4;
    if (!(vec.v = calloc(vec.cap, sizeof(char *))))
        goto out;
    for (size_t i = 0; i < np; i++) {
        const char *eq = strchr(parent[i], '=');
        size_t nlen;
        char name[256];
        if (!eq || (nlen = (size_t)(eq - parent[i])) == 0 || nlen >= sizeof(name))
            continue;
        memcpy(name, parent[i], nlen);
        name[nlen] = '\0';
        if (cfg_env_is_secret(name))
            continue; /* never, even when listed */
        if (!childenv__in_base(name, nlen) && !childenv__listed(inherit, name, nlen))
            continue;
        if (childenv__set(&vec, name, nlen, eq + 1) < 0)
            goto out;
    }
    if (user && user->drop) {
        /* the broker's HOME is root's: a child that writes a cache there
         * would fail, or worse, succeed */
        if (childenv__set(&vec, "HOME", 4, user->home) < 0 ||
            childenv__set(&vec, "USER", 4, user->name) < 0 ||
            childenv__set(&vec, "LOGNAME", 7, user->name) < 0)
            goto out;
    }
    if (env) {
        json_object_object_foreach(env, key, val) {
            const char *v = json_object_is_type(val, json_type_null) ? "" : json_object_get_string(val);
            if (childenv__set(&vec, key, strlen(key), v ? v : "") < 0)
                goto out;
        }
    }
    res = vec.v;
    vec.v = NULL;
out:
    childenv_free(vec.v);
    return res;
}

void childenv_free(char **env)
{
    if (!env)
        return;
    for (size_t i = 0; env[i]; i++)
        free(env[i]);
    free(env);
}

int childenv_user_resolve(uid_t euid, const char *spec, childenv_user_t *out, char *err,
                          size_t errlen)
{
    struct passwd pw, *found = NULL;
    char buf[CAP_PASSWD_BUF], *end = NULL;
    struct stat st;
    unsigned long num;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (!spec || !*spec)
        spec = CHILDENV_USER_DEFAULT;
    if (euid != 0 || strcmp(spec, "root") == 0 || strcmp(spec, "0") == 0)
        goto out;
    num = strtoul(spec, &end, 10);
    if (end && *end == '\0' && spec[0] >= '0' && spec[0] <= '9')
        rc = getpwuid_r((uid_t)num, &pw, buf, sizeof(buf), &found);
    else
        rc = getpwnam_r(spec, &pw, buf, sizeof(buf), &found);
    if (rc != 0 || !found) {
        snprintf(err, errlen, "%s: no user '%s' on this host (name the unprivileged user MCP "
                 "servers run as, or 'root' to keep root)", CHILDENV_USER_ENV, spec);
        rc = -ENOENT;
        goto out;
    }
    if (found->pw_uid == 0)
        goto out; /* a name for uid 0: nothing to drop */
    out->drop = 1;
    out->uid = found->pw_uid;
    out->gid = found->pw_gid;
    snprintf(out->name, sizeof(out->name), "%s", found->pw_name);
    if (found->pw_dir && *found->pw_dir && stat(found->pw_dir, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(out->home, sizeof(out->home), "%s", found->pw_dir);
    else
        snprintf(out->home, sizeof(out->home), "/tmp"); /* nobody's is /nonexistent */
out:
    return rc;
}
