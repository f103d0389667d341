/* arena — per-request memory pool (nginx's ngx_pool_t, in small).
 *
 * The responder creates one arena per worker thread, allocates everything a
 * request needs from it, and calls arena_reset() after FCGX_Finish_r. Nothing
 * allocated from an arena is freed on its own. Resources that are not arena
 * memory (json-c objects, curl handles, malloc'd strings) get a cleanup
 * registered with arena_on_reset(); cleanups run in reverse order of
 * registration at reset and at free. Not thread-safe: one arena per thread. */
#ifndef AIPROXY_ARENA_H
#define AIPROXY_ARENA_H

#include <stddef.h>

typedef struct arena arena_t;
typedef void (*arena_cleanup_fn)(void *data);

/* A new arena whose blocks are `block` bytes (larger requests get their own
 * block). NULL on ENOMEM. */
arena_t *arena_new(size_t block);

/* Zeroed memory aligned for any type, valid until the next reset. NULL on
 * ENOMEM. */
void *arena_alloc(arena_t *a, size_t n);

/* Copies of a string / n bytes of one (NUL added). NULL stays NULL. */
char *arena_strdup(arena_t *a, const char *s);
char *arena_strndup(arena_t *a, const char *s, size_t n);

/* Runs fn(data) at the next reset or free. Returns 0 or -ENOMEM (in which
 * case fn is called at once, so the resource never leaks). */
int arena_on_reset(arena_t *a, arena_cleanup_fn fn, void *data);

/* Convenience cleanups: json_object_put and free. */
int arena_own_json(arena_t *a, void *json_object);
int arena_own_malloc(arena_t *a, void *p);

/* Runs the cleanups and forgets every allocation; keeps the first block. */
void arena_reset(arena_t *a);

/* Resets and frees the arena itself. NULL is a no-op. */
void arena_free(arena_t *a);

/* Bytes handed out since the last reset (for tests and metrics). */
size_t arena_used(const arena_t *a);

#endif
