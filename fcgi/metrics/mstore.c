/* mstore — the shared segment (see mstore.h). One mapping per host pool:
 * the master maps it before fork, so a re-forked worker writes into the
 * counts its predecessor left. */
#include "fcgi/metrics/mstore.h"

#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

enum { MSTORE__EMPTY = 0, MSTORE__CLAIMED = 1, MSTORE__READY = 2 };
#define MSTORE__PROBES 64   /* a lookup looks at most this many rows */

struct mstore__slot {
    uint32_t state;         /* MSTORE__*, atomic */
    uint32_t fam;
    uint32_t hash;
    char key[MSTORE_KEY];
};

struct mstore__seg {
    uint64_t dropped;
    uint64_t ov_used[MSTORE_FAMS];
    uint64_t ov[MSTORE_FAMS][MSTORE_VALS];
    int64_t gauge[MSTORE_WORKERS][MSTORE_GAUGES];
    struct mstore__slot slot[MSTORE_SERIES];
    uint64_t val[MSTORE_SERIES][MSTORE_VALS];
};

static struct mstore__seg *mstore__seg;
static int mstore__me;      /* this process's worker slot */

int mstore_init(void)
{
    void *p;

    if (mstore__seg)
        return 0;
    p = mmap(NULL, sizeof(struct mstore__seg), PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -ENOMEM;
    mstore__seg = p;   /* zero-filled by the kernel */
    return 0;
}

int mstore_on(void)
{
    return mstore__seg != NULL;
}

void mstore_worker_gone(int slot)
{
    if (!mstore__seg || slot < 0 || slot >= MSTORE_WORKERS)
        return;
    for (int g = 0; g < MSTORE_GAUGES; g++)
        __atomic_store_n(&mstore__seg->gauge[slot][g], 0, __ATOMIC_RELAXED);
}

void mstore_worker(int slot)
{
    if (slot < 0 || slot >= MSTORE_WORKERS)
        slot = 0;
    mstore__me = slot;
    mstore_worker_gone(slot);
}

/* FNV-1a over the family and the key. */
static uint32_t mstore__hash(unsigned fam, const char *key, size_t len)
{
    uint32_t h = 2166136261u ^ fam;

    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 16777619u;
    return h;
}

/* The '\x1f'-joined key into out; -ENOSPC when it does not fit or a value
 * holds the separator. */
static int mstore__key(const char *const *vals, int n, char *out, size_t *len)
{
    size_t k = 0;

    for (int i = 0; i < n; i++) {
        const char *v = vals[i] ? vals[i] : "";
        size_t l = strlen(v);
        if (memchr(v, 0x1f, l) || k + l + 1 >= MSTORE_KEY)
            return -ENOSPC;
        if (i)
            out[k++] = 0x1f;
        memcpy(out + k, v, l);
        k += l;
    }
    out[k] = '\0';
    *len = k;
    return 0;
}

static uint64_t *mstore__overflow(unsigned fam)
{
    __atomic_fetch_add(&mstore__seg->dropped, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&mstore__seg->ov_used[fam], 1, __ATOMIC_RELAXED);
    return mstore__seg->ov[fam];
}

/* Waits (bounded) for a claimed row's key; 1 when it is READY. The writer
 * is a few stores from publishing, unless it was preempted (yield to it) or
 * died between claim and publish (the row stays CLAIMED for good). */
static int mstore__ready(struct mstore__slot *s)
{
    for (int spin = 0; spin < 10000; spin++) {
        if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == MSTORE__READY)
            return 1;
        if (spin >= 100)
            sched_yield();
    }
    return 0;
}

uint64_t *mstore_row(unsigned fam, const char *const *vals, int n)
{
    char key[MSTORE_KEY];
    size_t len;
    uint32_t h;

    if (!mstore__seg || fam >= MSTORE_FAMS)
        return NULL;
    if (mstore__key(vals, n, key, &len) != 0)
        return mstore__overflow(fam);
    h = mstore__hash(fam, key, len);
    for (unsigned p = 0; p < MSTORE__PROBES; p++) {
        size_t i = (h + p) % MSTORE_SERIES;
        struct mstore__slot *s = &mstore__seg->slot[i];
        uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);

        if (st == MSTORE__EMPTY) {
            uint32_t want = MSTORE__EMPTY;
            if (__atomic_compare_exchange_n(&s->state, &want, MSTORE__CLAIMED, 0,
                                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                s->fam = fam;
                s->hash = h;
                memcpy(s->key, key, len + 1);
                __atomic_store_n(&s->state, MSTORE__READY, __ATOMIC_RELEASE);
                return mstore__seg->val[i];
            }
            st = want;   /* another process claimed it: look at what it wrote */
        }
        /* a row still being written may hold this very key: probing on could
         * intern it twice (a duplicate series), so count it as dropped */
        if (st == MSTORE__CLAIMED && !mstore__ready(s))
            break;
        if (s->hash == h && s->fam == fam && strcmp(s->key, key) == 0)
            return mstore__seg->val[i];
    }
    return mstore__overflow(fam);
}

void mstore_add(uint64_t *row, int i, uint64_t v)
{
    if (row && i >= 0 && i < MSTORE_VALS)
        __atomic_fetch_add(&row[i], v, __ATOMIC_RELAXED);
}

uint64_t mstore_get(const uint64_t *row, int i)
{
    return row && i >= 0 && i < MSTORE_VALS ? __atomic_load_n(&row[i], __ATOMIC_RELAXED) : 0;
}

void mstore_gauge_add(int g, int64_t d)
{
    if (mstore__seg && g >= 0 && g < MSTORE_GAUGES)
        __atomic_fetch_add(&mstore__seg->gauge[mstore__me][g], d, __ATOMIC_RELAXED);
}

int64_t mstore_gauge_sum(int g)
{
    int64_t s = 0;

    if (!mstore__seg || g < 0 || g >= MSTORE_GAUGES)
        return 0;
    for (int w = 0; w < MSTORE_WORKERS; w++)
        s += __atomic_load_n(&mstore__seg->gauge[w][g], __ATOMIC_RELAXED);
    return s;
}

uint64_t mstore_dropped(void)
{
    return mstore__seg ? __atomic_load_n(&mstore__seg->dropped, __ATOMIC_RELAXED) : 0;
}

int mstore_each(unsigned fam, void (*fn)(void *ud, const char *key, const uint64_t *row),
                void *ud)
{
    int n = 0;

    if (!mstore__seg || fam >= MSTORE_FAMS)
        return 0;
    for (size_t i = 0; i < MSTORE_SERIES; i++) {
        struct mstore__slot *s = &mstore__seg->slot[i];
        if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != MSTORE__READY || s->fam != fam)
            continue;
        fn(ud, s->key, mstore__seg->val[i]);
        n++;
    }
    if (__atomic_load_n(&mstore__seg->ov_used[fam], __ATOMIC_RELAXED)) {
        fn(ud, NULL, mstore__seg->ov[fam]);
        n++;
    }
    return n;
}
