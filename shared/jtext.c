#include "shared/jtext.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *jtext_take(json_object *o)
{
    char *s = NULL;

    if (o) {
        const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE);
        if (t)
            s = strdup(t);
        json_object_put(o);
    }
    return s;
}

int jtext_parse_strict(const char *text, size_t len, int max_depth, json_object **out, char *err,
                       size_t errlen)
{
    json_tokener *tok = NULL;
    json_object *v = NULL;
    enum json_tokener_error jerr;
    int rc = -EINVAL;
    size_t off;

    *out = NULL;
    if (len > (size_t)0x7fffffff) {
        snprintf(err, errlen, "the request body is too large");
        goto out;
    }
    tok = json_tokener_new_ex(max_depth);
    if (!tok) {
        rc = -ENOMEM;
        goto out;
    }
    v = json_tokener_parse_ex(tok, text, (int)len);
    jerr = json_tokener_get_error(tok);
    if (!v || jerr != json_tokener_success) {
        snprintf(err, errlen, "the request body is not valid JSON: %s",
                 jerr == json_tokener_continue ? "unexpected end of input"
                                               : json_tokener_error_desc(jerr));
        goto out;
    }
    for (off = json_tokener_get_parse_end(tok); off < len; off++) {
        if (text[off] != ' ' && text[off] != '\t' && text[off] != '\r' && text[off] != '\n') {
            snprintf(err, errlen, "the request body is not valid JSON: "
                     "unexpected data after the value at byte %zu", off);
            goto out;
        }
    }
    *out = v;
    v = NULL;
    rc = 0;
out:
    json_object_put(v);
    if (tok)
        json_tokener_free(tok);
    return rc;
}
