/* jtok — see jtok.h. */
#include "shared/jtok.h"

#include <pthread.h>
#include <stdlib.h>

#define JTOK__SLOTS 2

typedef struct jtok__slots {
    json_tokener *tok[JTOK__SLOTS];
    int depth[JTOK__SLOTS];
    int busy[JTOK__SLOTS];
} jtok__slots_t;

static pthread_key_t jtok__key;
static pthread_once_t jtok__once = PTHREAD_ONCE_INIT;
static int jtok__key_ok;

/* pthread key destructor: the exiting thread's tokeners. */
static void jtok__free_slots(void *p)
{
    jtok__slots_t *s = p;

    for (int i = 0; s && i < JTOK__SLOTS; i++)
        if (s->tok[i])
            json_tokener_free(s->tok[i]);
    free(s);
}

static void jtok__init(void)
{
    jtok__key_ok = pthread_key_create(&jtok__key, jtok__free_slots) == 0;
}

/* The thread's slots, made at its first call; NULL on ENOMEM. */
static jtok__slots_t *jtok__slots(void)
{
    jtok__slots_t *s;

    pthread_once(&jtok__once, jtok__init);
    if (!jtok__key_ok)
        return NULL;
    if ((s = pthread_getspecific(jtok__key)))
        return s;
    if (!(s = calloc(1, sizeof(*s))))
        return NULL;
    if (pthread_setspecific(jtok__key, s) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

json_tokener *jtok_get(int depth, int flags)
{
    jtok__slots_t *s = jtok__slots();
    json_tokener *tok;
    int i, free_slot = -1;

    for (i = 0; s && i < JTOK__SLOTS; i++) {
        if (s->tok[i] && s->depth[i] == depth && !s->busy[i]) {
            s->busy[i] = 1;
            json_tokener_reset(s->tok[i]);
            json_tokener_set_flags(s->tok[i], flags);
            return s->tok[i];
        }
        if (!s->tok[i] && free_slot < 0)
            free_slot = i;
    }
    /* no slot for this depth (or no slots at all): a tokener of its own,
     * kept in a free slot when there is one */
    if (!(tok = json_tokener_new_ex(depth)))
        return NULL;
    json_tokener_set_flags(tok, flags);
    if (s && free_slot >= 0) {
        s->tok[free_slot] = tok;
        s->depth[free_slot] = depth;
        s->busy[free_slot] = 1;
    }
    return tok;
}

void jtok_put(json_tokener *tok, size_t len)
{
    jtok__slots_t *s;

    if (!tok)
        return;
    s = jtok__key_ok ? pthread_getspecific(jtok__key) : NULL;
    for (int i = 0; s && i < JTOK__SLOTS; i++) {
        if (s->tok[i] == tok) {
            s->busy[i] = 0;
            if (len > JTOK_KEEP_MAX) {
                s->tok[i] = NULL;
                json_tokener_free(tok);
            }
            return;
        }
    }
    json_tokener_free(tok);   /* not a slot's: it was made for this parse */
}
