/* oauthjwt — a signed JWT for private_key_jwt client authentication
 * (RFC 7523 §2.2), with libcrypto (which libcurl brings along). */
#ifndef AIPROXY_OAUTHJWT_H
#define AIPROXY_OAUTHJWT_H

#include <stddef.h>

/* Signs `claims` (a JSON object text) with the PEM private key `pem` under
 * `alg` (ES256 with a P-256 key, RS256 with an RSA key). On success *out is
 * the compact JWT (malloc'd, caller frees) and 0 is returned; otherwise
 * -EINVAL (unknown alg, unreadable key, key/alg mismatch) or -ENOMEM, with
 * err saying which — never the key itself. */
int oauthjwt_sign(const char *pem, const char *alg, const char *claims, char **out, char *err,
                  size_t errlen);

#endif
