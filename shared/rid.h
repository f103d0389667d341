/* rid — random identifiers (request ids on the wire, broker ids, response
 * ids shown to clients).
 *
 * Each thread has its own ChaCha20 keystream, keyed once from getrandom(2)
 * on the thread's first id: ids are unpredictable and unique across threads
 * and processes, and making one costs no system call and no lock. A child
 * of fork(2) re-keys on its first id, so parent and child never share a
 * stream. Nothing here fails: should getrandom(2) be unavailable the key
 * comes from the clock, the pid and the thread (unique, not secret), and
 * the log is not told (shared/ stays below log users). */
#ifndef AIPROXY_RID_H
#define AIPROXY_RID_H

#include <stddef.h>

/* Fills out[0..n) with random bytes. */
void rid_bytes(void *out, size_t n);

/* Writes n lowercase hex digits and a NUL: `out` holds n + 1 bytes. */
void rid_hex(char *out, size_t n);

/* Writes n characters of [A-Za-z0-9], each equally likely, and a NUL:
 * `out` holds n + 1 bytes. */
void rid_alnum(char *out, size_t n);

#endif
