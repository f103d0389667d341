/* fuzz_cfg — shared/cfg.h: cfg_load_yaml and cfg_expand_env on arbitrary text.
 *
 * A few environment variables are set once so ${VAR}, ${VAR:-default} and $$
 * in the inputs expand to something. Checks: a refusal says why and returns
 * no document; an accepted config is valid JSON text (Redis holds it so) and,
 * dumped with cfg_dump_yaml, loads again to the same document (the promise
 * `make export` relies on). */
#include "shared/cfg.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    setenv("FUZZ_KEY", "sk-fuzz-123", 1);
    setenv("FUZZ_URL", "https://llm.example.com/v1", 1);
    setenv("FUZZ_EMPTY", "", 1);
    setenv("FUZZ_NUM", "42", 1);
    setenv("FUZZ_YAML", "a: [b, {c: d}]\n- x", 1);
    setenv("FUZZ_BOOL", "True", 1);      /* a reference keeps its case */
    setenv("FUZZ_BIG", "100000000000000000000000", 1);
    return 0;
}

static void expand(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1), *out = NULL;
    char err[256];
    int had = -1, rc;

    if (!in)
        abort();
    memcpy(in, data, size);
    in[size] = '\0';
    err[0] = '\0';
    rc = cfg_expand_env(in, &out, &had, err, sizeof err);
    if (rc == 0 && (!out || (had != 0 && had != 1)))
        abort();
    if (rc != 0 && (out || rc != -EINVAL || !err[0]))
        abort();    /* only an unterminated "${" is refused, and it says so */
    free(out);
    free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_object *doc = NULL, *again = NULL;
    char err[512], err2[512];
    char *dump = NULL;

    expand(data, size);
    err[0] = '\0';
    if (cfg_load_yaml((const char *)data, size, "fuzz.yaml", &doc, err, sizeof err) != 0) {
        if (!err[0] || doc)
            abort();
        return 0;
    }
    if (!doc)
        abort();
    /* the document goes to Redis as JSON text: it must read back the same */
    again = json_tokener_parse(json_object_to_json_string(doc));
    if (!again || !json_object_equal(doc, again))
        abort();
    json_object_put(again);
    again = NULL;
    dump = cfg_dump_yaml(doc);
    if (!dump)
        abort();
    if (cfg_load_yaml(dump, strlen(dump), "dump.yaml", &again, err2, sizeof err2) != 0 ||
        !json_object_equal(doc, again))
        abort();
    free(dump);
    json_object_put(doc);
    json_object_put(again);
    return 0;
}
