/* admin_doc — see admin_doc.h. */
#include "fcgi/admin/admin_doc.h"
#include "shared/jget.h"
#include "shared/caps.h"

#include "shared/buf.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


int admin_doc_credential_name(const char *name)
{
    static const char *const exact[] = { "authorization", "proxy-authorization", "cookie",
                                         "set-cookie" };
    static const char *const parts[] = { "key", "token", "secret", "passw", "credential",
                                         "auth", "session" };
    if (!name)
        return 0;
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
        if (strcasecmp(name, exact[i]) == 0)
            return 1;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        if (strcasestr(name, parts[i]))
            return 1;
    return 0;
}

/* `ref` with the default of every ${VAR:-default} replaced by "***". NULL on
 * ENOMEM. Caller frees. */
static char *admin_doc__sanitize_ref(const char *ref)
{
    buf_t b;
    buf_init(&b, CAP_ADMIN_REF);
    const char *p = ref;
    while (*p) {
        const char *open = strstr(p, "${");
        if (!open) {
            if (buf_puts(&b, p) != 0)
                goto fail;
            break;
        }
        const char *close = strchr(open, '}');
        if (!close) {
            if (buf_puts(&b, p) != 0)
                goto fail;
            break;
        }
        if (buf_append(&b, p, (size_t)(open - p)) != 0)
            goto fail;
        const char *dflt = strstr(open, ":-");
        if (dflt && dflt < close) {
            if (buf_append(&b, open, (size_t)(dflt - open)) != 0 ||
                buf_puts(&b, ":-" ADMIN_REDACTED "}") != 0)
                goto fail;
        } else if (buf_append(&b, open, (size_t)(close - open) + 1) != 0) {
            goto fail;
        }
        p = close + 1;
    }
    return buf_detach(&b);
fail:
    buf_free(&b);
    return NULL;
}

/* The _src entry of `obj` for `path` (tried also as "a[i]" for "a.i"). */
static const char *admin_doc__src(json_object *obj, const char *path, const char *alt)
{
    json_object *src = jget_obj(obj, "_src");
    const char *s = jget_str(src, path);

    return s || !alt ? s : jget_str(src, alt);
}

/* Replaces the value at container[key] (object) or container[idx] (array) by
 * the sanitised reference from owner._src[path], or "***". Also rewrites that
 * _src entry sanitised, for YAML output. Empty strings and nulls are left:
 * "not set" is not a secret. */
static void admin_doc__hide(json_object *owner, json_object *container, const char *key,
                            size_t idx, const char *path, const char *alt)
{
    json_object *v = key ? NULL : json_object_array_get_idx(container, idx);
    if (key && !json_object_object_get_ex(container, key, &v))
        return;
    if (!v || (json_object_is_type(v, json_type_string) && json_object_get_string_len(v) == 0))
        return;
    const char *ref = admin_doc__src(owner, path, alt);
    char *clean = ref ? admin_doc__sanitize_ref(ref) : NULL;
    json_object *nv = json_object_new_string(clean ? clean : ADMIN_REDACTED);
    if (key)
        json_object_object_add(container, key, nv);
    else
        json_object_array_put_idx(container, idx, nv);
    if (clean) {
        json_object *src;
        json_object_object_get_ex(owner, "_src", &src);
        const char *which = admin_doc__src(owner, path, NULL) ? path : alt;
        json_object_object_add(src, which, json_object_new_string(clean));
    }
    free(clean);
}

/* Hides credential-named entries of owner[field] (a name->string map). */
static void admin_doc__hide_map(json_object *owner, const char *field)
{
    json_object *map;
    if (!json_object_object_get_ex(owner, field, &map) || !json_object_is_type(map, json_type_object))
        return;
    json_object_object_foreach(map, k, v) {
        (void)v;
        if (!admin_doc_credential_name(k))
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s.%s", field, k);
        admin_doc__hide(owner, map, k, 0, path, NULL);
    }
}

/* The secrets of an MCP server's OAuth block (docs/mcp-auth.md). */
static const char *const admin_doc__auth_secrets[] = { "client_secret", "refresh_token" };

static void admin_doc__hide_auth(json_object *obj)
{
    json_object *auth = jget_obj(obj, "auth"), *jwt = jget_obj(auth, "private_key_jwt");
    char path[64];

    for (size_t i = 0; auth && i < sizeof(admin_doc__auth_secrets) / sizeof(admin_doc__auth_secrets[0]); i++) {
        snprintf(path, sizeof(path), "auth.%s", admin_doc__auth_secrets[i]);
        admin_doc__hide(obj, auth, admin_doc__auth_secrets[i], 0, path, NULL);
    }
    if (jwt)
        admin_doc__hide(obj, jwt, "key", 0, "auth.private_key_jwt.key", NULL);
}

static void admin_doc__finish(json_object *obj, enum admin_redact_mode mode)
{
    if (mode == ADMIN_REDACT_JSON)
        json_object_object_del(obj, "_src");
}

static void admin_doc__redact_in_place(const char *kind, json_object *obj,
                                       enum admin_redact_mode mode)
{
    if (!json_object_is_type(obj, json_type_object))
        return;
    if (strcmp(kind, "backends") == 0) {
        admin_doc__hide(obj, obj, "api_key", 0, "api_key", NULL);
        admin_doc__hide_map(obj, "default_headers");
    } else if (strcmp(kind, "mcp_servers") == 0) {
        admin_doc__hide_map(obj, "headers");
        admin_doc__hide_map(obj, "env");
        admin_doc__hide_auth(obj);
    } else if (strcmp(kind, "settings") == 0) {
        json_object *keys, *am, *src, *refs = NULL;
        /* cfg keeps the list as written in _src.proxy_api_keys (literal keys
         * too, once any entry was a reference): sanitise it entry by entry */
        if (json_object_object_get_ex(obj, "_src", &src) &&
            json_object_object_get_ex(src, "proxy_api_keys", &refs) &&
            json_object_is_type(refs, json_type_array)) {
            for (size_t i = 0; i < json_object_array_length(refs); i++) {
                const char *t = json_object_get_string(json_object_array_get_idx(refs, i));
                char *clean = t && strstr(t, "${") ? admin_doc__sanitize_ref(t) : NULL;
                json_object_array_put_idx(refs, i, json_object_new_string(
                                                       clean ? clean : ADMIN_REDACTED));
                free(clean);
            }
        } else {
            refs = NULL;
        }
        if (json_object_object_get_ex(obj, "proxy_api_keys", &keys) &&
            json_object_is_type(keys, json_type_array)) {
            size_t n = json_object_array_length(keys);
            /* entries line up with the references only when none was dropped */
            int aligned = refs && json_object_array_length(refs) == n;
            for (size_t i = 0; i < n; i++) {
                const char *t = aligned
                    ? json_object_get_string(json_object_array_get_idx(refs, i)) : NULL;
                json_object_array_put_idx(keys, i, json_object_new_string(
                                                       t && strstr(t, "${") ? t : ADMIN_REDACTED));
            }
        }
        if (json_object_object_get_ex(obj, "apiman", &am) &&
            json_object_is_type(am, json_type_object)) {
            /* _src may sit on settings ("apiman.secret") or on apiman ("secret") */
            if (admin_doc__src(obj, "apiman.secret", NULL))
                admin_doc__hide(obj, am, "secret", 0, "apiman.secret", NULL);
            else
                admin_doc__hide(am, am, "secret", 0, "secret", NULL);
            admin_doc__finish(am, mode);
        }
    }
    admin_doc__finish(obj, mode);
}

json_object *admin_doc_redact_one(const char *kind, json_object *obj, enum admin_redact_mode mode)
{
    json_object *copy = NULL;
    if (!obj || json_object_deep_copy(obj, &copy, NULL) != 0)
        return NULL;
    admin_doc__redact_in_place(kind, copy, mode);
    return copy;
}

json_object *admin_doc_redact(json_object *doc, enum admin_redact_mode mode)
{
    static const char *const kinds[] = { "assistants", "backends", "mcp_servers" };
    json_object *copy = NULL;
    if (!doc || json_object_deep_copy(doc, &copy, NULL) != 0)
        return NULL;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        json_object *map;
        if (!json_object_object_get_ex(copy, kinds[i], &map) ||
            !json_object_is_type(map, json_type_object))
            continue;
        json_object_object_foreach(map, k, v) {
            (void)k;
            admin_doc__redact_in_place(kinds[i], v, mode);
        }
    }
    json_object *settings;
    if (json_object_object_get_ex(copy, "settings", &settings))
        admin_doc__redact_in_place("settings", settings, mode);
    return copy;
}

/* obj[key] := old[key] (and the _src entry for path) when the value sent
 * equals the redacted one. Containers are the field's objects in each copy. */
static void admin_doc__keep(json_object *obj, json_object *nc, json_object *old, json_object *oc,
                            json_object *rc, const char *key, const char *path)
{
    json_object *nv, *ov, *rv, *osrc, *os, *nsrc;
    if (!nc || !oc || !rc || !json_object_object_get_ex(nc, key, &nv) ||
        !json_object_object_get_ex(oc, key, &ov) || !json_object_object_get_ex(rc, key, &rv) ||
        !json_object_is_type(nv, json_type_string) || !json_object_is_type(rv, json_type_string) ||
        strcmp(json_object_get_string(nv), json_object_get_string(rv)) != 0)
        return;
    json_object_object_add(nc, key, json_object_get(ov));
    if (json_object_object_get_ex(old, "_src", &osrc) && json_object_object_get_ex(osrc, path, &os)) {
        if (!json_object_object_get_ex(obj, "_src", &nsrc) ||
            !json_object_is_type(nsrc, json_type_object)) {
            nsrc = json_object_new_object();
            json_object_object_add(obj, "_src", nsrc);
        }
        json_object_object_add(nsrc, path, json_object_get(os));
    }
}

static void admin_doc__keep_map(json_object *obj, json_object *old, json_object *red,
                                const char *field)
{
    json_object *nm, *om, *rm;
    if (!json_object_object_get_ex(obj, field, &nm) || !json_object_is_type(nm, json_type_object) ||
        !json_object_object_get_ex(old, field, &om) || !json_object_object_get_ex(red, field, &rm))
        return;
    json_object_object_foreach(nm, k, v) {
        (void)v;
        char path[512];
        if (!admin_doc_credential_name(k))
            continue;
        snprintf(path, sizeof(path), "%s.%s", field, k);
        admin_doc__keep(obj, nm, old, om, rm, k, path);
    }
}

void admin_doc_keep_secrets(const char *kind, json_object *obj, json_object *old)
{
    json_object *red;
    if (!old || !json_object_is_type(obj, json_type_object))
        return;
    /* what a GET showed, computed the way the GET did (with _src kept) */
    red = admin_doc_redact_one(kind, old, ADMIN_REDACT_YAML);
    if (!red)
        return;
    if (strcmp(kind, "backends") == 0) {
        admin_doc__keep(obj, obj, old, old, red, "api_key", "api_key");
        admin_doc__keep_map(obj, old, red, "default_headers");
    } else if (strcmp(kind, "mcp_servers") == 0) {
        admin_doc__keep_map(obj, old, red, "headers");
        admin_doc__keep_map(obj, old, red, "env");
        json_object *na = jget_obj(obj, "auth"), *oa = jget_obj(old, "auth"), *ra = jget_obj(red, "auth");
        char path[64];
        for (size_t i = 0; i < sizeof(admin_doc__auth_secrets) / sizeof(admin_doc__auth_secrets[0]); i++) {
            snprintf(path, sizeof(path), "auth.%s", admin_doc__auth_secrets[i]);
            admin_doc__keep(obj, na, old, oa, ra, admin_doc__auth_secrets[i], path);
        }
        admin_doc__keep(obj, jget_obj(na, "private_key_jwt"), old, jget_obj(oa, "private_key_jwt"),
                        jget_obj(ra, "private_key_jwt"), "key", "auth.private_key_jwt.key");
    }
    json_object_put(red);
}

json_object *admin_doc_users(json_object *doc, const char *kind, const char *name)
{
    json_object *out = json_object_new_array();
    json_object *as;
    if (!out || !doc || !json_object_object_get_ex(doc, "assistants", &as) ||
        !json_object_is_type(as, json_type_object))
        return out;
    int is_backend = strcmp(kind, "backends") == 0, is_mcp = strcmp(kind, "mcp_servers") == 0;
    json_object_object_foreach(as, aname, a) {
        json_object *v;
        int uses = 0;
        if (is_backend && json_object_object_get_ex(a, "backend", &v) &&
            json_object_is_type(v, json_type_string) && strcmp(json_object_get_string(v), name) == 0)
            uses = 1;
        if (is_mcp && json_object_object_get_ex(a, "mcp_servers", &v) &&
            json_object_is_type(v, json_type_array)) {
            for (size_t i = 0; i < json_object_array_length(v); i++) {
                json_object *s = json_object_array_get_idx(v, i);
                if (json_object_is_type(s, json_type_string) &&
                    strcmp(json_object_get_string(s), name) == 0)
                    uses = 1;
            }
        }
        if (uses)
            json_object_array_add(out, json_object_new_string(aname));
    }
    return out;
}

int admin_doc_body(const char *kind, const char *name, const char *body, size_t len,
                   json_object **obj, char *err, size_t errlen, const char **param)
{
    int rc = -EBADMSG;
    json_tokener *tok = NULL;
    json_object *o = NULL, *v;
    *obj = NULL;
    *param = NULL;
    if (!body || len == 0) {
        snprintf(err, errlen, "the request body must be a JSON object describing the %s",
                 kind);
        goto out;
    }
    if (len > CAP_ADMIN_DOC_BODY) {
        snprintf(err, errlen, "the request body is larger than %d bytes", CAP_ADMIN_DOC_BODY);
        goto out;
    }
    tok = json_tokener_new();
    if (!tok) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    o = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (!o || jerr != json_tokener_success) {
        snprintf(err, errlen, "the request body is not valid JSON: %s",
                 json_tokener_error_desc(jerr == json_tokener_success ? json_tokener_continue : jerr));
        goto out;
    }
    if (tok->char_offset < (int)len) {
        for (size_t i = (size_t)tok->char_offset; i < len; i++) {
            if (body[i] != ' ' && body[i] != '\n' && body[i] != '\r' && body[i] != '\t') {
                snprintf(err, errlen, "the request body has text after the JSON object");
                goto out;
            }
        }
    }
    if (!json_object_is_type(o, json_type_object)) {
        snprintf(err, errlen, "the request body must be a JSON object, not %s",
                 json_type_to_name(json_object_get_type(o)));
        goto out;
    }
    if (json_object_object_get_ex(o, "name", &v)) {
        if (!json_object_is_type(v, json_type_string) || strcmp(json_object_get_string(v), name) != 0) {
            rc = -EINVAL;
            *param = "name";
            snprintf(err, errlen, "name: must match the name in the path ('%s')", name);
            goto out;
        }
    }
    if (strcmp(kind, "assistants") == 0)
        json_object_object_add(o, "name", json_object_new_string(name));
    else
        json_object_object_del(o, "name");
    *obj = o;
    o = NULL;
    rc = 0;
out:
    json_object_put(o);
    if (tok)
        json_tokener_free(tok);
    return rc;
}

void admin_doc_err_param(const char *err, char *param, size_t paramlen)
{
    if (paramlen == 0)
        return;
    param[0] = '\0';
    if (!err)
        return;
    const char *colon = strstr(err, ": ");
    if (!colon)
        return;
    size_t n = (size_t)(colon - err);
    for (size_t i = 0; i < n; i++)
        if (err[i] == ' ')
            return;   /* a sentence, not a field path */
    if (n >= paramlen)
        n = paramlen - 1;
    memcpy(param, err, n);
    param[n] = '\0';
}

int admin_doc_command_allowed(const char *allow, const char *command)
{
    char glob[1024];
    const char *p = allow, *end;
    int ok = 0;

    if (!allow || !command || !*command)
        return 0;
    while (*p && !ok) {
        size_t n;
        end = p + strcspn(p, ":,");
        n = (size_t)(end - p);
        if (n > 0 && n < sizeof(glob)) {
            memcpy(glob, p, n);
            glob[n] = '\0';
            ok = fnmatch(glob, command, 0) == 0;
        }
        p = *end ? end + 1 : end;
    }
    return ok;
}
