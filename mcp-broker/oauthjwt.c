/* oauthjwt — JWS compact serialisation for client assertions (see oauthjwt.h).
 * ES256 signatures come out of OpenSSL DER-encoded; JWS wants r||s, each 32
 * bytes (RFC 7518 §3.4), so they are converted. */
#include "mcp-broker/oauthjwt.h"
#include "mcp-broker/oauthwire.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JWT_MAX 8192

int oauthjwt_sign(const char *pem, const char *alg, const char *claims, char **out, char *err,
                  size_t errlen)
{
    char header[64], *jwt = NULL;
    unsigned char *sig = NULL, raw[64];
    const unsigned char *sp;
    size_t siglen = 0, n;
    long l;
    BIO *bio = NULL;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *md = NULL;
    ECDSA_SIG *es = NULL;
    int rc = -EINVAL, is_es;

    *out = NULL;
    is_es = strcmp(alg, "ES256") == 0;
    if (!is_es && strcmp(alg, "RS256") != 0) {
        snprintf(err, errlen, "signing algorithm '%.32s' is not supported (ES256, RS256)", alg);
        goto out;
    }
    bio = BIO_new_mem_buf(pem, -1);
    key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    if (!key) {
        snprintf(err, errlen, "the private key is not a readable PEM private key");
        goto out;
    }
    if ((is_es && EVP_PKEY_base_id(key) != EVP_PKEY_EC) ||
        (!is_es && EVP_PKEY_base_id(key) != EVP_PKEY_RSA)) {
        snprintf(err, errlen, "the private key does not fit %s", alg);
        goto out;
    }
    rc = -ENOMEM;
    jwt = malloc(JWT_MAX);
    md = EVP_MD_CTX_new();
    if (!jwt || !md)
        goto out;
    snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    l = oauthwire_b64url(header, strlen(header), jwt, JWT_MAX);
    if (l < 0)
        goto out;
    n = (size_t)l;
    jwt[n++] = '.';
    l = oauthwire_b64url(claims, strlen(claims), jwt + n, JWT_MAX - n);
    if (l < 0)
        goto out;
    n += (size_t)l;
    rc = -EINVAL;
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (unsigned char *)jwt, n) != 1 ||
        !(sig = malloc(siglen)) ||
        EVP_DigestSign(md, sig, &siglen, (unsigned char *)jwt, n) != 1) {
        snprintf(err, errlen, "signing the client assertion failed");
        goto out;
    }
    sp = sig;
    if (is_es) {
        const BIGNUM *r, *s;

        es = d2i_ECDSA_SIG(NULL, &sp, (long)siglen);
        if (!es) {
            snprintf(err, errlen, "signing the client assertion failed");
            goto out;
        }
        ECDSA_SIG_get0(es, &r, &s);
        if (BN_bn2binpad(r, raw, 32) != 32 || BN_bn2binpad(s, raw + 32, 32) != 32) {
            snprintf(err, errlen, "the EC key is not P-256");
            goto out;
        }
        sp = raw;
        siglen = 64;
    }
    jwt[n++] = '.';
    l = oauthwire_b64url(sp, siglen, jwt + n, JWT_MAX - n);
    if (l < 0) {
        snprintf(err, errlen, "the client assertion is too long");
        goto out;
    }
    *out = jwt;
    jwt = NULL;
    rc = 0;
out:
    ECDSA_SIG_free(es);
    free(sig);
    free(jwt);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    BIO_free(bio);
    return rc;
}
