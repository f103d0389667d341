#include "agent/toolname.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Entries in an array (in the order they were added) and an open-addressing
 * index of them by name: a client may send tens of thousands of tools in one
 * body, and a linear scan per name made that quadratic (75k tools: 12 s of
 * CPU). The index holds entry positions + 1 (0 is an empty slot), has a
 * power-of-two size and stays at most half full. */
typedef struct tn_entry {
    char name[TN_MAX + 1];
    char *server;   /* NULL for a reserved (client) name */
    char *tool;
} tn_entry_t;

struct tn_map {
    tn_entry_t *v;
    size_t n, cap;
    size_t *idx;     /* nidx slots, each 0 or an entry position + 1 */
    size_t nidx;
};

/* FNV-1a: names are short and chosen by clients, the table only has to
 * spread them; the half-full bound keeps probes short. */
static size_t tn__hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

/* The slot holding `name`, or the empty slot where it would go. */
static size_t tn__slot(const tn_map_t *m, const char *name)
{
    size_t mask = m->nidx - 1, i = tn__hash(name) & mask;

    while (m->idx[i] && strcmp(m->v[m->idx[i] - 1].name, name) != 0)
        i = (i + 1) & mask;
    return i;
}

/* Makes room in the index for one more entry: 0 or -ENOMEM. */
static int tn__index_grow(tn_map_t *m)
{
    size_t *old = m->idx, nold = m->nidx, nnew;

    if ((m->n + 1) * 2 <= m->nidx)
        return 0;
    nnew = m->nidx ? m->nidx * 2 : 64;
    if (!(m->idx = calloc(nnew, sizeof(*m->idx)))) {
        m->idx = old;
        return -ENOMEM;
    }
    m->nidx = nnew;
    for (size_t i = 0; i < nold; i++)
        if (old[i])
            m->idx[tn__slot(m, m->v[old[i] - 1].name)] = old[i];
    free(old);
    return 0;
}

tn_map_t *tn_new(void)
{
    return calloc(1, sizeof(struct tn_map));
}

void tn_free(tn_map_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].server);
        free(m->v[i].tool);
    }
    free(m->v);
    free(m->idx);
    free(m);
}

static const tn_entry_t *tn__find(const tn_map_t *m, const char *name)
{
    size_t i;

    if (!m->nidx)
        return NULL;
    i = tn__slot(m, name);
    return m->idx[i] ? &m->v[m->idx[i] - 1] : NULL;
}

int tn_taken(const tn_map_t *m, const char *name)
{
    return tn__find(m, name) != NULL;
}

/* A zeroed entry at the end, not yet indexed: fill its name, then
 * tn__index. NULL on ENOMEM. */
static tn_entry_t *tn__push(tn_map_t *m)
{
    if (tn__index_grow(m) < 0)
        return NULL;
    if (m->n == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        tn_entry_t *nv = realloc(m->v, ncap * sizeof(*nv));
        if (!nv)
            return NULL;
        m->v = nv;
        m->cap = ncap;
    }
    memset(&m->v[m->n], 0, sizeof(m->v[m->n]));
    return &m->v[m->n++];
}

/* Indexes the last pushed entry by its (now final) name. */
static void tn__index(tn_map_t *m)
{
    m->idx[tn__slot(m, m->v[m->n - 1].name)] = m->n;
}

int tn_reserve(tn_map_t *m, const char *name)
{
    char cut[TN_MAX + 1];
    tn_entry_t *e;

    snprintf(cut, sizeof(cut), "%s", name);   /* names are compared as stored */
    if (tn__find(m, cut))
        return 0;
    if (!(e = tn__push(m)))
        return -ENOMEM;
    memcpy(e->name, cut, sizeof(cut));
    tn__index(m);
    return 0;
}

static size_t tn__put(char *out, size_t at, const char *s)
{
    for (; *s && at < TN_MAX; s++) {
        unsigned char c = (unsigned char)*s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-';
        out[at++] = ok ? (char)c : '_';
    }
    out[at] = '\0';
    return at;
}

void tn_make(const char *server, const char *tool, char out[TN_MAX + 1])
{
    size_t at = 0;

    out[0] = '\0';
    at = tn__put(out, at, server ? server : "");
    at = tn__put(out, at, "__");
    tn__put(out, at, tool ? tool : "");
}

int tn_add(tn_map_t *m, const char *server, const char *tool, const char **name)
{
    char base[TN_MAX + 1], cand[TN_MAX + 1];
    tn_entry_t *e;
    int rc = -ENOMEM;

    *name = NULL;
    if (!tool || !*tool)
        return -EINVAL;
    tn_make(server, tool, base);
    snprintf(cand, sizeof(cand), "%s", base);
    for (unsigned k = 2; tn__find(m, cand); k++) {
        char suf[16];
        int sl = snprintf(suf, sizeof(suf), "_%u", k);
        size_t keep = strlen(base);
        if (keep > (size_t)(TN_MAX - sl))
            keep = (size_t)(TN_MAX - sl);
        snprintf(cand, sizeof(cand), "%.*s%s", (int)keep, base, suf);
    }
    if (!(e = tn__push(m)))
        goto out;
    snprintf(e->name, sizeof(e->name), "%s", cand);
    e->server = strdup(server ? server : "");
    e->tool = strdup(tool);
    if (!e->server || !e->tool) {
        free(e->server);
        free(e->tool);
        m->n--;
        goto out;
    }
    tn__index(m);
    *name = e->name;
    rc = 0;
out:
    return rc;
}

int tn_lookup(const tn_map_t *m, const char *name, const char **server, const char **tool)
{
    const tn_entry_t *e = name ? tn__find(m, name) : NULL;

    if (!e || !e->server)
        return -ENOENT;
    *server = e->server;
    *tool = e->tool;
    return 0;
}

size_t tn_ours(const tn_map_t *m)
{
    size_t k = 0;

    for (size_t i = 0; i < m->n; i++)
        k += m->v[i].server != NULL;
    return k;
}
