/* admin_keydoc — see admin_keydoc.h. */
#include "fcgi/admin/admin_keydoc.h"

#include "shared/cfg.h"
#include "shared/keypol.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *admin_keydoc_field(const redisReply *h, const char *name)
{
    for (size_t i = 0; h && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2)
        if (h->element[i]->type == REDIS_REPLY_STRING && strcmp(h->element[i]->str, name) == 0 &&
            h->element[i + 1]->type == REDIS_REPLY_STRING)
            return h->element[i + 1]->str;
    return NULL;
}

static json_object *admin_keydoc__str_or_null(const char *s)
{
    return s && *s ? json_object_new_string(s) : NULL;
}

static json_object *admin_keydoc__time_or_null(const char *s)
{
    long long t = s ? strtoll(s, NULL, 10) : 0;
    return t > 0 ? json_object_new_int64(t) : NULL;
}

/* Never the secret, nor `hash` and `old_hashes`: a reader of the answer
 * could not use a hash, but it would tie log lines to keys. */
json_object *admin_keydoc_view(const char *id, const redisReply *h, int with_effective,
                               json_object *plan_policy)
{
    json_object *o = json_object_new_object(), *pol = NULL, *eff = NULL;
    const char *ps = admin_keydoc_field(h, "policy");
    if (!o)
        return NULL;
    if (ps && *ps)
        pol = json_tokener_parse(ps);
    if (!json_object_is_type(pol, json_type_object)) {
        json_object_put(pol);
        pol = json_object_new_object();
    }
    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_object_add(o, "object", json_object_new_string("api_key"));
    json_object_object_add(o, "name", admin_keydoc__str_or_null(admin_keydoc_field(h, "name")));
    json_object_object_add(o, "owner", admin_keydoc__str_or_null(admin_keydoc_field(h, "owner")));
    json_object_object_add(o, "plan", admin_keydoc__str_or_null(admin_keydoc_field(h, "plan")));
    json_object_object_add(o, "display", admin_keydoc__str_or_null(admin_keydoc_field(h, "display")));
    json_object_object_add(o, "created_at", admin_keydoc__time_or_null(admin_keydoc_field(h, "created_at")));
    json_object_object_add(o, "expires_at", admin_keydoc__time_or_null(admin_keydoc_field(h, "expires_at")));
    json_object_object_add(o, "revoked_at", admin_keydoc__time_or_null(admin_keydoc_field(h, "revoked_at")));
    json_object_object_add(o, "revoked", json_object_new_boolean(
                                             json_object_object_get(o, "revoked_at") != NULL));
    if (with_effective && keypol_merge(plan_policy, pol, &eff) == 0)
        json_object_object_add(o, "effective_policy", eff ? eff : json_object_new_object());
    json_object_object_add(o, "policy", pol);
    return o;
}


int admin_keydoc_fields(json_object *body, int create, arena_t *a, const char **argv, int *n,
                        char *err, size_t errlen, const char **param)
{
    static const char *const known[] = { "name", "owner", "plan", "expires_at", "policy", NULL };
    json_object *v;
    char num[32];
    int first = *n;

    if (!json_object_is_type(body, json_type_object)) {
        snprintf(err, errlen, "the request body must be a JSON object");
        return -EINVAL;
    }
    json_object_object_foreach(body, k, val) {
        int ok = 0;
        (void)val;
        for (size_t i = 0; known[i]; i++)
            ok |= strcmp(k, known[i]) == 0;
        if (!ok) {
            *param = arena_strdup(a, k);
            snprintf(err, errlen, "%.64s: unknown field (known: name, owner, plan, expires_at, "
                     "policy)", k);
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < 2; i++) {   /* name, owner: labels */
        const char *f = known[i];
        int len;
        if (!json_object_object_get_ex(body, f, &v)) {
            if (create && i == 0) {
                *param = "name";
                snprintf(err, errlen, "name: required (a label for people, 1 to %d bytes)",
                         ADMIN_KEYDOC_LABEL_MAX);
                return -EINVAL;
            }
            continue;
        }
        len = json_object_is_type(v, json_type_string) ? json_object_get_string_len(v)
              : (!v && i == 1) ? 0 : -1;
        if (len < (i == 0 ? 1 : 0) || len > ADMIN_KEYDOC_LABEL_MAX ||
            (v && strlen(json_object_get_string(v)) != (size_t)len)) {
            *param = f;
            snprintf(err, errlen, "%s: must be a string of %d to %d bytes with no NUL%s", f,
                     i == 0 ? 1 : 0, ADMIN_KEYDOC_LABEL_MAX, i == 1 ? ", or null" : "");
            return -EINVAL;
        }
        argv[(*n)++] = f;
        argv[(*n)++] = arena_strdup(a, v ? json_object_get_string(v) : "");
    }
    if (json_object_object_get_ex(body, "plan", &v)) {
        const char *s = v ? json_object_get_string(v) : "";
        if (v && (!json_object_is_type(v, json_type_string) || (*s && !cfg_name_valid(s)))) {
            *param = "plan";
            snprintf(err, errlen, "plan: must be a plan name ([A-Za-z0-9][A-Za-z0-9._-]{0,63}) "
                     "or null");
            return -EINVAL;
        }
        argv[(*n)++] = "plan";
        argv[(*n)++] = arena_strdup(a, s);
    }
    if (json_object_object_get_ex(body, "expires_at", &v)) {
        long long t;
        if (keypol_time(v, &t) < 0 || (t > 0 && t <= (long long)time(NULL))) {
            *param = "expires_at";
            snprintf(err, errlen, "expires_at: must be a future time, as unix seconds or RFC "
                     "3339 (\"2027-01-31T12:00:00Z\"), or null for never");
            return -EINVAL;
        }
        snprintf(num, sizeof num, "%lld", t);
        argv[(*n)++] = "expires_at";
        argv[(*n)++] = arena_strdup(a, num);
    }
    if (json_object_object_get_ex(body, "policy", &v)) {
        char perr[256];
        if (v && keypol_check(v, perr, sizeof perr) < 0) {
            const char *colon = strchr(perr, ':');
            char p[96];
            snprintf(p, sizeof p, "policy.%.*s", colon ? (int)(colon - perr) : 0, perr);
            *param = strcmp(p, "policy.policy") == 0 ? "policy" : arena_strdup(a, p);
            snprintf(err, errlen, "policy.%s", perr);
            if (strncmp(perr, "policy:", 7) == 0)
                snprintf(err, errlen, "%s", perr);
            return -EINVAL;
        }
        argv[(*n)++] = "policy";
        argv[(*n)++] = arena_strdup(a, v ? json_object_to_json_string_ext(
                                               v, JSON_C_TO_STRING_PLAIN) : "{}");
    }
    for (int i = first; i < *n; i++)
        if (!argv[i]) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
    return 0;
}

