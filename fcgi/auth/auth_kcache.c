/* auth_kcache — remembered managed keys (auth_kcache.h). A direct-mapped
 * table under one mutex: a slot is chosen by the hash's first hex digits
 * (the hash is a SHA-256: uniform), a collision replaces. An entry is one
 * allocation, "id\0name\0owner\0plan\0policy\0", copied into the request's
 * arena under the lock and parsed outside it. */
#include "fcgi/auth/auth_kcache.h"

#include "shared/caps.h"
#include "shared/keypol.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct kcache__ent {
    char hash[KEYPOL_HASH_LEN + 1];
    unsigned long gen;       /* 0: empty */
    long long expires_at;    /* unix seconds, 0 never */
    char *blob;              /* the five strings, each NUL-ended */
    size_t len;
} kcache__ent_t;

static pthread_mutex_t kcache__mu = PTHREAD_MUTEX_INITIALIZER;
static kcache__ent_t kcache__tab[CAP_KCACHE_SLOTS];

static kcache__ent_t *kcache__slot(const char *hash)
{
    unsigned long v = strtoul((char[9]){ hash[0], hash[1], hash[2], hash[3], hash[4], hash[5],
                                         hash[6], hash[7], '\0' }, NULL, 16);

    return &kcache__tab[v % CAP_KCACHE_SLOTS];
}

int auth_kcache_get(unsigned long gen, const char *hash, arena_t *a, auth_principal_t **out)
{
    kcache__ent_t *e;
    auth_principal_t *p;
    const char *s[5];
    char *copy = NULL;
    long long exp = 0;

    *out = NULL;
    if (!gen || strlen(hash) != KEYPOL_HASH_LEN)
        return -ENOENT;
    e = kcache__slot(hash);
    pthread_mutex_lock(&kcache__mu);
    if (e->gen == gen && memcmp(e->hash, hash, KEYPOL_HASH_LEN) == 0) {
        exp = e->expires_at;
        if ((copy = arena_alloc(a, e->len)))
            memcpy(copy, e->blob, e->len);
        else
            exp = -1;
    }
    pthread_mutex_unlock(&kcache__mu);
    if (exp < 0)
        return -ENOMEM;
    if (!copy || (exp > 0 && exp <= (long long)time(NULL)))
        return -ENOENT;
    s[0] = copy;   /* five NUL-ended strings, as auth_kcache_put wrote them */
    for (int i = 1; i < 5; i++)
        s[i] = s[i - 1] + strlen(s[i - 1]) + 1;
    if (!(p = arena_alloc(a, sizeof(*p))))
        return -ENOMEM;
    memset(p, 0, sizeof(*p));
    p->kind = AUTH_KIND_MANAGED;
    p->id = s[0];
    p->name = s[1];
    p->owner = s[2];
    p->plan = *s[3] ? s[3] : NULL;
    if (*s[4]) {
        p->policy = json_tokener_parse(s[4]);
        if (!p->policy || arena_own_json(a, p->policy) < 0) {
            json_object_put(p->policy);
            return p->policy ? -ENOMEM : -ENOENT;
        }
    }
    *out = p;
    return 0;
}

void auth_kcache_put(unsigned long gen, const char *hash, const auth_principal_t *p,
                     long long expires_at)
{
    const char *s[5], *pol;
    size_t n[5], len = 0;
    kcache__ent_t *e;
    char *blob, *w, *old = NULL;

    if (!gen || !p || !p->id || strlen(hash) != KEYPOL_HASH_LEN)
        return;
    pol = p->policy ? json_object_to_json_string_ext(p->policy, JSON_C_TO_STRING_PLAIN) : "";
    s[0] = p->id;
    s[1] = p->name ? p->name : "";
    s[2] = p->owner ? p->owner : "";
    s[3] = p->plan ? p->plan : "";
    s[4] = pol ? pol : "";
    for (int i = 0; i < 5; i++)
        len += (n[i] = strlen(s[i])) + 1;
    if (len > CAP_KCACHE_ENTRY || !(blob = malloc(len)))
        return;
    w = blob;
    for (int i = 0; i < 5; i++) {
        memcpy(w, s[i], n[i] + 1);
        w += n[i] + 1;
    }
    e = kcache__slot(hash);
    pthread_mutex_lock(&kcache__mu);
    old = e->blob;
    memcpy(e->hash, hash, KEYPOL_HASH_LEN + 1);
    e->gen = gen;
    e->expires_at = expires_at;
    e->blob = blob;
    e->len = len;
    pthread_mutex_unlock(&kcache__mu);
    free(old);
}
