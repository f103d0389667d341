#include "agent/toolname.h"
#include "shared/sha256.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Entries in an array (reserved names and MCP tools, in the order they came)
 * with two open-addressing indexes over it: by offered name (a client may
 * send tens of thousands of tools in one body, and a linear scan per name
 * made that quadratic: 75k tools, 12 s of CPU), and, for MCP tools, by
 * sanitised base name (a multimap: the tools whose names collide). Each
 * index holds entry positions + 1 (0 is an empty slot), has a power-of-two
 * size and stays at most half full. */
typedef struct tn_entry {
    char name[TN_MAX + 1];   /* offered (or reserved) name; "" until sealed */
    char base[TN_MAX + 1];   /* tn_make's name, for MCP tools */
    char *server;            /* NULL for a reserved (client) name */
    char *tool;
    void *ud;
    int flags;               /* TN_LOSSY | TN_LONG */
    int clash;               /* another MCP tool has the same base */
} tn_entry_t;

typedef struct tn_index {
    size_t *slot;
    size_t n;                /* slots */
    size_t used;
} tn_index_t;

struct tn_map {
    tn_entry_t *v;
    size_t n, cap;
    size_t *mine;            /* positions of the MCP tools, in the order added */
    size_t nmine, capmine;
    tn_index_t by_name, by_base;
    int sealed;
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

static const char *tn__key(const tn_map_t *m, const tn_index_t *ix, size_t pos)
{
    return ix == &m->by_base ? m->v[pos].base : m->v[pos].name;
}

/* The first slot holding `key` at or after the probe start, or the empty
 * slot ending its probe sequence. */
static size_t tn__slot(const tn_map_t *m, const tn_index_t *ix, const char *key)
{
    size_t mask = ix->n - 1, i = tn__hash(key) & mask;

    while (ix->slot[i] && strcmp(tn__key(m, ix, ix->slot[i] - 1), key) != 0)
        i = (i + 1) & mask;
    return i;
}

/* The empty slot at the end of key's probe sequence (for the multimap). */
static size_t tn__free_slot(const tn_index_t *ix, const char *key)
{
    size_t mask = ix->n - 1, i = tn__hash(key) & mask;

    while (ix->slot[i])
        i = (i + 1) & mask;
    return i;
}

/* Makes room in ix for one more entry: 0 or -ENOMEM. */
static int tn__grow(tn_map_t *m, tn_index_t *ix)
{
    size_t *old = ix->slot, nold = ix->n, nnew;

    if ((ix->used + 1) * 2 <= ix->n)
        return 0;
    nnew = ix->n ? ix->n * 2 : 64;
    if (!(ix->slot = calloc(nnew, sizeof(*ix->slot)))) {
        ix->slot = old;
        return -ENOMEM;
    }
    ix->n = nnew;
    for (size_t i = 0; i < nold; i++)
        if (old[i])
            ix->slot[tn__free_slot(ix, tn__key(m, ix, old[i] - 1))] = old[i];
    free(old);
    return 0;
}

/* Puts entry `pos` into ix (room made by tn__grow). */
static void tn__put_ix(tn_map_t *m, tn_index_t *ix, size_t pos)
{
    ix->slot[tn__free_slot(ix, tn__key(m, ix, pos))] = pos + 1;
    ix->used++;
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
    free(m->mine);
    free(m->by_name.slot);
    free(m->by_base.slot);
    free(m);
}

static const tn_entry_t *tn__find(const tn_map_t *m, const char *name)
{
    size_t i;

    if (!m->by_name.n)
        return NULL;
    i = tn__slot(m, &m->by_name, name);
    return m->by_name.slot[i] ? &m->v[m->by_name.slot[i] - 1] : NULL;
}

int tn_taken(const tn_map_t *m, const char *name)
{
    return tn__find(m, name) != NULL;
}

/* A zeroed entry at the end, not yet indexed. NULL on ENOMEM. */
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
    char cut[TN_MAX + 1];
    tn_entry_t *e;

    if (m->sealed)
        return -EBUSY;
    snprintf(cut, sizeof(cut), "%s", name);   /* names are compared as stored */
    if (tn__find(m, cut))
        return 0;
    if (tn__grow(m, &m->by_name) < 0 || !(e = tn__push(m)))
        return -ENOMEM;
    memcpy(e->name, cut, sizeof(cut));
    tn__put_ix(m, &m->by_name, m->n - 1);
    return 0;
}

/* The ASCII for Latin-1 U+00C0..U+00FF and Latin Extended-A U+0100..U+017F,
 * one letter each; '?' marks the few written otherwise (tn__latin) or not at
 * all (× ÷). */
static const char tn__latin1[] =
    "AAAAAA?CEEEEIIIIDNOOOOO?OUUUUY??aaaaaa?ceeeeiiiidnooooo?ouuuuy?y";
static const char tn__latin_a[] =
    "AaAaAaCcCcCcCcDdDdEeEeEeEeEeGgGgGgGgHhHhIiIiIiIiIi??JjKkkLlLlLlLlLlNnNnNnnNnOoOoOo??"
    "RrRrRrSsSsSsSsTtTtTtUuUuUuUuUuUuWwYyYZzZzZzs";

/* The ASCII spelling of code point cp, or NULL when it has none. */
static const char *tn__latin(uint32_t cp, char one[2])
{
    char c = '?';

    switch (cp) {
    case 0xC6: return "AE";
    case 0xE6: return "ae";
    case 0xDE: return "TH";
    case 0xFE: return "th";
    case 0xDF: return "ss";
    case 0x132: return "IJ";
    case 0x133: return "ij";
    case 0x152: return "OE";
    case 0x153: return "oe";
    default: break;
    }
    if (cp >= 0xC0 && cp <= 0xFF)
        c = tn__latin1[cp - 0xC0];
    else if (cp >= 0x100 && cp <= 0x17F)
        c = tn__latin_a[cp - 0x100];
    if (c == '?')
        return NULL;
    one[0] = c;
    one[1] = '\0';
    return one;
}

/* Decodes one UTF-8 sequence at s: its length (1..4) with *cp, or 0 when the
 * bytes there are not well-formed UTF-8 (the caller skips one byte). */
static size_t tn__utf8(const unsigned char *s, uint32_t *cp)
{
    size_t len;
    uint32_t c;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        len = 2;
        c = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3;
        c = s[0] & 0x0F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4;
        c = s[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;   /* also stops at the NUL */
        c = (c << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))) ||
        (len == 4 && (c < 0x10000 || c > 0x10FFFF)))
        return 0;
    *cp = c;
    return len;
}

/* Appends the sanitised s at out[*at] (at most TN_MAX bytes in all; *total
 * counts what the whole would need). Returns TN_LOSSY or 0. */
static int tn__put(char *out, size_t *at, size_t *total, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    int flags = 0, in_run = 0;

    while (*p) {
        char one[2];
        const char *w = NULL;
        uint32_t cp = 0;
        size_t len = tn__utf8(p, &cp);
        if (len == 1) {
            int ok = (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
                     (cp >= '0' && cp <= '9') || cp == '_' || cp == '-';
            one[0] = ok ? (char)cp : '_';
            one[1] = '\0';
            w = one;
        } else if (len > 1) {
            w = tn__latin(cp, one);
        }
        p += len ? len : 1;
        if (!w) {
            flags |= TN_LOSSY;
            if (in_run)
                continue;   /* one "_" for a run of them */
            in_run = 1;
            w = "_";
        } else {
            in_run = 0;
        }
        for (; *w; w++, (*total)++)
            if (*at < TN_MAX)
                out[(*at)++] = *w;
    }
    out[*at] = '\0';
    return flags;
}

int tn_make(const char *server, const char *tool, char out[TN_MAX + 1])
{
    size_t at = 0, total = 0;
    int flags = 0;

    out[0] = '\0';
    flags |= tn__put(out, &at, &total, server ? server : "");
    flags |= tn__put(out, &at, &total, "__");
    flags |= tn__put(out, &at, &total, tool ? tool : "");
    if (total > TN_MAX)
        flags |= TN_LONG;
    return flags;
}

int tn_add(tn_map_t *m, const char *server, const char *tool, void *ud)
{
    char base[TN_MAX + 1];
    tn_entry_t *e;
    size_t *mine, mask, i;
    int flags;

    server = server ? server : "";
    if (!tool || !*tool)
        return -EINVAL;
    if (m->sealed)
        return -EBUSY;
    flags = tn_make(server, tool, base);
    if (m->by_base.n) {
        /* the MCP tools of this base: the same tool again, or a collision */
        mask = m->by_base.n - 1;
        for (i = tn__hash(base) & mask; m->by_base.slot[i]; i = (i + 1) & mask) {
            tn_entry_t *o = &m->v[m->by_base.slot[i] - 1];
            if (strcmp(o->base, base) != 0)
                continue;
            if (strcmp(o->server, server) == 0 && strcmp(o->tool, tool) == 0)
                return -EEXIST;
        }
    }
    if (tn__grow(m, &m->by_base) < 0)
        return -ENOMEM;
    if (m->nmine == m->capmine) {
        size_t ncap = m->capmine ? m->capmine * 2 : 16;
        if (!(mine = realloc(m->mine, ncap * sizeof(*mine))))
            return -ENOMEM;
        m->mine = mine;
        m->capmine = ncap;
    }
    if (!(e = tn__push(m)))
        return -ENOMEM;
    memcpy(e->base, base, sizeof(base));
    e->flags = flags;
    e->ud = ud;
    e->server = strdup(server);
    e->tool = strdup(tool);
    if (!e->server || !e->tool) {
        free(e->server);
        free(e->tool);
        m->n--;
        return -ENOMEM;
    }
    /* a long name is hashed anyway; its cut base clashes with nothing */
    mask = m->by_base.n - 1;
    for (i = tn__hash(base) & mask; m->by_base.slot[i] && !(flags & TN_LONG); i = (i + 1) & mask) {
        tn_entry_t *o = &m->v[m->by_base.slot[i] - 1];
        if (strcmp(o->base, base) == 0 && !(o->flags & TN_LONG))
            o->clash = e->clash = 1;
    }
    tn__put_ix(m, &m->by_base, m->n - 1);
    m->mine[m->nmine++] = m->n - 1;
    return 0;
}

/* base cut to fit "_" + hex digits of sha256(server NUL tool) into out. */
static void tn__hashed(const tn_entry_t *e, size_t digits, char out[TN_MAX + 1])
{
    char hex[SHA256_HEX_LEN + 1];
    sha256_ctx_t c;
    unsigned char d[SHA256_DIGEST_LEN];
    size_t keep = strlen(e->base);

    sha256_init(&c);
    sha256_update(&c, e->server, strlen(e->server) + 1);
    sha256_update(&c, e->tool, strlen(e->tool));
    sha256_final(&c, d);
    for (size_t i = 0; i < SHA256_DIGEST_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    if (digits > SHA256_HEX_LEN)
        digits = SHA256_HEX_LEN;
    if (keep > TN_MAX - 1 - digits)
        keep = TN_MAX - 1 - digits;
    /* a lossy run already ends the base with "_" */
    if (keep && e->base[keep - 1] == '_')
        snprintf(out, TN_MAX + 1, "%.*s%.*s", (int)keep, e->base, (int)digits, hex);
    else
        snprintf(out, TN_MAX + 1, "%.*s_%.*s", (int)keep, e->base, (int)digits, hex);
}

/* Orders MCP tools by raw (server, tool): the hashed ones are named in this
 * order, so a (freak) clash of hashes resolves the same in any listing. */
static int tn__cmp(const void *a, const void *b)
{
    const tn_entry_t *x = *(const tn_entry_t *const *)a, *y = *(const tn_entry_t *const *)b;
    int c = strcmp(x->server, y->server);

    return c ? c : strcmp(x->tool, y->tool);
}

int tn_seal(tn_map_t *m)
{
    tn_entry_t **later = NULL;
    size_t nlater = 0;
    int rc = -ENOMEM;

    if (m->sealed)
        return 0;
    if (m->nmine && !(later = malloc(m->nmine * sizeof(*later))))
        goto out;
    /* names that need no suffix first: unique among ours by construction */
    for (size_t k = 0; k < m->nmine; k++) {
        tn_entry_t *e = &m->v[m->mine[k]];
        if (e->clash || e->flags || tn__find(m, e->base)) {
            later[nlater++] = e;
            continue;
        }
        memcpy(e->name, e->base, sizeof(e->name));
        if (tn__grow(m, &m->by_name) < 0)
            goto out;
        tn__put_ix(m, &m->by_name, m->mine[k]);
    }
    if (nlater)
        qsort(later, nlater, sizeof(*later), tn__cmp);
    for (size_t k = 0; k < nlater; k++) {
        tn_entry_t *e = later[k];
        size_t digits = TN_HASH_HEX;
        unsigned extra = 1;
        tn__hashed(e, digits, e->name);
        while (tn__find(m, e->name)) {
            if (digits < 16) {
                digits += 2;
                tn__hashed(e, digits, e->name);
            } else {
                /* only a client can force this, naming its tools after ours */
                char cand[TN_MAX + 1];
                int sl;
                tn__hashed(e, digits, cand);
                sl = snprintf(e->name, sizeof(e->name), "_%u", ++extra);
                snprintf(e->name, sizeof(e->name), "%.*s_%u", TN_MAX - sl, cand, extra);
            }
        }
        if (tn__grow(m, &m->by_name) < 0)
            goto out;
        tn__put_ix(m, &m->by_name, (size_t)(e - m->v));
    }
    m->sealed = 1;
    rc = 0;
out:
    free(later);
    return rc;
}

int tn_get(const tn_map_t *m, size_t i, const char **name, const char **server,
           const char **tool, void **ud)
{
    const tn_entry_t *e;

    if (i >= m->nmine)
        return -ENOENT;
    e = &m->v[m->mine[i]];
    if (name)
        *name = m->sealed ? e->name : NULL;
    if (server)
        *server = e->server;
    if (tool)
        *tool = e->tool;
    if (ud)
        *ud = e->ud;
    return 0;
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
    return m->nmine;
}
