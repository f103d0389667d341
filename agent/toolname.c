#include "agent/toolname.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A small array is enough: an assistant offers tens of tools, not thousands,
 * and a linear scan keeps the module trivially correct. */
typedef struct tn_entry {
    char name[TN_MAX + 1];
    char *server;   /* NULL for a reserved (client) name */
    char *tool;
} tn_entry_t;

struct tn_map {
    tn_entry_t *v;
    size_t n, cap;
};

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
    free(m);
}

static const tn_entry_t *tn__find(const tn_map_t *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->v[i].name, name) == 0)
            return &m->v[i];
    return NULL;
}

int tn_taken(const tn_map_t *m, const char *name)
{
    return tn__find(m, name) != NULL;
}

static tn_entry_t *tn__push(tn_map_t *m)
{
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

int tn_reserve(tn_map_t *m, const char *name)
{
    tn_entry_t *e;

    if (tn__find(m, name))
        return 0;
    if (!(e = tn__push(m)))
        return -ENOMEM;
    snprintf(e->name, sizeof(e->name), "%s", name);
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
