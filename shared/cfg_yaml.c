/* cfg_yaml — YAML text to the registry document.
 *
 * Two passes. First libyaml events become a json-c tree (scalars expanded
 * with cfg_expand_env and typed as YAML 1.2's core schema would type them),
 * while two side maps record, per dotted path ("assistants[1].backend"), the
 * line it was on and the original text of any scalar that held a ${}
 * reference. Then each section is split into named objects, checked with
 * cfg_check_*, and the "field: problem" of a failed check is turned into
 * "FILE:LINE: path.field: problem" using the line map. */
#include "shared/cfg.h"
#include "shared/caps.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>


typedef struct cfg_ld {
    yaml_parser_t parser;
    const char *name;      /* file name for messages */
    json_object *lines;    /* path -> line (int) */
    json_object *srcs;     /* path -> original text of a scalar with ${} */
    char *err;
    size_t errlen;
} cfg_ld_t;

static int cfg__line_of(cfg_ld_t *ld, const char *path)
{
    json_object *v;
    return json_object_object_get_ex(ld->lines, path, &v) ? json_object_get_int(v) : 0;
}

static int cfg__fail(cfg_ld_t *ld, int line, const char *path, const char *msg)
{
    if (path && *path)
        snprintf(ld->err, ld->errlen, "%s:%d: %s: %s", ld->name, line, path, msg);
    else
        snprintf(ld->err, ld->errlen, "%s:%d: %s", ld->name, line, msg);
    return -EINVAL;
}

static int cfg__next(cfg_ld_t *ld, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&ld->parser, ev)) {
        yaml_parser_t *p = &ld->parser;
        snprintf(ld->err, ld->errlen, "%s:%zu:%zu: YAML syntax error: %s%s%s", ld->name,
                 p->problem_mark.line + 1, p->problem_mark.column + 1,
                 p->problem ? p->problem : "malformed YAML", p->context ? " " : "",
                 p->context ? p->context : "");
        return -EINVAL;
    }
    return 0;
}

/* 1 when s is a number in JSON's grammar, -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int cfg__json_number(const char *s)
{
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        s += strspn(s, "0123456789");
    else
        return 0;
    if (*s == '.') {
        if (!strspn(++s, "0123456789"))
            return 0;
        s += strspn(s, "0123456789");
    }
    if (*s == 'e' || *s == 'E') {
        s += (s[1] == '+' || s[1] == '-') ? 2 : 1;
        if (!strspn(s, "0123456789"))
            return 0;
        s += strspn(s, "0123456789");
    }
    return *s == '\0';
}

/* YAML 1.2 core schema resolution of a plain scalar. */
static json_object *cfg__resolve_plain(const char *s, int was_empty)
{
    char *end;

    if (was_empty || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
        !strcmp(s, "NULL"))
        return NULL;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        return json_object_new_boolean(1);
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return json_object_new_boolean(0);
    if (*s && strspn(s + (*s == '-' || *s == '+'), "0123456789") == strlen(s + (*s == '-' || *s == '+')) &&
        s[*s == '-' || *s == '+']) {
        long long v;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (!errno && !*end)
            return json_object_new_int64(v);
    }
    if (*s && strspn(s, "0123456789+-.eE") == strlen(s) && strpbrk(s, "0123456789")) {
        double d;
        errno = 0;
        d = strtod(s, &end);
        /* the text is kept (0.7 stays 0.7) only when it is valid JSON: the
         * document goes to Redis as JSON, and ".5" or "1." would break it
         * for every reader (found by fuzz_cfg) */
        if (!errno && !*end && isfinite(d))
            return cfg__json_number(s) ? json_object_new_double_s(d, s) : json_object_new_double(d);
    }
    return json_object_new_string(s);
}

static int cfg__scalar(cfg_ld_t *ld, yaml_event_t *ev, const char *path, json_object **out)
{
    const char *text = (const char *)ev->data.scalar.value;
    const char *tag = (const char *)ev->data.scalar.tag;
    char *exp = NULL, msg[512];
    int had_ref = 0, rc;

    if (strlen(text) != ev->data.scalar.length) {
        rc = cfg__fail(ld, (int)ev->start_mark.line + 1, path, "NUL byte in a value");
        goto out;
    }
    rc = cfg_expand_env(text, &exp, &had_ref, msg, sizeof msg);
    if (rc < 0) {
        if (rc == -EINVAL)
            rc = cfg__fail(ld, (int)ev->start_mark.line + 1, path, msg);
        goto out;
    }
    if (had_ref)
        json_object_object_add(ld->srcs, path, json_object_new_string(text));
    if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        !(tag && !strcmp(tag, YAML_STR_TAG))) {
        *out = cfg__resolve_plain(exp, text[0] == '\0');
        /* A reference may give a number or a boolean, never null: a null is
         * replaced by the field's default, which the export cannot write back
         * as the reference (found by fuzz_cfg: `${X:-}Null`). */
        if (!*out && had_ref)
            *out = json_object_new_string(exp);
        /* Nor a number that would not print back as the same text: a
         * string field would get "123" for KEY=0123 (found by fuzz_cfg). */
        /* Nor a boolean spelt otherwise than true/false: KEY=True is the
         * text "True", which a string field must get as it is. */
        if (*out && had_ref &&
            (json_object_is_type(*out, json_type_int) || json_object_is_type(*out, json_type_double) ||
             json_object_is_type(*out, json_type_boolean)) &&
            strcmp(json_object_get_string(*out), exp) != 0) {
            json_object_put(*out);
            *out = json_object_new_string(exp);
        }
        if (!*out && (had_ref || (text[0] != '\0' &&
                                  !(!strcmp(exp, "~") || !strcasecmp(exp, "null")))))
            rc = -ENOMEM;
    } else {
        *out = json_object_new_string(exp);
        if (!*out)
            rc = -ENOMEM;
    }
out:
    free(exp);
    return rc;
}

static int cfg__node(cfg_ld_t *ld, yaml_event_t *ev, const char *path, int depth,
                     json_object **out);

static int cfg__seq(cfg_ld_t *ld, const char *path, int depth, json_object **out)
{
    json_object *arr = json_object_new_array();
    yaml_event_t ev;
    char sub[1024];
    size_t i = 0;
    int rc = 0;

    if (!arr)
        return -ENOMEM;
    for (;;) {
        json_object *item = NULL;
        if ((rc = cfg__next(ld, &ev)) < 0)
            goto out;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        snprintf(sub, sizeof sub, "%s[%zu]", path, i++);
        rc = cfg__node(ld, &ev, sub, depth + 1, &item);
        yaml_event_delete(&ev);
        if (rc < 0)
            goto out;
        json_object_array_add(arr, item);
    }
    *out = arr;
    arr = NULL;
out:
    json_object_put(arr);
    return rc;
}

static int cfg__map(cfg_ld_t *ld, const char *path, int depth, json_object **out)
{
    json_object *obj = json_object_new_object();
    yaml_event_t ev;
    char sub[1024], msg[1200];
    int rc = 0;

    if (!obj)
        return -ENOMEM;
    for (;;) {
        json_object *val = NULL;
        char *key = NULL;
        int line;

        if ((rc = cfg__next(ld, &ev)) < 0)
            goto out;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        line = (int)ev.start_mark.line + 1;
        if (ev.type != YAML_SCALAR_EVENT) {
            yaml_event_delete(&ev);
            rc = cfg__fail(ld, line, path, "mapping keys must be plain words, not lists or mappings");
            goto out;
        }
        key = strdup((const char *)ev.data.scalar.value);
        yaml_event_delete(&ev);
        if (!key) {
            rc = -ENOMEM;
            goto out;
        }
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", key);
        if (strcmp(key, "_src") == 0) {
            /* the registry's own record of ${} texts: a file that writes one
             * would load to a document the export cannot write back (found
             * by fuzz_cfg) */
            free(key);
            rc = cfg__fail(ld, line, sub, "'_src' is reserved (the registry's record of ${} "
                           "references): write ${VAR} in the field itself");
            goto out;
        }
        if (json_object_object_get_ex(obj, key, NULL)) {
            snprintf(msg, sizeof msg, "duplicate key '%s' (first at line %d)", key,
                     cfg__line_of(ld, sub));
            free(key);
            rc = cfg__fail(ld, line, sub, msg);
            goto out;
        }
        json_object_object_add(ld->lines, sub, json_object_new_int(line));
        if ((rc = cfg__next(ld, &ev)) < 0) {
            free(key);
            goto out;
        }
        rc = cfg__node(ld, &ev, sub, depth + 1, &val);
        yaml_event_delete(&ev);
        if (rc == 0)
            json_object_object_add(obj, key, val);
        free(key);
        if (rc < 0)
            goto out;
    }
    *out = obj;
    obj = NULL;
out:
    json_object_put(obj);
    return rc;
}

/* Builds the value whose first event is `ev` (the caller deletes `ev`). */
static int cfg__node(cfg_ld_t *ld, yaml_event_t *ev, const char *path, int depth,
                     json_object **out)
{
    int line = (int)ev->start_mark.line + 1;

    *out = NULL;
    if (depth > CAP_CFG_DEPTH)
        return cfg__fail(ld, line, path, "nested too deeply");
    if (!json_object_object_get_ex(ld->lines, path, NULL))
        json_object_object_add(ld->lines, path, json_object_new_int(line));
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return cfg__scalar(ld, ev, path, out);
    case YAML_SEQUENCE_START_EVENT:
        return cfg__seq(ld, path, depth, out);
    case YAML_MAPPING_START_EVENT:
        return cfg__map(ld, path, depth, out);
    case YAML_ALIAS_EVENT:
        return cfg__fail(ld, line, path, "YAML aliases (*name) are not supported; repeat the value");
    default:
        return cfg__fail(ld, line, path, "unexpected YAML structure");
    }
}

/* Parses the single document into *root (NULL for an empty file). */
static int cfg__parse(cfg_ld_t *ld, json_object **root)
{
    yaml_event_t ev;
    int rc, done = 0, docs = 0;

    *root = NULL;
    while (!done) {
        if ((rc = cfg__next(ld, &ev)) < 0)
            return rc;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (docs++) {
                rc = cfg__fail(ld, (int)ev.start_mark.line + 1, NULL,
                               "more than one YAML document ('---'); put everything in one");
                yaml_event_delete(&ev);
                return rc;
            }
            break;
        case YAML_SCALAR_EVENT:
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
        case YAML_ALIAS_EVENT:
            rc = cfg__node(ld, &ev, "", 0, root);
            if (rc < 0) {
                yaml_event_delete(&ev);
                return rc;
            }
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    return 0;
}

/* Moves srcs entries under "prefix." into obj._src (keys relative). */
static void cfg__attach_src(cfg_ld_t *ld, const char *prefix, json_object *obj, const char *skip)
{
    size_t n = strlen(prefix);
    json_object *src = NULL;

    json_object_object_foreach(ld->srcs, path, text) {
        const char *rel;
        if (strncmp(path, prefix, n) != 0 || path[n] != '.')
            continue;
        rel = path + n + 1;
        if (skip && !strcmp(rel, skip))
            continue;
        if (!src) {
            src = json_object_new_object();
            if (!src)
                return;
            json_object_object_add(obj, "_src", src);
        }
        json_object_object_add(src, rel, json_object_get(text));
    }
}

/* Turns a check's "field: problem" for the object at `prefix` into a
 * located message; the line is the deepest recorded path of the field. */
static int cfg__located(cfg_ld_t *ld, const char *prefix, const char *check_err)
{
    char path[1024], msg[1024];
    const char *colon = strstr(check_err, ": ");
    int line = 0;

    if (colon && (size_t)(colon - check_err) < 512 && !memchr(check_err, ' ', (size_t)(colon - check_err))) {
        snprintf(path, sizeof path, "%s%s%.*s", prefix, *prefix ? "." : "",
                 (int)(colon - check_err), check_err);
        snprintf(msg, sizeof msg, "%s", colon + 2);
    } else {
        snprintf(path, sizeof path, "%s", prefix);
        snprintf(msg, sizeof msg, "%s", check_err);
    }
    for (;;) {
        char *cut;
        if ((line = cfg__line_of(ld, path)) > 0 || !*path)
            break;
        cut = strrchr(path, path[strlen(path) - 1] == ']' ? '[' : '.');
        if (!cut)
            cut = path;
        *cut = '\0';
    }
    if (colon && (size_t)(colon - check_err) < 512 && !memchr(check_err, ' ', (size_t)(colon - check_err)))
        snprintf(path, sizeof path, "%s%s%.*s", prefix, *prefix ? "." : "",
                 (int)(colon - check_err), check_err);
    else
        snprintf(path, sizeof path, "%s", prefix);
    return cfg__fail(ld, line, path, msg);
}

typedef enum { CFG_BACKENDS, CFG_MCP, CFG_ASSISTANTS } cfg_kind_t;

static int cfg__check(cfg_kind_t k, const char *name, json_object *obj, json_object *doc,
                      char *err, size_t errlen)
{
    if (k == CFG_BACKENDS)
        return cfg_check_backend(name, obj, err, errlen);
    if (k == CFG_MCP)
        return cfg_check_mcp_server(name, obj, err, errlen);
    return cfg_check_assistant(name, obj, doc, err, errlen);
}

/* One named section: a map keyed by name or a list of objects with `name`. */
static int cfg__section(cfg_ld_t *ld, json_object *root, const char *key, cfg_kind_t k,
                        json_object *doc)
{
    json_object *sec = NULL, *out_map = NULL, *names_line = NULL;
    char path[1024], msg[1024], cerr[768];
    const char *what = k == CFG_ASSISTANTS ? "assistant" : k == CFG_MCP ? "MCP server" : "backend";
    int rc = 0;
    size_t i, n;

    json_object_object_get_ex(doc, key, &out_map);
    if (!json_object_object_get_ex(root, key, &sec) || !sec)
        return 0;
    names_line = json_object_new_object();
    if (!names_line)
        return -ENOMEM;
    if (json_object_is_type(sec, json_type_object)) {
        json_object_object_foreach(sec, name, item) {
            json_object *nv = NULL;
            snprintf(path, sizeof path, "%s.%s", key, name);
            if (!item) {
                item = json_object_new_object();
                json_object_object_add(sec, name, item);
            }
            if (!json_object_is_type(item, json_type_object)) {
                snprintf(msg, sizeof msg, "must be a mapping of %s fields", what);
                rc = cfg__fail(ld, cfg__line_of(ld, path), path, msg);
                goto out;
            }
            if (json_object_object_get_ex(item, "name", &nv)) {
                if (!json_object_is_type(nv, json_type_string) ||
                    strcmp(json_object_get_string(nv), name)) {
                    snprintf(msg, sizeof msg, "does not match the key '%s' it is listed under", name);
                    snprintf(path, sizeof path, "%s.%s.name", key, name);
                    rc = cfg__fail(ld, cfg__line_of(ld, path), path, msg);
                    goto out;
                }
                if (k != CFG_ASSISTANTS)
                    json_object_object_del(item, "name");
            }
            snprintf(path, sizeof path, "%s.%s", key, name);
            cfg__attach_src(ld, path, item, k != CFG_ASSISTANTS ? "name" : NULL);
            if (cfg__check(k, name, item, doc, cerr, sizeof cerr) < 0) {
                /* a bad key name is the key's fault, not a "name" field's */
                rc = cfg__located(ld, path, k != CFG_ASSISTANTS && !strncmp(cerr, "name: ", 6)
                                                ? cerr + 6 : cerr);
                goto out;
            }
            json_object_object_add(out_map, name, json_object_get(item));
        }
    } else if (json_object_is_type(sec, json_type_array)) {
        n = json_object_array_length(sec);
        for (i = 0; i < n; i++) {
            json_object *item = json_object_array_get_idx(sec, i), *nv = NULL, *prev = NULL;
            char *name = NULL;
            snprintf(path, sizeof path, "%s[%zu]", key, i);
            if (!json_object_is_type(item, json_type_object)) {
                snprintf(msg, sizeof msg, "must be a mapping of %s fields with a name", what);
                rc = cfg__fail(ld, cfg__line_of(ld, path), path, msg);
                goto out;
            }
            if (!json_object_object_get_ex(item, "name", &nv) ||
                !json_object_is_type(nv, json_type_string)) {
                snprintf(path, sizeof path, "%s[%zu].name", key, i);
                snprintf(msg, sizeof msg, "required: a string naming the %s", what);
                rc = cfg__fail(ld, cfg__line_of(ld, path), path, msg);
                goto out;
            }
            name = strdup(json_object_get_string(nv));
            if (!name) {
                rc = -ENOMEM;
                goto out;
            }
            snprintf(path, sizeof path, "%s[%zu].name", key, i);
            if (json_object_object_get_ex(names_line, name, &prev)) {
                snprintf(msg, sizeof msg, "duplicate %s name '%s' (also at line %d)", what, name,
                         json_object_get_int(prev));
                rc = cfg__fail(ld, cfg__line_of(ld, path), path, msg);
                free(name);
                goto out;
            }
            json_object_object_add(names_line, name, json_object_new_int(cfg__line_of(ld, path)));
            if (k != CFG_ASSISTANTS)
                json_object_object_del(item, "name");
            snprintf(path, sizeof path, "%s[%zu]", key, i);
            cfg__attach_src(ld, path, item, k != CFG_ASSISTANTS ? "name" : NULL);
            if (cfg__check(k, name, item, doc, cerr, sizeof cerr) < 0) {
                /* a bad key name is the key's fault, not a "name" field's */
                rc = cfg__located(ld, path, k != CFG_ASSISTANTS && !strncmp(cerr, "name: ", 6)
                                                ? cerr + 6 : cerr);
                free(name);
                goto out;
            }
            json_object_object_add(out_map, name, json_object_get(item));
            free(name);
        }
    } else {
        snprintf(msg, sizeof msg, "must be a mapping of name: %s, or a list of %ss with a name",
                 what, what);
        rc = cfg__fail(ld, cfg__line_of(ld, key), key, msg);
    }
out:
    json_object_put(names_line);
    return rc;
}

static int cfg__settings(cfg_ld_t *ld, json_object *root, json_object *doc)
{
    json_object *settings = NULL, *keys = NULL, *apiman = NULL, *srcs = NULL, *limits = NULL;
    json_object *use = NULL;
    char path[64], cerr[768];
    size_t i, n;
    int rc = 0;

    settings = json_object_new_object();
    if (!settings)
        return -ENOMEM;
    json_object_object_add(doc, "settings", settings);
    if (json_object_object_get_ex(root, "proxy_api_keys", &keys) && keys) {
        json_object_object_add(settings, "proxy_api_keys", json_object_get(keys));
        if (json_object_is_type(keys, json_type_array)) {
            n = json_object_array_length(keys);
            for (i = 0; i < n; i++) {
                json_object *text = NULL, *e = json_object_array_get_idx(keys, i);
                snprintf(path, sizeof path, "proxy_api_keys[%zu]", i);
                if (json_object_object_get_ex(ld->srcs, path, &text)) {
                    /* ${KEY} expanding to digits is still a key, not a number */
                    if (e && !json_object_is_type(e, json_type_string))
                        json_object_array_put_idx(keys, i,
                                                  json_object_new_string(json_object_get_string(e)));
                    /* Only a ${} needs its text kept: an entry with "$$" alone
                     * is a literal, hashed like the list's, so a _src of hashes
                     * only would not load back from the export, which writes
                     * the hashes (found by fuzz_cfg: `- k$$1`). The test is
                     * cfg_check_settings' own for keeping an entry as written. */
                    if (!srcs && cfg_has_ref(json_object_get_string(text))) {
                        srcs = json_object_new_array();
                        json_object_object_add(settings, "_src",
                                               json_object_new_object());
                        json_object_object_add(json_object_object_get(settings, "_src"),
                                               "proxy_api_keys", srcs);
                    }
                }
            }
            /* The references of every entry, dropped or not, as written, so an
             * export writes the list back the way the user wrote it. */
            for (i = 0; srcs && i < n; i++) {
                json_object *text = NULL, *e = json_object_array_get_idx(keys, i);
                snprintf(path, sizeof path, "proxy_api_keys[%zu]", i);
                if (json_object_object_get_ex(ld->srcs, path, &text))
                    json_object_array_add(srcs, json_object_get(text));
                else
                    json_object_array_add(srcs, json_object_new_string(
                                                    e ? json_object_get_string(e) : ""));
            }
        }
    }
    if (json_object_object_get_ex(root, "apiman", &apiman) && apiman) {
        json_object_object_add(settings, "apiman", json_object_get(apiman));
        if (json_object_is_type(apiman, json_type_object))
            cfg__attach_src(ld, "apiman", apiman, NULL);
    }
    if (json_object_object_get_ex(root, "limits", &limits) && limits)
        json_object_object_add(settings, "limits", json_object_get(limits));
    /* issue 18: usage accounting's retention (docs/usage.md) */
    if (json_object_object_get_ex(root, "usage", &use) && use)
        json_object_object_add(settings, "usage", json_object_get(use));
    if (cfg_check_settings(settings, cerr, sizeof cerr) < 0)
        rc = cfg__located(ld, "", cerr);
    return rc;
}

/* The responders' `broker:` section, kept as doc["broker"] when present (a
 * process setting: reg_seed leaves it out of the registry). */
static int cfg__broker(cfg_ld_t *ld, json_object *root, json_object *doc)
{
    json_object *broker = NULL;
    char cerr[768];

    if (!json_object_object_get_ex(root, "broker", &broker))
        return 0;
    if (!broker) /* `broker:` with nothing under it */
        return 0;
    if (cfg_check_broker(broker, cerr, sizeof cerr) < 0)
        return cfg__located(ld, json_object_is_type(broker, json_type_object) ? "broker" : "",
                            cerr);
    json_object_object_add(doc, "broker", json_object_get(broker));
    return 0;
}

int cfg_load_yaml(const char *text, size_t len, const char *name, json_object **doc, char *err,
                  size_t errlen)
{
    static const char *const top[] = {"mcp_servers", "backends", "assistants", "proxy_api_keys",
                                      "apiman", "broker", "limits", "usage", NULL};
    cfg_ld_t ld;
    json_object *root = NULL, *d = NULL;
    int rc, parser_ok = 0;
    char msg[256];

    memset(&ld, 0, sizeof ld);
    ld.name = name ? name : "config";
    ld.err = err;
    ld.errlen = errlen;
    *doc = NULL;
    ld.lines = json_object_new_object();
    ld.srcs = json_object_new_object();
    d = json_object_new_object();
    if (!ld.lines || !ld.srcs || !d || !yaml_parser_initialize(&ld.parser)) {
        rc = -ENOMEM;
        goto out;
    }
    parser_ok = 1;
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)text, len);
    if ((rc = cfg__parse(&ld, &root)) < 0)
        goto out;
    if (root && !json_object_is_type(root, json_type_object)) {
        rc = cfg__fail(&ld, 1, NULL, "the config must be a mapping with keys mcp_servers, backends, "
                                     "assistants, proxy_api_keys, apiman");
        goto out;
    }
    if (root) {
        json_object_object_foreach(root, key, val) {
            const char *const *t;
            (void)val;
            for (t = top; *t && strcmp(*t, key); t++)
                ;
            if (!*t) {
                rc = cfg__fail(&ld, cfg__line_of(&ld, key), key,
                               "unknown top-level key (allowed: mcp_servers, backends, assistants, "
                               "proxy_api_keys, apiman, broker, limits, usage)");
                goto out;
            }
        }
    }
    json_object_object_add(d, "backends", json_object_new_object());
    json_object_object_add(d, "mcp_servers", json_object_new_object());
    json_object_object_add(d, "assistants", json_object_new_object());
    if (root && ((rc = cfg__section(&ld, root, "backends", CFG_BACKENDS, d)) < 0 ||
                 (rc = cfg__section(&ld, root, "mcp_servers", CFG_MCP, d)) < 0 ||
                 (rc = cfg__section(&ld, root, "assistants", CFG_ASSISTANTS, d)) < 0))
        goto out;
    if ((rc = cfg__settings(&ld, root ? root : d, d)) < 0)
        goto out;
    if (root && (rc = cfg__broker(&ld, root, d)) < 0)
        goto out;
    *doc = d;
    d = NULL;
out:
    if (rc == -ENOMEM) {
        snprintf(msg, sizeof msg, "%s: out of memory", ld.name);
        snprintf(err, errlen, "%s", msg);
    }
    if (parser_ok)
        yaml_parser_delete(&ld.parser);
    json_object_put(root);
    json_object_put(d);
    json_object_put(ld.lines);
    json_object_put(ld.srcs);
    return rc;
}

int cfg_load_file(const char *path, json_object **doc, char *err, size_t errlen)
{
    FILE *f = NULL;
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    int rc = 0;

    *doc = NULL;
    f = fopen(path, "rb");
    if (!f) {
        rc = -errno;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        if (len + 4096 + 1 > cap) {
            char *p;
            if (cap >= CAP_CFG_FILE) {
                snprintf(err, errlen, "%s: file too large (over %d bytes)", path, CAP_CFG_FILE);
                rc = -EFBIG;
                goto out;
            }
            cap = cap ? cap * 2 : 8192;
            p = realloc(text, cap);
            if (!p) {
                rc = -ENOMEM;
                snprintf(err, errlen, "%s: out of memory", path);
                goto out;
            }
            text = p;
        }
        n = fread(text + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        rc = -EIO;
        snprintf(err, errlen, "%s: read error", path);
        goto out;
    }
    text[len] = '\0';
    rc = cfg_load_yaml(text, len, path, doc, err, errlen);
out:
    if (f)
        fclose(f);
    free(text);
    return rc;
}
