#include "shared/arena.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

struct arena_block {
    struct arena_block *next;
    size_t size, used;
    alignas(max_align_t) unsigned char mem[];
};

struct arena_cleanup {
    struct arena_cleanup *next;
    arena_cleanup_fn fn;
    void *data;
};

struct arena {
    struct arena_block *head;   /* current block; the first block is last */
    struct arena_cleanup *cleanups;
    size_t block;
    size_t used;
};

static struct arena_block *arena__block(size_t size)
{
    struct arena_block *b = malloc(sizeof(*b) + size);
    if (!b)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

arena_t *arena_new(size_t block)
{
    arena_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->block = block < 256 ? 256 : block;
    a->head = arena__block(a->block);
    if (!a->head) {
        free(a);
        return NULL;
    }
    return a;
}

void *arena_alloc(arena_t *a, size_t n)
{
    const size_t al = alignof(max_align_t);
    struct arena_block *b = a->head;
    size_t off;

    n = n ? n : 1;
    if (n > SIZE_MAX - al)
        return NULL;
    off = (b->used + al - 1) & ~(al - 1);
    if (off > b->size || b->size - off < n) {
        size_t sz = n > a->block ? n : a->block;
        b = arena__block(sz);
        if (!b)
            return NULL;
        b->next = a->head;
        a->head = b;
        off = 0;
    }
    b->used = off + n;
    a->used += n;
    memset(b->mem + off, 0, n);
    return b->mem + off;
}

char *arena_strndup(arena_t *a, const char *s, size_t n)
{
    char *p;

    if (!s)
        return NULL;
    p = arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(arena_t *a, const char *s)
{
    return s ? arena_strndup(a, s, strlen(s)) : NULL;
}

int arena_on_reset(arena_t *a, arena_cleanup_fn fn, void *data)
{
    struct arena_cleanup *c = malloc(sizeof(*c));
    if (!c) {
        fn(data);
        return -ENOMEM;
    }
    c->fn = fn;
    c->data = data;
    c->next = a->cleanups;
    a->cleanups = c;
    return 0;
}

static void arena__json_put(void *p)
{
    json_object_put(p);
}

int arena_own_json(arena_t *a, void *json_object)
{
    return json_object ? arena_on_reset(a, arena__json_put, json_object) : 0;
}

int arena_own_malloc(arena_t *a, void *p)
{
    return p ? arena_on_reset(a, free, p) : 0;
}

void arena_reset(arena_t *a)
{
    struct arena_cleanup *c;
    struct arena_block *b;

    while ((c = a->cleanups)) {
        a->cleanups = c->next;
        c->fn(c->data);
        free(c);
    }
    while (a->head->next) {
        b = a->head;
        a->head = b->next;
        free(b);
    }
    a->head->used = 0;
    a->used = 0;
}

void arena_free(arena_t *a)
{
    if (!a)
        return;
    arena_reset(a);
    free(a->head);
    free(a);
}

size_t arena_used(const arena_t *a)
{
    return a->used;
}
