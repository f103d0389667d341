/* Unit tests of the auth chain's pure parts: SHA-256, credential extraction,
 * the constant-time comparison, settings -> providers, probe URL and cache key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "fcgi/auth/auth_apiman.h"
#include "fcgi/auth/auth_conf.h"
#include "fcgi/auth/auth_cred.h"
#include "shared/sha256.h"

#include <errno.h>
#include <string.h>

static void hex_is(const char *in, size_t len, const char *want)
{
    char out[SHA256_HEX_LEN + 1];
    sha256_hex(in, len, out);
    assert_string_equal(out, want);
}

static void test_sha256_vectors(void **st)
{
    (void)st;
    hex_is("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_is("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_is(two, strlen(two), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* one million 'a', fed in uneven pieces to cross block boundaries */
    sha256_ctx_t c;
    unsigned char d[SHA256_DIGEST_LEN];
    char a[997];
    memset(a, 'a', sizeof(a));
    sha256_init(&c);
    size_t left = 1000000;
    while (left > 0) {
        size_t n = left < sizeof(a) ? left : sizeof(a);
        sha256_update(&c, a, n);
        left -= n;
    }
    sha256_final(&c, d);
    static const unsigned char want[4] = { 0xcd, 0xc7, 0x6e, 0x5c };
    assert_memory_equal(d, want, 4);
}

static void cand_is(const auth_cred_t *c, const char *want)
{
    assert_int_equal(c->len, strlen(want));
    assert_memory_equal(c->p, want, c->len);
}

static void test_extract_carriers(void **st)
{
    (void)st;
    auth_cred_t c[AUTH_CRED_MAX];
    assert_int_equal(auth_cred_extract("Bearer sk-1", NULL, NULL, c), 1);
    cand_is(&c[0], "sk-1");
    assert_int_equal(auth_cred_extract("bearer   sk-2  ", NULL, NULL, c), 1);
    cand_is(&c[0], "sk-2");
    assert_int_equal(auth_cred_extract("sk-bare", NULL, NULL, c), 1);
    cand_is(&c[0], "sk-bare");
    assert_int_equal(auth_cred_extract(NULL, " sk-x ", NULL, c), 1);
    cand_is(&c[0], "sk-x");
    assert_int_equal(auth_cred_extract(NULL, NULL, "sk-q", c), 1);
    cand_is(&c[0], "sk-q");
    /* every distinct candidate, in order */
    assert_int_equal(auth_cred_extract("Bearer a", "b", "c", c), 3);
    cand_is(&c[0], "a");
    cand_is(&c[1], "b");
    cand_is(&c[2], "c");
}

/* ?apikey=KEY%00junk decodes to 10 bytes: as a C string it would be KEY. */
static void test_clean_spots_a_nul(void **st)
{
    (void)st;
    assert_true(auth_cred_clean("sk-1", 4));
    assert_false(auth_cred_clean("sk-1\0junk", 9));
    assert_false(auth_cred_clean("\0", 1));
    assert_true(auth_cred_clean("", 0));
}

static void test_extract_skips(void **st)
{
    (void)st;
    auth_cred_t c[AUTH_CRED_MAX];
    assert_int_equal(auth_cred_extract(NULL, NULL, NULL, c), 0);
    assert_int_equal(auth_cred_extract("", "  ", "", c), 0);
    assert_int_equal(auth_cred_extract("Bearer ", NULL, NULL, c), 0);
    /* another scheme is not a bare key */
    assert_int_equal(auth_cred_extract("Basic dXNlcjpwYXNz", NULL, NULL, c), 0);
    /* "Bearerxyz" is a bare key, not a scheme */
    assert_int_equal(auth_cred_extract("Bearerxyz", NULL, NULL, c), 1);
    cand_is(&c[0], "Bearerxyz");
    /* duplicates collapse */
    assert_int_equal(auth_cred_extract("Bearer k", "k", "k", c), 1);
    assert_int_equal(auth_cred_extract("Bearer k", "j", "k", c), 2);
    /* over-long values are skipped */
    static char big[AUTH_CRED_MAXLEN + 2];
    memset(big, 'x', sizeof(big) - 1);
    assert_int_equal(auth_cred_extract(NULL, big, "ok", c), 1);
    cand_is(&c[0], "ok");
}

static void test_bearer_only(void **st)
{
    (void)st;
    auth_cred_t t = auth_cred_bearer("Bearer adm");
    cand_is(&t, "adm");
    assert_null(auth_cred_bearer("adm").p);
    assert_null(auth_cred_bearer("Bearer a b").p);
    assert_null(auth_cred_bearer(NULL).p);
}

static void test_equal(void **st)
{
    (void)st;
    assert_true(auth_cred_equal("secret", 6, "secret", 6));
    assert_false(auth_cred_equal("secret", 6, "secreT", 6));
    assert_false(auth_cred_equal("secret", 6, "secret2", 7));
    assert_false(auth_cred_equal("secret", 5, "secret", 6)); /* prefix is not equal */
    assert_false(auth_cred_equal("", 0, "x", 1));
    assert_true(auth_cred_equal("", 0, NULL, 0));
    assert_true(auth_cred_equal("a\0b", 3, "a\0b", 3));
    assert_false(auth_cred_equal("a\0b", 3, "a\0c", 3));
}

static json_object *parse(const char *s)
{
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    return o;
}

static void test_conf_open_and_static(void **st)
{
    (void)st;
    auth_conf_t c;
    char err[256];
    assert_int_equal(auth_conf_from_settings(NULL, &c, err, sizeof(err)), 0);
    assert_true(auth_conf_open(&c));
    json_object *s = parse("{\"proxy_api_keys\":[],\"apiman\":null}");
    assert_int_equal(auth_conf_from_settings(s, &c, err, sizeof(err)), 0);
    assert_true(auth_conf_open(&c));
    json_object_put(s);
    s = parse("{\"proxy_api_keys\":[\"\", \"k1\", \"k2\"]}");
    assert_int_equal(auth_conf_from_settings(s, &c, err, sizeof(err)), 0);
    assert_false(auth_conf_open(&c));
    assert_int_equal(c.nkeys, 2);
    assert_int_equal(c.apiman, AUTH_APIMAN_NONE);
    json_object *d = auth_conf_describe(&c);
    assert_int_equal(json_object_array_length(d), 1);
    assert_null(strstr(json_object_to_json_string(d), "k1"));
    json_object_put(d);
    json_object_put(s);
}

static void test_conf_probe(void **st)
{
    (void)st;
    auth_conf_t c;
    char err[256];
    json_object *s = parse("{\"proxy_api_keys\":[\"k\"],\"apiman\":{\"mode\":\"gateway_probe\","
                           "\"gateway_url\":\"http://gw:8080/\",\"probe_api\":\"org/api/1.0\"}}");
    assert_int_equal(auth_conf_from_settings(s, &c, err, sizeof(err)), 0);
    assert_int_equal(c.apiman, AUTH_APIMAN_PROBE);
    assert_string_equal(c.api_key_header, "X-API-Key");
    assert_int_equal(c.timeout_ms, 5000);
    assert_int_equal(c.cache_ttl, 60);
    char url[256];
    assert_int_equal(auth_apiman_url(&c, url, sizeof(url)), 0);
    assert_string_equal(url, "http://gw:8080/org/api/1.0");
    c.probe_path = "/ping";
    assert_int_equal(auth_apiman_url(&c, url, sizeof(url)), 0);
    assert_string_equal(url, "http://gw:8080/org/api/1.0/ping");
    assert_int_equal(auth_apiman_url(&c, url, 10), -ENOSPC);
    json_object *d = auth_conf_describe(&c);
    assert_int_equal(json_object_array_length(d), 2);
    json_object_put(d);
    json_object_put(s);

    s = parse("{\"apiman\":{\"mode\":\"gateway_probe\",\"gateway_url\":\"http://gw\","
              "\"probe_api\":\"org/api/1\",\"timeout\":0.5,\"cache_ttl\":0,"
              "\"api_key_header\":\"X-Key\"}}");
    assert_int_equal(auth_conf_from_settings(s, &c, err, sizeof(err)), 0);
    assert_int_equal(c.timeout_ms, 500);
    assert_int_equal(c.cache_ttl, 0);
    assert_string_equal(c.api_key_header, "X-Key");
    json_object_put(s);
}

static void conf_fails(const char *json, const char *field)
{
    auth_conf_t c;
    char err[256];
    json_object *s = parse(json);
    assert_int_equal(auth_conf_from_settings(s, &c, err, sizeof(err)), -EINVAL);
    assert_int_equal(c.apiman, AUTH_APIMAN_NONE);
    assert_non_null(strstr(err, field));
    json_object_put(s);
}

static void test_conf_errors(void **st)
{
    (void)st;
    conf_fails("{\"apiman\":{}}", "apiman.mode");
    conf_fails("{\"apiman\":{\"mode\":\"ldap\"}}", "apiman.mode");
    conf_fails("{\"apiman\":{\"mode\":\"gateway_probe\",\"probe_api\":\"o/a/1\"}}",
               "apiman.gateway_url");
    conf_fails("{\"apiman\":{\"mode\":\"gateway_probe\",\"gateway_url\":\"http://g\","
               "\"probe_api\":\"o/a\"}}", "apiman.probe_api");
    conf_fails("{\"apiman\":{\"mode\":\"gateway_probe\",\"gateway_url\":\"http://g\","
               "\"probe_api\":\"o/a/1\",\"timeout\":\"5\"}}", "apiman.timeout");
    conf_fails("{\"apiman\":{\"mode\":\"gateway_probe\",\"gateway_url\":\"http://g\","
               "\"probe_api\":\"o/a/1\",\"cache_ttl\":-1}}", "apiman.cache_ttl");
    conf_fails("{\"apiman\":{\"mode\":\"trusted_header\",\"secret\":\"s\"}}", "apiman.header");
    conf_fails("{\"apiman\":{\"mode\":\"trusted_header\",\"header\":\"X-S\"}}", "apiman.secret");
    /* a broken apiman block keeps the static keys working */
    auth_conf_t c;
    char err[256];
    json_object *s = parse("{\"proxy_api_keys\":[\"k\"],\"apiman\":{\"mode\":\"x\"}}");
    assert_int_equal(auth_conf_from_settings(s, &c, err, sizeof(err)), -EINVAL);
    assert_int_equal(c.nkeys, 1);
    json_object_put(s);
}

static void test_conf_trusted(void **st)
{
    (void)st;
    auth_conf_t c;
    char err[256];
    json_object *s = parse("{\"apiman\":{\"mode\":\"trusted_header\",\"header\":\"X-Apiman\","
                           "\"secret\":\"hush-123\"}}");
    assert_int_equal(auth_conf_from_settings(s, &c, err, sizeof(err)), 0);
    assert_int_equal(c.apiman, AUTH_APIMAN_TRUSTED);
    assert_string_equal(c.header, "X-Apiman");
    json_object *d = auth_conf_describe(&c);
    assert_null(strstr(json_object_to_json_string(d), "hush-123"));
    assert_non_null(strstr(json_object_to_json_string(d), "trusted_header"));
    json_object_put(d);
    json_object_put(s);
}

static void test_probe_api_shape(void **st)
{
    (void)st;
    assert_true(auth_conf_probe_api_ok("org/api/1.0"));
    assert_false(auth_conf_probe_api_ok("org/api"));
    assert_false(auth_conf_probe_api_ok("org//1.0"));
    assert_false(auth_conf_probe_api_ok("org/api/1.0/"));
    assert_false(auth_conf_probe_api_ok("/org/api/1"));
    assert_false(auth_conf_probe_api_ok("a/b/c/d"));
    assert_false(auth_conf_probe_api_ok(""));
    assert_false(auth_conf_probe_api_ok(NULL));
}

static void test_cache_key_hides_key(void **st)
{
    (void)st;
    char k1[256], k2[256];
    assert_int_equal(auth_apiman_cache_key("aiproxy:", "sk-live-123", 11, k1, sizeof(k1)), 0);
    assert_null(strstr(k1, "sk-live-123"));
    assert_int_equal(strncmp(k1, "aiproxy:auth:apiman:", 20), 0);
    assert_int_equal(strlen(k1), 20 + SHA256_HEX_LEN);
    assert_int_equal(auth_apiman_cache_key("aiproxy:", "sk-live-124", 11, k2, sizeof(k2)), 0);
    assert_string_not_equal(k1, k2);
    assert_int_equal(auth_apiman_cache_key("aiproxy:", "k", 1, k2, 30), -ENOSPC);
}

static void test_check_rejects_control_chars(void **st)
{
    (void)st;
    /* a CR/LF in a key would inject a header into the probe: rejected before
     * any I/O (the gateway URL points nowhere, and no Redis is given) */
    auth_conf_t c;
    memset(&c, 0, sizeof(c));
    c.apiman = AUTH_APIMAN_PROBE;
    c.gateway_url = "http://127.0.0.1:1";
    c.probe_api = "o/a/1";
    c.probe_path = "";
    c.api_key_header = "X-API-Key";
    c.timeout_ms = 200;
    c.cache_ttl = 60;
    assert_int_equal(auth_apiman_check(&c, "k\r\nX-Evil: 1", 13, NULL), 0);
    /* an unreachable gateway rejects (fail closed) within the timeout */
    assert_int_equal(auth_apiman_check(&c, "good-looking-key", 16, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_extract_carriers),
        cmocka_unit_test(test_extract_skips),
        cmocka_unit_test(test_clean_spots_a_nul),
        cmocka_unit_test(test_bearer_only),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_conf_open_and_static),
        cmocka_unit_test(test_conf_probe),
        cmocka_unit_test(test_conf_errors),
        cmocka_unit_test(test_conf_trusted),
        cmocka_unit_test(test_probe_api_shape),
        cmocka_unit_test(test_cache_key_hides_key),
        cmocka_unit_test(test_check_rejects_control_chars),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
