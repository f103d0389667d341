/* url — URLs as they may be shown to people (clients, logs): without the
 * secrets a URL can carry. No I/O. */
#ifndef AIPROXY_URL_H
#define AIPROXY_URL_H

#include <stddef.h>

/* Writes into dst (dcap bytes, NUL included; dcap >= 1) `url` without its
 * userinfo ("user:password@"), its query string and its fragment: what is
 * left (scheme, host, port, path) names the place without handing out a
 * credential, whether it sits in the userinfo or in "?key=...". A result
 * longer than dst is cut (still without secrets). A NULL url gives "?".
 * Returns dst, so a call can be a printf argument. */
const char *url_redact(const char *url, char *dst, size_t dcap);

#endif
