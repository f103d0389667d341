/* usage_pend — see usage_pend.h. Bucket keys are few (two per hour: the
 * hour's and the day's hash), so they sit in a short array searched in
 * order; the pairs sit in an open-addressing table keyed by (key index,
 * field) that doubles at half full. */
#include "fcgi/usage/usage_pend.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define USAGE_PEND__STR_MAX 511   /* past USAGE_FIELD_MAX and a key of a 127-byte prefix */
#define USAGE_PEND__SLOTS0 64

typedef struct usage_pend__key {
    char *name;
    long long expire_at;
} usage_pend__key_t;

typedef struct usage_pend__pair {
    char *field;      /* NULL: the slot is free */
    size_t key;       /* index into keys */
    uint64_t hash;
    long long v;
} usage_pend__pair_t;

struct usage_pend {
    usage_pend__key_t *keys;
    size_t nkeys, capkeys;
    usage_pend__pair_t *slots;
    size_t nslots, npairs;
    unsigned long records;
};

usage_pend_t *usage_pend_new(void)
{
    usage_pend_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->slots = calloc(USAGE_PEND__SLOTS0, sizeof(*t->slots));
    if (!t->slots) {
        free(t);
        return NULL;
    }
    t->nslots = USAGE_PEND__SLOTS0;
    return t;
}

void usage_pend_free(usage_pend_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nkeys; i++)
        free(t->keys[i].name);
    for (size_t i = 0; i < t->nslots; i++)
        free(t->slots[i].field);
    free(t->keys);
    free(t->slots);
    free(t);
}

/* FNV-1a of the key's index and the field. */
static uint64_t usage_pend__hash(size_t key, const char *field)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)key;
    for (const unsigned char *p = (const unsigned char *)field; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

/* The key's index, added when absent (with expire_at, else raised to it).
 * The index, or -ENOMEM. */
static long usage_pend__key(usage_pend_t *t, const char *key, long long expire_at)
{
    size_t i;
    for (i = 0; i < t->nkeys; i++)
        if (strcmp(t->keys[i].name, key) == 0) {
            if (expire_at > t->keys[i].expire_at)
                t->keys[i].expire_at = expire_at;
            return (long)i;
        }
    if (t->nkeys == t->capkeys) {
        size_t n = t->capkeys ? t->capkeys * 2 : 8;
        usage_pend__key_t *k = realloc(t->keys, n * sizeof(*k));
        if (!k)
            return -ENOMEM;
        t->keys = k;
        t->capkeys = n;
    }
    if (!(t->keys[t->nkeys].name = strdup(key)))
        return -ENOMEM;
    t->keys[t->nkeys].expire_at = expire_at;
    return (long)t->nkeys++;
}

/* The slot of (key, field): its own, or the free one it would take. */
static usage_pend__pair_t *usage_pend__slot(usage_pend__pair_t *slots, size_t nslots,
                                            size_t key, const char *field, uint64_t h)
{
    size_t i = (size_t)h & (nslots - 1);
    for (;; i = (i + 1) & (nslots - 1)) {
        usage_pend__pair_t *s = &slots[i];
        if (!s->field || (s->hash == h && s->key == key && strcmp(s->field, field) == 0))
            return s;
    }
}

/* Doubles the table. 0 or -ENOMEM (the table is as it was). */
static int usage_pend__grow(usage_pend_t *t)
{
    size_t n = t->nslots * 2;
    usage_pend__pair_t *ns = calloc(n, sizeof(*ns));
    if (!ns)
        return -ENOMEM;
    for (size_t i = 0; i < t->nslots; i++)
        if (t->slots[i].field)
            *usage_pend__slot(ns, n, t->slots[i].key, t->slots[i].field, t->slots[i].hash) =
                t->slots[i];
    free(t->slots);
    t->slots = ns;
    t->nslots = n;
    return 0;
}

int usage_pend_add(usage_pend_t *t, const char *key, const char *field, long long v,
                   long long expire_at)
{
    usage_pend__pair_t *s;
    uint64_t h;
    long k;

    if (v <= 0)
        return 0;
    if (strlen(key) > USAGE_PEND__STR_MAX || strlen(field) > USAGE_PEND__STR_MAX)
        return -EINVAL;
    if ((t->npairs + 1) * 2 > t->nslots && usage_pend__grow(t) < 0)
        return -ENOMEM;
    if ((k = usage_pend__key(t, key, expire_at)) < 0)
        return (int)k;
    h = usage_pend__hash((size_t)k, field);
    s = usage_pend__slot(t->slots, t->nslots, (size_t)k, field, h);
    if (!s->field) {
        if (!(s->field = strdup(field)))
            return -ENOMEM;
        s->key = (size_t)k;
        s->hash = h;
        s->v = 0;
        t->npairs++;
    }
    s->v += v;
    return 0;
}

int usage_pend_zero(usage_pend_t *t, size_t max_pairs)
{
    if (t->npairs > max_pairs || t->nkeys > 2)
        return -E2BIG;
    for (size_t i = 0; i < t->nslots; i++)
        t->slots[i].v = 0;
    t->records = 0;
    return 0;
}

void usage_pend_note_record(usage_pend_t *t)
{
    t->records++;
}

size_t usage_pend_count(const usage_pend_t *t)
{
    return t->npairs;
}

unsigned long usage_pend_records(const usage_pend_t *t)
{
    return t->records;
}

int usage_pend_merge(usage_pend_t *dst, const usage_pend_t *src, size_t cap)
{
    int rc;
    if (dst->npairs + src->npairs > cap)
        return -ENOSPC;
    for (size_t i = 0; i < src->nslots; i++) {
        const usage_pend__pair_t *s = &src->slots[i];
        if (s->field && (rc = usage_pend_add(dst, src->keys[s->key].name, s->field, s->v,
                                             src->keys[s->key].expire_at)) < 0)
            return rc;
    }
    /* a key whose every sum was zero still carries its expiry */
    for (size_t i = 0; i < src->nkeys; i++) {
        long k = usage_pend__key(dst, src->keys[i].name, src->keys[i].expire_at);
        if (k < 0)
            return (int)k;
    }
    dst->records += src->records;
    return 0;
}

int usage_pend_each(const usage_pend_t *t,
                    int (*fn)(const char *key, const char *field, long long v, void *arg),
                    int (*key_fn)(const char *key, long long expire_at, void *arg), void *arg)
{
    int rc;
    for (size_t i = 0; fn && i < t->nslots; i++) {
        const usage_pend__pair_t *s = &t->slots[i];
        if (s->field && s->v != 0 && (rc = fn(t->keys[s->key].name, s->field, s->v, arg)) != 0)
            return rc;
    }
    for (size_t i = 0; key_fn && i < t->nkeys; i++)
        if ((rc = key_fn(t->keys[i].name, t->keys[i].expire_at, arg)) != 0)
            return rc;
    return 0;
}
