/* Unit tests for mcpc_flatten: the text the model sees for an MCP tools/call
 * result (text joined by newlines, binary blocks named not dumped, other
 * blocks as JSON, isError prefixed). */
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
    check("{\"content\":[{\"type\":\"resource_link\",\"uri\":\"file:///a/b\",\"name\":\"b\"}]}",
          "{\"type\":\"resource_link\",\"uri\":\"file:///a/b\",\"name\":\"b\"}");
    check("{\"content\":[{\"type\":\"resource\",\"resource\":{\"uri\":\"x:1\",\"text\":\"hi\"}}]}",
          "{\"type\":\"resource\",\"resource\":{\"uri\":\"x:1\",\"text\":\"hi\"}}");
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
        cmocka_unit_test(errors_prefixed),
        cmocka_unit_test(empty_and_structured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
