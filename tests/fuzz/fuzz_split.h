/* fuzz_split — helpers shared by the libFuzzer targets in tests/fuzz/.
 *
 * Parsers that take a byte stream must give the same events however the
 * stream is cut into reads. The targets take their cut points from the input
 * itself (a small PRNG seeded by its first bytes), so libFuzzer explores the
 * splits as it explores the bytes, and each run is reproducible. */
#ifndef AIPROXY_FUZZ_SPLIT_H
#define AIPROXY_FUZZ_SPLIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct fuzz_split {
    uint32_t state;
} fuzz_split_t;

static inline void fuzz_split_init(fuzz_split_t *s, uint32_t seed)
{
    s->state = seed * 2654435761u + 1u;
}

/* The length of the next piece: 1..max (max >= 1), biased to short pieces so
 * line ends and multi-byte markers get cut often. */
static inline size_t fuzz_split_next(fuzz_split_t *s, size_t max)
{
    size_t n;

    s->state = s->state * 1103515245u + 12345u;
    n = (s->state >> 16) & 0xff;
    n = (n & 0x80) ? (n & 0x3f) + 1 : (n & 0x7) + 1;
    return n > max ? max : n;
}

/* A NUL-terminated heap copy (the fuzzer's input is not terminated). Aborts
 * on ENOMEM: the fuzzer would report it as a crash, which is what we want. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
