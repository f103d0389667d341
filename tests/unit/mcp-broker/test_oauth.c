/* OAuth for HTTP MCP servers (issue 15 item 6), without a network: the
 * WWW-Authenticate parser, the discovery URL orders of the MCP spec, the
 * RFC 8707 resource check, form and base64 encodings, client assertions
 * (signed and verified with libcrypto), the auth block of the config. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mcp-broker/oauth.h"
#include "mcp-broker/oauthjwt.h"
#include "mcp-broker/oauthwire.h"
#include "shared/cfg.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

static void challenge(void **state)
{
    oauthwire_challenge_t c;

    (void)state;
    assert_int_equal(oauthwire_challenge_parse(
        "Bearer resource_metadata=\"https://m.example/.well-known/oauth-protected-resource/mcp\", "
        "scope=\"mcp:basic mcp:write\", error=\"insufficient_scope\"", &c), 0);
    assert_true(c.bearer);
    assert_string_equal(c.resource_metadata, "https://m.example/.well-known/oauth-protected-resource/mcp");
    assert_string_equal(c.scope, "mcp:basic mcp:write");
    assert_string_equal(c.error, "insufficient_scope");

    /* another scheme first, token (unquoted) values, escapes, case */
    assert_int_equal(oauthwire_challenge_parse(
        "Basic realm=\"a, b\", bearer error=invalid_token, scope=\"x\\\"y\"", &c), 0);
    assert_string_equal(c.error, "invalid_token");
    assert_string_equal(c.scope, "x\"y");
    assert_string_equal(c.resource_metadata, "");

    /* a bare Bearer is still a challenge; no Bearer is not */
    assert_int_equal(oauthwire_challenge_parse("Bearer", &c), 0);
    assert_true(c.bearer);
    assert_int_equal(oauthwire_challenge_parse("Basic realm=\"x\"", &c), -EINVAL);
    assert_int_equal(oauthwire_challenge_parse("", &c), -EINVAL);
    assert_int_equal(oauthwire_challenge_parse(NULL, &c), -EINVAL);
}

static void discovery_urls(void **state)
{
    oauthwire_urls_t u;

    (void)state;
    /* protected resource metadata: path-suffixed first, then the root */
    assert_int_equal(oauthwire_prm_urls("https://m.example:8443/v1/mcp/", &u), 0);
    assert_int_equal(u.n, 2);
    assert_string_equal(u.url[0], "https://m.example:8443/.well-known/oauth-protected-resource/v1/mcp");
    assert_string_equal(u.url[1], "https://m.example:8443/.well-known/oauth-protected-resource");
    assert_int_equal(oauthwire_prm_urls("http://m.example", &u), 0);
    assert_int_equal(u.n, 1);
    assert_string_equal(u.url[0], "http://m.example/.well-known/oauth-protected-resource");
    assert_int_equal(oauthwire_prm_urls("ftp://m.example/x", &u), -EINVAL);

    /* authorization server metadata, MCP 2025-11-25 order */
    assert_int_equal(oauthwire_as_urls("https://as.example/tenant1", &u), 0);
    assert_int_equal(u.n, 3);
    assert_string_equal(u.url[0], "https://as.example/.well-known/oauth-authorization-server/tenant1");
    assert_string_equal(u.url[1], "https://as.example/.well-known/openid-configuration/tenant1");
    assert_string_equal(u.url[2], "https://as.example/tenant1/.well-known/openid-configuration");
    assert_int_equal(oauthwire_as_urls("https://as.example/", &u), 0);
    assert_int_equal(u.n, 2);
    assert_string_equal(u.url[0], "https://as.example/.well-known/oauth-authorization-server");
    assert_string_equal(u.url[1], "https://as.example/.well-known/openid-configuration");

    char o[256];
    assert_int_equal(oauthwire_origin("http://h:81/a/b?c", o, sizeof(o)), 0);
    assert_string_equal(o, "http://h:81");
}

static void resource_check(void **state)
{
    (void)state;
    assert_true(oauthwire_resource_matches("https://m.example/mcp", "https://m.example/mcp"));
    assert_true(oauthwire_resource_matches("https://m.example/", "https://m.example/mcp"));
    assert_true(oauthwire_resource_matches("https://m.example/mcp/", "https://m.example/mcp"));
    assert_true(oauthwire_resource_matches("https://M.EXAMPLE/mcp", "https://m.example/mcp"));
    assert_false(oauthwire_resource_matches("https://evil.example.com/mcp", "http://localhost:1/mcp"));
    assert_false(oauthwire_resource_matches("https://m.example/mc", "https://m.example/mcp"));
    assert_false(oauthwire_resource_matches("https://m.example/other", "https://m.example/mcp"));
    assert_false(oauthwire_resource_matches("http://m.example/mcp", "https://m.example/mcp"));
    assert_false(oauthwire_resource_matches("https://m.example:444/mcp", "https://m.example/mcp"));
    assert_false(oauthwire_resource_matches(NULL, "https://m.example/mcp"));
}

static void encodings(void **state)
{
    buf_t b;
    char out[64];

    (void)state;
    buf_init(&b, 64);
    assert_int_equal(oauthwire_form_add(&b, "grant_type", "client_credentials"), 0);
    assert_int_equal(oauthwire_form_add(&b, "scope", "a b/c&d=é"), 0);
    assert_string_equal(buf_str(&b), "grant_type=client_credentials&scope=a+b%2Fc%26d%3D%C3%A9");
    assert_int_equal(oauthwire_form_add(&b, "x", "a long value that does not fit in the cap"), -ENOSPC);
    buf_free(&b);

    assert_int_equal(oauthwire_b64("id:secret", 9, out, sizeof(out)), 12);
    assert_string_equal(out, "aWQ6c2VjcmV0");
    assert_int_equal(oauthwire_b64("ab", 2, out, sizeof(out)), 4);
    assert_string_equal(out, "YWI=");
    assert_int_equal(oauthwire_b64url("\xfb\xff", 2, out, sizeof(out)), 3);
    assert_string_equal(out, "-_8");
    assert_int_equal(oauthwire_b64url("abcdef", 6, out, 4), -ENOSPC);
}

/* base64url → bytes (test helper; no padding). */
static size_t unb64url(const char *s, size_t n, unsigned char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned v = 0;
    int bits = 0;
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        v = v << 6 | (unsigned)(strchr(a, s[i]) - a);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(v >> bits);
        }
    }
    return o;
}

static char *pem_of(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p, *s;
    long n;

    assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    n = BIO_get_mem_data(b, &p);
    s = calloc(1, (size_t)n + 1);
    memcpy(s, p, (size_t)n);
    BIO_free(b);
    return s;
}

/* Verifies jwt's signature with key k; ES256 comes raw r||s. */
static int verify(const char *jwt, EVP_PKEY *k, int es)
{
    const char *dot = strrchr(jwt, '.');
    unsigned char sig[600], der[128], *dp = der;
    size_t sl = unb64url(dot + 1, strlen(dot + 1), sig), dl = sizeof(der);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok;

    if (es) {
        ECDSA_SIG *e = ECDSA_SIG_new();
        assert_int_equal(sl, 64);
        ECDSA_SIG_set0(e, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
        dl = (size_t)i2d_ECDSA_SIG(e, &dp);
        ECDSA_SIG_free(e);
        memcpy(sig, der, dl);
        sl = dl;
    }
    ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
         EVP_DigestVerify(md, sig, sl, (const unsigned char *)jwt, (size_t)(dot - jwt)) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

static void client_assertion(void **state)
{
    EVP_PKEY *ec = EVP_EC_gen("P-256"), *rsa = EVP_RSA_gen(2048);
    char *pem_ec = pem_of(ec), *pem_rsa = pem_of(rsa), *jwt = NULL, err[256];
    const char *claims = "{\"iss\":\"c\",\"sub\":\"c\",\"aud\":\"https://as\"}";
    unsigned char hdr[128];
    size_t n;

    (void)state;
    assert_int_equal(oauthjwt_sign(pem_ec, "ES256", claims, &jwt, err, sizeof(err)), 0);
    n = unb64url(jwt, (size_t)(strchr(jwt, '.') - jwt), hdr);
    hdr[n] = '\0';
    assert_string_equal((char *)hdr, "{\"alg\":\"ES256\",\"typ\":\"JWT\"}");
    assert_true(verify(jwt, ec, 1));
    free(jwt);
    assert_int_equal(oauthjwt_sign(pem_rsa, "RS256", claims, &jwt, err, sizeof(err)), 0);
    assert_true(verify(jwt, rsa, 0));
    free(jwt);

    /* refusals name the problem, never the key */
    assert_int_equal(oauthjwt_sign(pem_rsa, "ES256", claims, &jwt, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "the private key does not fit ES256");
    assert_null(jwt);
    assert_int_equal(oauthjwt_sign("not a key", "RS256", claims, &jwt, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a readable PEM"));
    assert_int_equal(oauthjwt_sign(pem_ec, "HS256", claims, &jwt, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "HS256"));
    free(pem_ec);
    free(pem_rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
}

static void auth_block(void **state)
{
    json_object *s;
    oauth_t *o = NULL;
    char err[512];

    (void)state;
    s = json_tokener_parse("{\"url\":\"https://m/mcp\"}");
    assert_int_equal(oauth_new("m", "https://m/mcp", s, &o, err, sizeof(err)), 0);
    assert_null(o);   /* no auth block: no OAuth */
    json_object_put(s);

    s = json_tokener_parse("{\"auth\":{\"client_id\":\"c\",\"client_secret\":\"x\"}}");
    assert_int_equal(oauth_new("m", "https://m/mcp", s, &o, err, sizeof(err)), 0);
    assert_non_null(o);
    assert_null(oauth_token(o));
    assert_true(oauth_stale(o));
    assert_false(oauth_busy(o));
    oauth_free(o);
    json_object_put(s);

    s = json_tokener_parse("{\"auth\":{\"grant\":\"password\"}}");
    assert_int_equal(oauth_new("m", "https://m/mcp", s, &o, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "auth.grant"));
    json_object_put(s);

    /* the config check: fields, grants, nested key, stdio refused */
    s = json_tokener_parse("{\"transport\":\"http\",\"url\":\"https://m/mcp\",\"auth\":{\"client_id\":\"c\","
                           "\"client_secret\":\"x\",\"private_key_jwt\":{\"key\":\"PEM\"}}}");
    assert_int_equal(cfg_check_mcp_server("m", s, err, sizeof(err)), 0);
    assert_string_equal(json_object_get_string(json_object_object_get(
                            json_object_object_get(s, "auth"), "grant")), "client_credentials");
    json_object_put(s);
    s = json_tokener_parse("{\"transport\":\"http\",\"url\":\"https://m/mcp\",\"auth\":{\"grant\":\"implicit\"}}");
    assert_int_equal(cfg_check_mcp_server("m", s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "auth.grant: must be client_credentials or refresh_token"));
    json_object_put(s);
    s = json_tokener_parse("{\"transport\":\"http\",\"url\":\"https://m/mcp\",\"auth\":{\"clientid\":\"c\"}}");
    assert_int_equal(cfg_check_mcp_server("m", s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "auth.clientid: unknown field"));
    json_object_put(s);
    s = json_tokener_parse("{\"transport\":\"http\",\"url\":\"https://m/mcp\",\"auth\":{\"client_id\":\"c\","
                           "\"private_key_jwt\":{\"key\":\"k\",\"alg\":\"HS256\"}}}");
    assert_int_equal(cfg_check_mcp_server("m", s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "auth.private_key_jwt.alg: must be ES256 or RS256"));
    json_object_put(s);
    s = json_tokener_parse("{\"transport\":\"http\",\"url\":\"https://m/mcp\",\"auth\":{\"client_secret\":\"x\"}}");
    assert_int_equal(cfg_check_mcp_server("m", s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "auth.client_secret: given without client_id"));
    json_object_put(s);
    s = json_tokener_parse("{\"command\":\"x\",\"auth\":{\"client_id\":\"c\"}}");
    assert_int_equal(cfg_check_mcp_server("m", s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "auth: OAuth is for the http and sse transports"));
    json_object_put(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(challenge),
        cmocka_unit_test(discovery_urls),
        cmocka_unit_test(resource_check),
        cmocka_unit_test(encodings),
        cmocka_unit_test(client_assertion),
        cmocka_unit_test(auth_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
