/* cfg_dump — the registry document back as a config.yaml.
 *
 * Block style for mappings and lists, JSON-style double-quoted strings (valid
 * YAML); a field whose "_src" holds a ${VAR} reference is written as that
 * reference: quoted when the value is a string, plain when it is a number or
 * boolean, so loading the output with the same environment gives the same
 * document. No I/O. */
#include "shared/cfg.h"
#include "shared/buf.h"
#include "shared/caps.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int dump__quoted(buf_t *b, const char *s)
{
    json_object *tmp = json_object_new_string(s);
    int rc;

    if (!tmp)
        return -ENOMEM;
    rc = buf_puts(b, json_object_to_json_string_ext(tmp, JSON_C_TO_STRING_PLAIN |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(tmp);
    return rc;
}

/* A reference can go unquoted when YAML would read it back as one plain scalar. */
static int dump__plain_safe(const char *s)
{
    return s[0] == '$' && !strstr(s, ": ") && !strstr(s, " #") && !strpbrk(s, "\"'\n\t") &&
           s[strlen(s) - 1] != ':' && s[strlen(s) - 1] != ' ';
}

static int dump__scalar(buf_t *b, json_object *v, json_object *src, const char *path)
{
    json_object *ref = NULL;

    if (src && path && json_object_object_get_ex(src, path, &ref) &&
        json_object_is_type(ref, json_type_string)) {
        const char *r = json_object_get_string(ref);
        if (v && !json_object_is_type(v, json_type_string) && dump__plain_safe(r))
            return buf_puts(b, r);
        return dump__quoted(b, r);
    }
    if (!v)
        return buf_puts(b, "null");
    if (json_object_is_type(v, json_type_string))
        return dump__quoted(b, json_object_get_string(v));
    if (json_object_is_type(v, json_type_double)) {
        /* the shortest text that reads back as the same double */
        char t[64];
        double d = json_object_get_double(v);
        int prec;
        for (prec = 15; prec <= 17; prec++) {
            snprintf(t, sizeof t, "%.*g", prec, d);
            if (strtod(t, NULL) == d)
                break;
        }
        /* 3.0 stays a double when read back: keep its ".0" */
        return buf_printf(b, "%s%s", t, strpbrk(t, ".eEn") ? "" : ".0");
    }
    return buf_puts(b, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
}

static int dump__value(buf_t *b, json_object *v, int indent, json_object *src, const char *path);

static int dump__indent(buf_t *b, int n)
{
    int rc = 0;
    while (n-- > 0 && rc == 0)
        rc = buf_append(b, " ", 1);
    return rc;
}

/* libyaml refuses a simple (implicit) key of more than 1024 characters
 * ("could not find expected ':'"); past this many bytes of key text the key
 * goes explicit: "? key\n:" (found by fuzz_cfg: a long key loaded from a
 * flow mapping did not load back from the export). */
#define DUMP_SIMPLE_KEY_MAX 1000

/* Writes "key:" at `indent`, the key plain when it is a simple word, quoted
 * otherwise; dump__value writes what follows the colon. */
static int dump__key(buf_t *b, int indent, const char *k)
{
    size_t n = strlen(k);
    buf_t t;
    int rc;

    buf_init(&t, CAP_CFG_DUMP);
    if (n && strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-./") == n &&
        ((k[0] >= 'A' && k[0] <= 'Z') || (k[0] >= 'a' && k[0] <= 'z') || k[0] == '_'))
        rc = buf_puts(&t, k);
    else
        rc = dump__quoted(&t, k);
    if (rc < 0 || (rc = dump__indent(b, indent)) < 0)
        goto out;
    if (t.len > DUMP_SIMPLE_KEY_MAX &&   /* "? key", then ":" on a line of its own */
        ((rc = buf_puts(b, "? ")) < 0 || (rc = buf_puts(b, buf_str(&t))) < 0 ||
         (rc = buf_puts(b, "\n")) < 0 || (rc = dump__indent(b, indent)) < 0))
        goto out;
    if (t.len <= DUMP_SIMPLE_KEY_MAX && (rc = buf_puts(b, buf_str(&t))) < 0)
        goto out;
    rc = buf_puts(b, ":");
out:
    buf_free(&t);
    return rc;
}

/* Writes the mapping's fields one per line at `indent` (the caller has
 * written what precedes them, ending in a newline). Skips "_src". */
static int dump__fields(buf_t *b, json_object *obj, int indent, json_object *src, const char *path)
{
    char sub[1024];
    int rc = 0;

    json_object_object_foreach(obj, key, val) {
        if (!path && strcmp(key, "_src") == 0)
            continue;
        snprintf(sub, sizeof sub, "%s%s%s", path ? path : "", path ? "." : "", key);
        if ((rc = dump__key(b, indent, key)) < 0 ||
            (rc = dump__value(b, val, indent, src, sub)) < 0)
            break;
    }
    return rc;
}

/* Writes " value\n" or a nested block after "key:". */
static int dump__value(buf_t *b, json_object *v, int indent, json_object *src, const char *path)
{
    int rc;
    size_t i, n;
    char sub[1024];

    if (json_object_is_type(v, json_type_object) && json_object_object_length(v) > 0) {
        if ((rc = buf_puts(b, "\n")) < 0)
            return rc;
        return dump__fields(b, v, indent + 2, src, path);
    }
    if (json_object_is_type(v, json_type_array) && json_object_array_length(v) > 0) {
        if ((rc = buf_puts(b, "\n")) < 0)
            return rc;
        n = json_object_array_length(v);
        for (i = 0; i < n; i++) {
            json_object *e = json_object_array_get_idx(v, i);
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            /* "-" then the element as a field's value: a mapping or a list
             * in block style on the lines below (not JSON text: its keys
             * would be simple keys of a flow mapping, which libyaml refuses
             * past 1024 characters, and its ${} would be written expanded) */
            if ((rc = dump__indent(b, indent + 2)) < 0 || (rc = buf_puts(b, "-")) < 0 ||
                (rc = dump__value(b, e, indent + 2, src, sub)) < 0)
                return rc;
        }
        return 0;
    }
    if (json_object_is_type(v, json_type_object))
        return buf_puts(b, " {}\n");
    if (json_object_is_type(v, json_type_array))
        return buf_puts(b, " []\n");
    if ((rc = buf_puts(b, " ")) < 0 || (rc = dump__scalar(b, v, src, path)) < 0)
        return rc;
    return buf_puts(b, "\n");
}

static json_object *dump__src(json_object *obj)
{
    json_object *src = NULL;
    if (!json_object_object_get_ex(obj, "_src", &src) || !json_object_is_type(src, json_type_object))
        return NULL;
    return src;
}

/* backends / mcp_servers: a map keyed by name. */
static int dump__named_map(buf_t *b, json_object *doc, const char *kind)
{
    json_object *map = NULL;
    int rc;

    if (!json_object_object_get_ex(doc, kind, &map) || !json_object_is_type(map, json_type_object) ||
        json_object_object_length(map) == 0)
        return buf_printf(b, "%s: {}\n\n", kind);
    if ((rc = buf_printf(b, "%s:\n", kind)) < 0)
        return rc;
    json_object_object_foreach(map, name, obj) {
        if ((rc = dump__key(b, 2, name)) < 0)
            return rc;
        if (json_object_is_type(obj, json_type_object) && json_object_object_length(obj)) {
            if ((rc = buf_puts(b, "\n")) < 0 ||
                (rc = dump__fields(b, obj, 4, dump__src(obj), NULL)) < 0)
                return rc;
        } else if ((rc = buf_puts(b, " {}\n")) < 0) {
            return rc;
        }
    }
    return buf_puts(b, "\n");
}

static int dump__assistants(buf_t *b, json_object *doc)
{
    json_object *map = NULL;
    int rc;

    if (!json_object_object_get_ex(doc, "assistants", &map) ||
        !json_object_is_type(map, json_type_object) || json_object_object_length(map) == 0)
        return buf_puts(b, "assistants: []\n\n");
    if ((rc = buf_puts(b, "assistants:\n")) < 0)
        return rc;
    json_object_object_foreach(map, name, obj) {
        json_object *src = dump__src(obj);
        if ((rc = buf_puts(b, "  - name: ")) < 0 || (rc = dump__quoted(b, name)) < 0 ||
            (rc = buf_puts(b, "\n")) < 0)
            return rc;
        if (!json_object_is_type(obj, json_type_object))
            continue;
        json_object_object_foreach(obj, key, val) {
            if (!strcmp(key, "_src") || !strcmp(key, "name"))
                continue;
            if ((rc = dump__key(b, 4, key)) < 0 || (rc = dump__value(b, val, 4, src, key)) < 0)
                return rc;
        }
    }
    return buf_puts(b, "\n");
}

static int dump__settings(buf_t *b, json_object *doc)
{
    json_object *s = NULL, *keys = NULL, *apiman = NULL, *src, *refs = NULL, *use = NULL;
    size_t i, n;
    int rc;

    json_object_object_get_ex(doc, "settings", &s);
    src = s ? dump__src(s) : NULL;
    if (src)
        json_object_object_get_ex(src, "proxy_api_keys", &refs);
    if (refs && json_object_is_type(refs, json_type_array))
        keys = refs;                  /* as the user wrote them, ${} and all */
    else if (s)
        json_object_object_get_ex(s, "proxy_api_keys", &keys);
    n = keys && json_object_is_type(keys, json_type_array) ? json_object_array_length(keys) : 0;
    if ((rc = buf_puts(b, n ? "proxy_api_keys:\n" : "proxy_api_keys: []\n")) < 0)
        return rc;
    for (i = 0; i < n; i++) {
        if ((rc = buf_puts(b, "  - ")) < 0 ||
            (rc = dump__quoted(b, json_object_get_string(json_object_array_get_idx(keys, i)))) < 0 ||
            (rc = buf_puts(b, "\n")) < 0)
            return rc;
    }
    if (s && json_object_object_get_ex(s, "usage", &use) && use &&
        json_object_is_type(use, json_type_object) &&
        ((rc = buf_puts(b, "\nusage:\n")) < 0 || (rc = dump__fields(b, use, 2, NULL, NULL)) < 0))
        return rc;
    if (s)
        json_object_object_get_ex(s, "apiman", &apiman);
    if (!apiman || !json_object_is_type(apiman, json_type_object))
        return buf_puts(b, "\napiman: null\n");
    if ((rc = buf_puts(b, "\napiman:\n")) < 0)
        return rc;
    return dump__fields(b, apiman, 2, dump__src(apiman), NULL);
}

/* settings.limits (issue 18), when set: `limits:` at the top level. */
static int dump__limits(buf_t *b, json_object *doc)
{
    json_object *s = NULL, *l = NULL;
    int rc;

    json_object_object_get_ex(doc, "settings", &s);
    if (!s || !json_object_object_get_ex(s, "limits", &l) || !json_object_is_type(l, json_type_object))
        return 0;
    if ((rc = buf_puts(b, "\nlimits:\n")) < 0)
        return rc;
    return dump__fields(b, l, 2, NULL, NULL);
}

char *cfg_dump_yaml(json_object *doc)
{
    buf_t b;
    char *out = NULL;

    buf_init(&b, CAP_CFG_DUMP);
    if (buf_puts(&b, "# aiproxy configuration (exported from the registry; see docs/config.md)\n\n") < 0 ||
        dump__named_map(&b, doc, "backends") < 0 || dump__named_map(&b, doc, "mcp_servers") < 0 ||
        dump__assistants(&b, doc) < 0 || dump__settings(&b, doc) < 0 ||
        dump__limits(&b, doc) < 0)
        goto out;
    out = buf_detach(&b);
out:
    buf_free(&b);
    return out;
}
