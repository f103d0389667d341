/* Unit tests for mcpc_flatten and mcpc_parts: the text the model sees for an
 * MCP tools/call result (text joined by newlines, binary blocks named not
 * dumped, resource links as a line, embedded text resources as their text,
 * blobs named with their size, unknown blocks as JSON, isError prefixed), and
 * the OpenAI parts sent to a vision upstream (images as data URLs, under a cap). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/mcpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(const char *result_json, const char *want)
{
    json_object *r = result_json ? json_tokener_parse(result_json) : NULL;
    char *got = mcpc_flatten(r);
    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("flatten(%s)\n  got  '%s'\n  want '%s'", result_json ? result_json : "NULL", got, want);
    free(got);
    json_object_put(r);
}

static void text_blocks_joined(void **state)
{
    (void)state;
    check("{\"content\":[{\"type\":\"text\",\"text\":\"5\"}]}", "5");
    check("{\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\\nc\"}]}", "a\nb\nc");
}

static void binary_blocks_named(void **state)
{
    (void)state;
    check("{\"content\":[{\"type\":\"image\",\"data\":\"AAAA\",\"mimeType\":\"image/png\"},"
          "{\"type\":\"text\",\"text\":\"t\"},{\"type\":\"audio\",\"data\":\"AA\",\"mimeType\":\"audio/wav\"}]}",
          "[binary image/png content omitted]\nt\n[binary audio/wav content omitted]");
    check("{\"content\":[{\"type\":\"image\",\"data\":\"AAAA\"}]}",
          "[binary application/octet-stream content omitted]");
}

static void other_blocks_as_json(void **state)
{
    (void)state;
    check("{\"content\":[{\"type\":\"widget\",\"x\":1}]}", "{\"type\":\"widget\",\"x\":1}");
    /* a resource block without a resource object is not one */
    check("{\"content\":[{\"type\":\"resource\",\"uri\":\"x:1\"}]}",
          "{\"type\":\"resource\",\"uri\":\"x:1\"}");
}

static void resources_rendered(void **state)
{
    (void)state;
    /* a link: one readable line (name, uri, mime, description) */
    check("{\"content\":[{\"type\":\"resource_link\",\"uri\":\"file:///a/b\",\"name\":\"b\"}]}",
          "[resource link] b: file:///a/b");
    check("{\"content\":[{\"type\":\"resource_link\",\"uri\":\"demo://r/1\",\"name\":\"Resource 1\","
          "\"mimeType\":\"text/plain\",\"description\":\"the first\"}]}",
          "[resource link] Resource 1: demo://r/1 (text/plain) - the first");
    /* embedded text: its text, not JSON around it */
    check("{\"content\":[{\"type\":\"text\",\"text\":\"see:\"},"
          "{\"type\":\"resource\",\"resource\":{\"uri\":\"x:1\",\"mimeType\":\"text/plain\",\"text\":\"hi\\nthere\"}}]}",
          "see:\nhi\nthere");
    /* embedded blob: mime, uri and decoded size, never the base64 */
    check("{\"content\":[{\"type\":\"resource\",\"resource\":{\"uri\":\"x:2\",\"mimeType\":\"application/gzip\","
          "\"blob\":\"AAECAwQ=\"}}]}",
          "[binary application/gzip resource x:2 omitted, 5 bytes]");
}

/* mcpc_parts(result) as compact JSON, or "NULL". */
static void check_parts(const char *result_json, size_t cap, const char *want)
{
    json_object *r = json_tokener_parse(result_json), *p;
    int nomem = 1;
    const char *got;

    p = mcpc_parts(r, cap, &nomem);
    assert_int_equal(nomem, 0);
    got = p ? json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : "NULL";
    if (strcmp(got, want) != 0)
        fail_msg("parts(%s, %zu)\n  got  %s\n  want %s", result_json, cap, got, want);
    json_object_put(p);
    json_object_put(r);
}

#define TINY "{\"content\":[{\"type\":\"text\",\"text\":\"Here:\"},"                          \
             "{\"type\":\"image\",\"data\":\"iVBORw0KGgo=\",\"mimeType\":\"image/png\"},"      \
             "{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}"

static void parts_carry_images(void **state)
{
    (void)state;
    check_parts(TINY, 1024,
                "[{\"type\":\"text\",\"text\":\"Here:\"},"
                "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}},"
                "{\"type\":\"text\",\"text\":\"a\\nb\"}]");
    /* an error keeps its prefix; other blocks render as in the text */
    check_parts("{\"isError\":true,\"content\":[{\"type\":\"image\",\"data\":\"AAAA\",\"mimeType\":\"image/gif\"},"
                "{\"type\":\"resource_link\",\"uri\":\"u:1\",\"name\":\"n\"}]}", 1024,
                "[{\"type\":\"text\",\"text\":\"[tool error] \"},"
                "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/gif;base64,AAAA\"}},"
                "{\"type\":\"text\",\"text\":\"[resource link] n: u:1\"}]");
}

static void parts_only_when_an_image_goes(void **state)
{
    (void)state;
    /* switched off, no image, or text only: the flattened text does */
    check_parts(TINY, 0, "NULL");
    check_parts("{\"content\":[{\"type\":\"text\",\"text\":\"t\"}]}", 1024, "NULL");
    check_parts("{\"content\":[],\"structuredContent\":{\"a\":1}}", 1024, "NULL");
    /* audio is never sent; nor an image without a usable image mime type */
    check_parts("{\"content\":[{\"type\":\"audio\",\"data\":\"AAAA\",\"mimeType\":\"audio/wav\"}]}", 1024, "NULL");
    check_parts("{\"content\":[{\"type\":\"image\",\"data\":\"AAAA\"}]}", 1024, "NULL");
    check_parts("{\"content\":[{\"type\":\"image\",\"data\":\"AAAA\",\"mimeType\":\"image/png;x,y\"}]}", 1024, "NULL");
    /* over the cap alone: nothing to carry */
    check_parts(TINY, 8, "NULL");
}

static void parts_cap_makes_a_placeholder(void **state)
{
    (void)state;
    /* one image fits, the other (12 base64 chars = 8 bytes) passes the cap */
    check_parts("{\"content\":[{\"type\":\"image\",\"data\":\"AAAA\",\"mimeType\":\"image/png\"},"
                "{\"type\":\"image\",\"data\":\"AAAAAAAAAAAA\",\"mimeType\":\"image/jpeg\"},"
                "{\"type\":\"audio\",\"data\":\"AA\",\"mimeType\":\"audio/wav\"}]}", 8,
                "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}},"
                "{\"type\":\"text\",\"text\":\"[image image/jpeg omitted: 9 bytes, over the 8-byte image cap]\\n"
                "[binary audio/wav content omitted]\"}]");
}

static void errors_prefixed(void **state)
{
    (void)state;
    check("{\"content\":[{\"type\":\"text\",\"text\":\"boom\"}],\"isError\":true}", "[tool error] boom");
    check("{\"content\":[{\"type\":\"text\",\"text\":\"fine\"}],\"isError\":false}", "fine");
}

static void empty_and_structured(void **state)
{
    (void)state;
    check("{\"content\":[]}", "");
    check("{}", "");
    check(NULL, "");
    check("{\"content\":[],\"structuredContent\":{\"sum\":5}}", "{\"sum\":5}");
    /* text wins over structuredContent when both are there (spec: content is the
     * backwards-compatible rendering) */
    check("{\"content\":[{\"type\":\"text\",\"text\":\"{\\\"sum\\\":5}\"}],\"structuredContent\":{\"sum\":5}}",
          "{\"sum\":5}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_blocks_joined),
        cmocka_unit_test(binary_blocks_named),
        cmocka_unit_test(other_blocks_as_json),
        cmocka_unit_test(resources_rendered),
        cmocka_unit_test(parts_carry_images),
        cmocka_unit_test(parts_only_when_an_image_goes),
        cmocka_unit_test(parts_cap_makes_a_placeholder),
        cmocka_unit_test(errors_prefixed),
        cmocka_unit_test(empty_and_structured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
