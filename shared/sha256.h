/* sha256 — SHA-256 (FIPS 180-4), for hashing API keys before they become
 * Redis cache keys and for length-hiding constant-time comparison.
 *
 * Our own ~120 lines rather than libcrypto: the build links no crypto library,
 * and one hash does not justify a new dependency for every deployment. No I/O,
 * no global state; a context is caller-owned and reusable after _init. */
#ifndef AIPROXY_SHA256_H
#define AIPROXY_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32
#define SHA256_HEX_LEN    64   /* without the NUL */

typedef struct sha256_ctx {
    uint32_t h[8];
    uint64_t total;          /* bytes fed so far */
    unsigned char block[64];
    size_t fill;             /* bytes waiting in block */
} sha256_ctx_t;

void sha256_init(sha256_ctx_t *c);
void sha256_update(sha256_ctx_t *c, const void *data, size_t len);
/* Writes the digest and leaves the context to be re-initialised before reuse. */
void sha256_final(sha256_ctx_t *c, unsigned char out[SHA256_DIGEST_LEN]);

/* One-shot digest of len bytes. */
void sha256(const void *data, size_t len, unsigned char out[SHA256_DIGEST_LEN]);

/* One-shot digest as lowercase hex, NUL-terminated (out holds 65 bytes). */
void sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1]);

#endif
