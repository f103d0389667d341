/* rid — random identifiers from a per-thread ChaCha20 keystream (RFC 8439's
 * block function; key and nonce from getrandom(2), a 64-bit block counter). */
#include "shared/rid.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

typedef struct rid_state {
    uint32_t in[16];          /* constants, key, counter, nonce */
    unsigned char ks[64];     /* the current keystream block */
    size_t used;              /* bytes of ks already handed out */
    int keyed;
} rid_state_t;

static _Thread_local rid_state_t rid__st;
static pthread_once_t rid__once = PTHREAD_ONCE_INIT;

#define RID_ROTL(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define RID_QR(a, b, c, d)                                                                  \
    do {                                                                                    \
        a += b; d ^= a; d = RID_ROTL(d, 16);                                                \
        c += d; b ^= c; b = RID_ROTL(b, 12);                                                \
        a += b; d ^= a; d = RID_ROTL(d, 8);                                                 \
        c += d; b ^= c; b = RID_ROTL(b, 7);                                                 \
    } while (0)

static void rid__block(const uint32_t in[16], unsigned char out[64])
{
    uint32_t x[16];
    int i;

    memcpy(x, in, sizeof(x));
    for (i = 0; i < 10; i++) {
        RID_QR(x[0], x[4], x[8], x[12]);
        RID_QR(x[1], x[5], x[9], x[13]);
        RID_QR(x[2], x[6], x[10], x[14]);
        RID_QR(x[3], x[7], x[11], x[15]);
        RID_QR(x[0], x[5], x[10], x[15]);
        RID_QR(x[1], x[6], x[11], x[12]);
        RID_QR(x[2], x[7], x[8], x[13]);
        RID_QR(x[3], x[4], x[9], x[14]);
    }
    for (i = 0; i < 16; i++) {
        uint32_t v = x[i] + in[i];
        out[4 * i] = (unsigned char)v;
        out[4 * i + 1] = (unsigned char)(v >> 8);
        out[4 * i + 2] = (unsigned char)(v >> 16);
        out[4 * i + 3] = (unsigned char)(v >> 24);
    }
}

/* The forking thread is the only one in the child: forget its key there. */
static void rid__after_fork_child(void)
{
    memset(&rid__st, 0, sizeof(rid__st));
}

static void rid__register(void)
{
    pthread_atfork(NULL, NULL, rid__after_fork_child);
}

static void rid__key(rid_state_t *s)
{
    uint32_t seed[10];   /* 8 words of key, 2 of nonce */
    size_t got = 0;

    pthread_once(&rid__once, rid__register);
    while (got < sizeof(seed)) {
        ssize_t n = getrandom((char *)seed + got, sizeof(seed) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < sizeof(seed)) {
        /* never expected on Linux >= 3.17: unique rather than secret */
        struct timespec ts;
        uintptr_t self = (uintptr_t)&rid__st;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed[0] ^= (uint32_t)ts.tv_sec;
        seed[1] ^= (uint32_t)ts.tv_nsec;
        seed[2] ^= (uint32_t)getpid();
        seed[3] ^= (uint32_t)self;
        seed[4] ^= (uint32_t)((uint64_t)self >> 32);
    }
    s->in[0] = 0x61707865u;   /* "expand 32-byte k" */
    s->in[1] = 0x3320646eu;
    s->in[2] = 0x79622d32u;
    s->in[3] = 0x6b206574u;
    memcpy(&s->in[4], seed, 8 * sizeof(uint32_t));
    s->in[12] = 0;
    s->in[13] = 0;
    s->in[14] = seed[8];
    s->in[15] = seed[9];
    s->used = sizeof(s->ks);
    s->keyed = 1;
    memset(seed, 0, sizeof(seed));
}

void rid_bytes(void *out, size_t n)
{
    rid_state_t *s = &rid__st;
    unsigned char *p = out;

    if (!s->keyed)
        rid__key(s);
    while (n > 0) {
        size_t take;
        if (s->used == sizeof(s->ks)) {
            rid__block(s->in, s->ks);
            if (++s->in[12] == 0)
                s->in[13]++;
            s->used = 0;
        }
        take = sizeof(s->ks) - s->used;
        if (take > n)
            take = n;
        memcpy(p, s->ks + s->used, take);
        memset(s->ks + s->used, 0, take);   /* a byte handed out is not kept */
        s->used += take;
        p += take;
        n -= take;
    }
}

void rid_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[32];
    size_t i = 0;

    while (i < n) {
        size_t k, chunk = (n - i + 1) / 2;
        if (chunk > sizeof(r))
            chunk = sizeof(r);
        rid_bytes(r, chunk);
        for (k = 0; k < chunk && i < n; k++) {
            out[i++] = hex[r[k] >> 4];
            if (i < n)
                out[i++] = hex[r[k] & 15];
        }
    }
    out[n] = '\0';
}

void rid_alnum(char *out, size_t n)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const unsigned lim = 256 - 256 % (sizeof(alnum) - 1);   /* 248: no modulo bias */
    unsigned char r[32];
    size_t i = 0;

    while (i < n) {
        size_t k;
        rid_bytes(r, sizeof(r));
        for (k = 0; k < sizeof(r) && i < n; k++)
            if (r[k] < lim)
                out[i++] = alnum[r[k] % (sizeof(alnum) - 1)];
    }
    out[n] = '\0';
}
