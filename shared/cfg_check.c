/* cfg_check — validation and normalisation of registry objects, shared by the
 * config loader and the admin API. Errors read "field: problem"; the loader
 * prefixes file, line and the object's path. No I/O. */
#include "shared/cfg.h"
#include "shared/sha256.h"
#include "shared/jget.h"
#include "shared/caps.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG__STR2(x) #x
#define CFG__STR(x) CFG__STR2(x)

/* One check run over one object: `src` is its "_src" map (may be NULL), used
 * to accept a number or bool where a string is expected when it came from a
 * ${VAR} expansion (`api_key: ${KEY}` with KEY=12345 is still a string). */
typedef struct ck {
    json_object *obj;
    json_object *src;
    char *err;
    size_t errlen;
} ck_t;

static int ck__fail(ck_t *c, const char *field, const char *fmt, const char *arg)
{
    char msg[1024];
    snprintf(msg, sizeof msg, fmt, arg ? arg : "");
    snprintf(c->err, c->errlen, "%s: %s", field, msg);
    return -EINVAL;
}

static int ck__init(ck_t *c, json_object *obj, const char *what, char *err, size_t errlen)
{
    json_object *src = NULL;

    c->obj = obj;
    c->src = NULL;
    c->err = err;
    c->errlen = errlen;
    if (!obj || !json_object_is_type(obj, json_type_object)) {
        snprintf(err, errlen, "%s: must be an object (a mapping of fields)", what);
        return -EINVAL;
    }
    if (json_object_object_get_ex(obj, "_src", &src)) {
        if (!json_object_is_type(src, json_type_object))
            return ck__fail(c, "_src", "must be an object of field path -> original text%s", NULL);
        c->src = src;
    }
    return 0;
}

static int ck__from_env(ck_t *c, const char *path)
{
    return c->src && json_object_object_get_ex(c->src, path, NULL);
}

/* Refuses fields outside `allowed` (NULL-terminated; "_src" always allowed). */
static int ck__unknown(ck_t *c, const char *const *allowed, const char *hint)
{
    json_object_object_foreach(c->obj, key, val) {
        const char *const *a;
        (void)val;
        if (strcmp(key, "_src") == 0)
            continue;
        for (a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                break;
        if (!*a)
            return ck__fail(c, key, "unknown field (allowed: %s)", hint);
    }
    return 0;
}

/* Makes `v` a string if it is a scalar that came from ${VAR}; returns the
 * (possibly new) value or NULL when it is not a string. */
static json_object *ck__as_string(ck_t *c, json_object *parent, const char *key, size_t idx,
                                  json_object *v, const char *path, int stringify_all)
{
    json_type t = json_object_get_type(v);

    if (t == json_type_string)
        return v;
    if ((t == json_type_int || t == json_type_double || t == json_type_boolean ||
         (t == json_type_null && stringify_all)) &&
        (stringify_all || ck__from_env(c, path))) {
        json_object *s = json_object_new_string(v ? json_object_get_string(v) : "");
        if (!s)
            return NULL;
        if (!key)
            json_object_array_put_idx(parent, idx, s);
        else
            json_object_object_add(parent, key, s);
        return s;
    }
    return NULL;
}

/* A string field: absent/null gives `def` (NULL: stays null). */
static int ck__str(ck_t *c, const char *f, const char *def, const char *what)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(c->obj, f, &v) || !v) {
        json_object_object_add(c->obj, f, def ? json_object_new_string(def) : NULL);
        return 0;
    }
    if (!ck__as_string(c, c->obj, f, 0, v, f, 0))
        return ck__fail(c, f, "must be a string%s", what);
    return 0;
}

static int ck__required_str(ck_t *c, const char *f, const char *hint, const char **out)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(c->obj, f, &v) || !v)
        return ck__fail(c, f, "required%s", hint);
    v = ck__as_string(c, c->obj, f, 0, v, f, 0);
    if (!v)
        return ck__fail(c, f, "must be a string%s", hint);
    if (!json_object_get_string_len(v))
        return ck__fail(c, f, "must not be empty%s", hint);
    if (out)
        *out = json_object_get_string(v);
    return 0;
}

static int ck__is_number(json_object *v)
{
    return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

/* A number in [lo, hi] (strict lower bound when lo_open); absent/null gives
 * `def`, or null when has_def is 0. `integer` refuses fractions. */
static int ck__num(ck_t *c, const char *f, double lo, int lo_open, double hi, int integer,
                   int has_def, double def, const char *range)
{
    json_object *v = NULL;
    double d;

    if (!json_object_object_get_ex(c->obj, f, &v) || !v) {
        json_object *nv = NULL;
        if (has_def)
            nv = (integer || def == floor(def)) ? json_object_new_int64((int64_t)def)
                                                 : json_object_new_double(def);
        json_object_object_add(c->obj, f, nv);
        return 0;
    }
    if (!ck__is_number(v))
        return ck__fail(c, f, "must be a number %s", range);
    d = json_object_get_double(v);
    if (!isfinite(d) || d < lo || (lo_open && d <= lo) || d > hi)
        return ck__fail(c, f, "out of range: must be %s", range);
    if (integer) {
        if (d != floor(d))
            return ck__fail(c, f, "must be a whole number %s", range);
        if (json_object_is_type(v, json_type_double))
            json_object_object_add(c->obj, f, json_object_new_int64((int64_t)d));
    }
    return 0;
}

static int ck__bool(ck_t *c, const char *f, int def)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(c->obj, f, &v) || !v) {
        json_object_object_add(c->obj, f, json_object_new_boolean(def));
        return 0;
    }
    if (!json_object_is_type(v, json_type_boolean))
        return ck__fail(c, f, "must be true or false%s", NULL);
    return 0;
}

/* true, false, or absent/null (kept as null: "inherit"). */
static int ck__optbool(ck_t *c, const char *f)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(c->obj, f, &v) || !v) {
        json_object_object_add(c->obj, f, NULL);
        return 0;
    }
    if (!json_object_is_type(v, json_type_boolean))
        return ck__fail(c, f, "must be true, false or null (the backend's)%s", NULL);
    return 0;
}

/* A list of strings; absent/null gives []. */
static int ck__strlist(ck_t *c, const char *f)
{
    json_object *v = NULL;
    size_t i, n;
    char path[160];

    if (!json_object_object_get_ex(c->obj, f, &v) || !v) {
        json_object_object_add(c->obj, f, json_object_new_array());
        return 0;
    }
    if (!json_object_is_type(v, json_type_array))
        return ck__fail(c, f, "must be a list of strings%s", NULL);
    n = json_object_array_length(v);
    for (i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(v, i);
        snprintf(path, sizeof path, "%s[%zu]", f, i);
        if (!ck__as_string(c, v, NULL, i, e, path, 0))
            return ck__fail(c, path, "must be a string%s", NULL);
    }
    return 0;
}

/* A map of string -> string; absent/null gives {}. With stringify, scalar
 * values (numbers, booleans, null) become strings, as process environments
 * need. */
static int ck__strmap(ck_t *c, const char *f, int stringify)
{
    json_object *v = NULL;
    char path[320];

    if (!json_object_object_get_ex(c->obj, f, &v) || !v) {
        json_object_object_add(c->obj, f, json_object_new_object());
        return 0;
    }
    if (!json_object_is_type(v, json_type_object))
        return ck__fail(c, f, "must be a mapping of name: string%s", NULL);
    json_object_object_foreach(v, key, val) {
        snprintf(path, sizeof path, "%s.%s", f, key);
        if (!ck__as_string(c, v, key, 0, val, path, stringify))
            return ck__fail(c, path, "must be a string%s", stringify ? " or a number/boolean" : "");
    }
    return 0;
}

static int ck__object(ck_t *c, const char *f)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(c->obj, f, &v) || !v) {
        json_object_object_add(c->obj, f, json_object_new_object());
        return 0;
    }
    if (!json_object_is_type(v, json_type_object))
        return ck__fail(c, f, "must be a mapping%s", NULL);
    return 0;
}

static int ck__http_url(ck_t *c, const char *f)
{
    const char *u = jget_str(c->obj, f);
    if (u && strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
        return ck__fail(c, f, "must start with http:// or https:// (got '%s')", u);
    return 0;
}

/* Puts the fields in `order` first, in that order (json-c keeps insertion
 * order): the registry and exports read the same way for every object. */
static void ck__reorder(json_object *obj, const char *const *order)
{
    const char *const *k;
    json_object *v;

    for (k = order; *k; k++) {
        if (!json_object_object_get_ex(obj, *k, &v))
            continue;
        json_object_get(v);
        json_object_object_del(obj, *k);
        json_object_object_add(obj, *k, v);
    }
    if (json_object_object_get_ex(obj, "_src", &v)) {
        json_object_get(v);
        json_object_object_del(obj, "_src");
        if (json_object_object_length(v))
            json_object_object_add(obj, "_src", v);
        else
            json_object_put(v);
    }
}

/* isalnum() follows the locale; names must not, so spell the ASCII ranges. */
static int ck__alnum(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

int cfg_name_valid(const char *name)
{
    size_t i, n = name ? strlen(name) : 0;

    if (n == 0 || n > CAP_NAME || !ck__alnum((unsigned char)name[0]))
        return 0;
    for (i = 1; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (!ck__alnum(ch) && ch != '.' && ch != '_' && ch != '-')
            return 0;
    }
    return 1; /* "." and ".." fail the first-character rule */
}

static int ck__name(const char *name, const char *what, char *err, size_t errlen)
{
    if (!name || cfg_name_valid(name))
        return 0;
    snprintf(err, errlen, "name: '%s' is not a valid %s name (1 to %d characters of A-Z a-z 0-9 "
             ". _ -, starting with a letter or digit)", name, what, CAP_NAME);
    return -EINVAL;
}

int cfg_env_name_valid(const char *name)
{
    size_t i, n = name ? strlen(name) : 0;

    if (n == 0 || n > CAP_NAME || (name[0] >= '0' && name[0] <= '9'))
        return 0;
    for (i = 0; i < n; i++)
        if (!ck__alnum((unsigned char)name[i]) && name[i] != '_')
            return 0;
    return 1;
}

int cfg_env_is_secret(const char *name)
{
    static const char *const exact[] = {"ADMIN_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY",
                                        "REDIS_URL", NULL};
    const char *const *e;

    if (!name)
        return 0;
    for (e = exact; *e; e++)
        if (strcmp(*e, name) == 0)
            return 1;
    return strncmp(name, "AIPROXY_", 8) == 0;
}

/* inherit_env: a list of environment variable names, none of them ours. */
static int ck__inherit_env(ck_t *c)
{
    json_object *v = NULL;
    size_t i, n;
    char path[64];
    int rc;

    if ((rc = ck__strlist(c, "inherit_env")) < 0)
        return rc;
    json_object_object_get_ex(c->obj, "inherit_env", &v);
    n = json_object_array_length(v);
    for (i = 0; i < n; i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(v, i));
        snprintf(path, sizeof path, "inherit_env[%zu]", i);
        if (!cfg_env_name_valid(s))
            return ck__fail(c, path, "'%s' is not an environment variable name "
                                     "(letters, digits and _, not starting with a digit)", s);
        if (cfg_env_is_secret(s))
            return ck__fail(c, path, "'%s' is one of the gateway's own secrets: it is never "
                                     "passed to MCP servers (see docs/security.md)", s);
    }
    return 0;
}

int cfg_check_backend(const char *name, json_object *obj, char *err, size_t errlen)
{
    static const char *const fields[] = {"kind", "base_url", "api_key", "default_headers",
                                         "timeout", "tool_images", NULL};
    ck_t c;
    const char *kind = NULL, *def;
    int rc, images;

    if ((rc = ck__name(name, "backend", err, errlen)) < 0 ||
        (rc = ck__init(&c, obj, "backend", err, errlen)) < 0 ||
        (rc = ck__unknown(&c, fields, "kind, base_url, api_key, default_headers, timeout, "
                                      "tool_images")) < 0 ||
        (rc = ck__required_str(&c, "kind", " (openai or anthropic)", &kind)) < 0)
        goto out;
    if (strcmp(kind, "openai") == 0) {
        def = "https://api.openai.com/v1";
        images = 0;   /* OpenAI-compatible servers vary: many take no images */
    } else if (strcmp(kind, "anthropic") == 0) {
        def = "https://api.anthropic.com/v1";
        images = 1;
    } else {
        rc = ck__fail(&c, "kind", "unknown backend kind '%s' (allowed: openai, anthropic)", kind);
        goto out;
    }
    if ((rc = ck__str(&c, "base_url", def, " (an http:// or https:// URL)")) < 0 ||
        (rc = ck__http_url(&c, "base_url")) < 0 ||
        (rc = ck__str(&c, "api_key", "", " (\"\" for none)")) < 0 ||
        (rc = ck__strmap(&c, "default_headers", 0)) < 0 ||
        (rc = ck__num(&c, "timeout", 0, 1, 86400, 0, 1, 300, "in seconds, > 0")) < 0 ||
        (rc = ck__bool(&c, "tool_images", images)) < 0)
        goto out;
    ck__reorder(obj, fields);
out:
    return rc;
}

/* An MCP server's OAuth block (docs/mcp-auth.md). Absent stays absent: most
 * servers have none. Errors name the field as auth.FIELD. */
static int ck__auth(ck_t *parent)
{
    static const char *const fields[] = {"grant", "client_id", "client_secret", "private_key_jwt",
                                         "scope", "resource", "client_metadata_url",
                                         "redirect_uri", "refresh_token", NULL};
    static const char *const jwt_fields[] = {"key", "alg", NULL};
    json_object *a = NULL, *j = NULL;
    ck_t c, cj;
    const char *g, *alg;
    char sub[512], subj[480];
    int rc;

    if (!json_object_object_get_ex(parent->obj, "auth", &a) || !a)
        return 0;
    rc = ck__init(&c, a, "auth", sub, sizeof sub);
    if (rc == 0)
        rc = ck__unknown(&c, fields, "grant, client_id, client_secret, private_key_jwt, scope, "
                                     "resource, client_metadata_url, redirect_uri, refresh_token");
    for (size_t i = 1; rc == 0 && fields[i]; i++)
        if (strcmp(fields[i], "private_key_jwt") != 0)
            rc = ck__str(&c, fields[i], NULL, "");
    if (rc == 0 && (rc = ck__str(&c, "grant", "client_credentials", "")) == 0) {
        g = jget_str(a, "grant");
        if (strcmp(g, "client_credentials") && strcmp(g, "refresh_token") &&
            strcmp(g, "authorization_code"))
            rc = ck__fail(&c, "grant", "must be client_credentials or refresh_token "
                                       "(authorization_code needs a browser: mcp-probe only; got '%s')", g);
    }
    if (rc == 0 && json_object_object_get_ex(a, "private_key_jwt", &j) && j) {
        rc = ck__init(&cj, j, "private_key_jwt", subj, sizeof subj);
        if (rc == 0)
            rc = ck__unknown(&cj, jwt_fields, "key, alg");
        if (rc == 0)
            rc = ck__required_str(&cj, "key", " (a PEM private key, e.g. ${MCP_KEY})", &alg);
        if (rc == 0 && (rc = ck__str(&cj, "alg", "ES256", "")) == 0) {
            alg = jget_str(j, "alg");
            if (strcmp(alg, "ES256") && strcmp(alg, "RS256"))
                rc = ck__fail(&cj, "alg", "must be ES256 or RS256 (got '%s')", alg);
        }
        if (rc < 0)
            snprintf(sub, sizeof sub, "private_key_jwt.%s", subj);
    }
    if (rc == 0 && !jget_str(a, "client_id") && jget_str(a, "client_secret"))
        rc = ck__fail(&c, "client_secret", "given without client_id%s", NULL);
    if (rc < 0)
        snprintf(parent->err, parent->errlen, "auth.%s", sub);
    return rc;
}

/* roots: [{uri, name?}], what roots/list answers the server (MCP roots);
 * absent/null gives []. A uri must be a file:// URI (the spec's only kind). */
static int ck__roots(ck_t *c)
{
    json_object *v = NULL;
    char path[64];
    size_t n;

    if (!json_object_object_get_ex(c->obj, "roots", &v) || !v) {
        json_object_object_add(c->obj, "roots", json_object_new_array());
        return 0;
    }
    if (!json_object_is_type(v, json_type_array))
        return ck__fail(c, "roots", "must be a list of {uri, name}%s", NULL);
    n = json_object_array_length(v);
    if (n > CAP_MCP_ROOTS)
        return ck__fail(c, "roots", "at most " CFG__STR(CAP_MCP_ROOTS) " roots%s", NULL);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(v, i), *f = NULL;
        const char *u;
        if (!json_object_is_type(e, json_type_object)) {
            snprintf(path, sizeof path, "roots[%zu]", i);
            return ck__fail(c, path, "must be a mapping {uri, name}%s", NULL);
        }
        json_object_object_foreach(e, key, val) {
            (void)val;
            if (strcmp(key, "uri") != 0 && strcmp(key, "name") != 0) {
                snprintf(path, sizeof path, "roots[%zu]", i);
                return ck__fail(c, path, "unknown field '%s' (allowed: uri, name)", key);
            }
        }
        u = jget_str(e, "uri");
        if (!u || strncmp(u, "file://", 7) != 0) {
            snprintf(path, sizeof path, "roots[%zu].uri", i);
            return ck__fail(c, path, "must be a file:// URI%s", NULL);
        }
        if (json_object_object_get_ex(e, "name", &f) && f && !json_object_is_type(f, json_type_string)) {
            snprintf(path, sizeof path, "roots[%zu].name", i);
            return ck__fail(c, path, "must be a string%s", NULL);
        }
    }
    return 0;
}

int cfg_check_mcp_server(const char *name, json_object *obj, char *err, size_t errlen)
{
    static const char *const fields[] = {"transport", "command", "args", "env", "inherit_env",
                                         "cwd", "url", "headers", "description", "timeout",
                                         "max_timeout", "auth", "roots", "elicitation", NULL};
    ck_t c;
    json_object *v = NULL;
    const char *t;
    int rc, max_given;

    if ((rc = ck__name(name, "MCP server", err, errlen)) < 0 ||
        (rc = ck__init(&c, obj, "MCP server", err, errlen)) < 0 ||
        (rc = ck__unknown(&c, fields, "transport, command, args, env, inherit_env, cwd, "
                                      "url, headers, description, timeout, max_timeout, auth, "
                                      "roots, elicitation")) < 0 ||
        (rc = ck__str(&c, "command", NULL, "")) < 0)
        goto out;
    if (!json_object_object_get_ex(obj, "transport", &v) || !v) {
        if (!jget_str(obj, "command")) {
            rc = ck__fail(&c, "transport", "required when no command is given "
                                           "(stdio, sse, http, streamable-http)%s", NULL);
            goto out;
        }
        json_object_object_add(obj, "transport", json_object_new_string("stdio"));
    }
    if ((rc = ck__str(&c, "transport", NULL, "")) < 0)
        goto out;
    t = jget_str(obj, "transport");
    if (!t || (strcmp(t, "stdio") && strcmp(t, "sse") && strcmp(t, "http") &&
               strcmp(t, "streamable-http"))) {
        rc = ck__fail(&c, "transport", "must be one of stdio, sse, http, streamable-http (got '%s')",
                      t ? t : "null");
        goto out;
    }
    if ((rc = ck__strlist(&c, "args")) < 0 || (rc = ck__strmap(&c, "env", 1)) < 0 ||
        (rc = ck__inherit_env(&c)) < 0 || (rc = ck__str(&c, "cwd", NULL, "")) < 0 || (rc = ck__str(&c, "url", NULL, "")) < 0 ||
        (rc = ck__strmap(&c, "headers", 0)) < 0 || (rc = ck__str(&c, "description", "", "")) < 0 ||
        (rc = ck__num(&c, "timeout", 0, 1, 86400, 0, 1, 60, "in seconds, > 0")) < 0 ||
        (rc = ck__roots(&c)) < 0 || (rc = ck__str(&c, "elicitation", "decline", "")) < 0)
        goto out;
    t = jget_str(obj, "elicitation");
    if (strcmp(t, "decline") != 0 && strcmp(t, "defaults") != 0) {
        rc = ck__fail(&c, "elicitation", "must be decline or defaults (got '%s')", t);
        goto out;
    }
    t = jget_str(obj, "transport");
    /* the ceiling a call that keeps reporting progress may reach (docs/config.md);
     * only an explicit one must be at least the timeout: the default never
     * shortens a call, the broker takes the larger of the two */
    max_given = json_object_object_get_ex(obj, "max_timeout", &v) && v;
    if ((rc = ck__num(&c, "max_timeout", 0, 1, 86400, 0, 1, 3600, "in seconds, > 0 and at most 86400")) < 0)
        goto out;
    if (max_given && json_object_get_double(jget(obj, "max_timeout")) < json_object_get_double(jget(obj, "timeout"))) {
        char why[64];
        snprintf(why, sizeof why, "%g s", json_object_get_double(jget(obj, "timeout")));
        rc = ck__fail(&c, "max_timeout", "must be at least timeout (%s)", why);
        goto out;
    }
    if (strcmp(t, "stdio") == 0) {
        const char *cmd = jget_str(obj, "command");
        if (!cmd || !*cmd) {
            rc = ck__fail(&c, "command", "required for the stdio transport (the program to run)%s",
                          NULL);
            goto out;
        }
        if (jget(obj, "auth")) {
            rc = ck__fail(&c, "auth", "OAuth is for the http and sse transports (stdio servers "
                                      "take credentials through env)%s", NULL);
            goto out;
        }
    } else {
        if (!jget_str(obj, "url") || !*jget_str(obj, "url")) {
            rc = ck__fail(&c, "url", "required for the %s transport (an http:// or https:// URL)", t);
            goto out;
        }
        if ((rc = ck__http_url(&c, "url")) < 0 || (rc = ck__auth(&c)) < 0)
            goto out;
    }
    ck__reorder(obj, fields);
out:
    return rc;
}

/* The names in list `f` must be unique and keys of doc[kind]. */
static int ck__refs(ck_t *c, const char *f, json_object *doc, const char *kind, const char *what)
{
    json_object *list = NULL, *map = NULL;
    size_t i, j, n;
    char path[160], msg[512];

    json_object_object_get_ex(c->obj, f, &list);
    if (!doc || !list || !json_object_object_get_ex(doc, kind, &map))
        map = NULL;
    n = list ? json_object_array_length(list) : 0;
    for (i = 0; i < n; i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(list, i));
        snprintf(path, sizeof path, "%s[%zu]", f, i);
        for (j = 0; j < i; j++)
            if (strcmp(s, json_object_get_string(json_object_array_get_idx(list, j))) == 0)
                return ck__fail(c, path, "'%s' is listed twice", s);
        if (doc && (!map || !json_object_object_get_ex(map, s, NULL))) {
            snprintf(msg, sizeof msg, "unknown %s '%s' (define it under %s first)", what, s, kind);
            return ck__fail(c, path, "%s", msg);
        }
    }
    return 0;
}

/* One list of tools.allow / tools.deny: null (allow only: no list) or
 * strings, each a glob of 1 to CAP_TOOL_GLOB bytes. `f` is "allow"/"deny". */
static int ck__globs(ck_t *c, json_object *sel, const char *f, int null_ok)
{
    json_object *v = NULL;
    char path[64];
    size_t n;

    if (!json_object_object_get_ex(sel, f, &v) || !v) {
        json_object_object_add(sel, f, null_ok ? NULL : json_object_new_array());
        return 0;
    }
    snprintf(path, sizeof path, "tools.%s", f);
    if (!json_object_is_type(v, json_type_array))
        return ck__fail(c, path, "must be a list of globs over <server>__<tool> names%s", NULL);
    n = json_object_array_length(v);
    for (size_t i = 0; i < n; i++) {
        json_object *g = json_object_array_get_idx(v, i);
        size_t len;
        snprintf(path, sizeof path, "tools.%s[%zu]", f, i);
        if (!json_object_is_type(g, json_type_string))
            return ck__fail(c, path, "must be a string (a glob over <server>__<tool> names, "
                                     "e.g. 'demo__*')%s", NULL);
        len = (size_t)json_object_get_string_len(g);
        if (len == 0 || len > CAP_TOOL_GLOB) {
            char msg[64];
            snprintf(msg, sizeof msg, "must be 1 to %d characters", CAP_TOOL_GLOB);
            return ck__fail(c, path, "%s", msg);
        }
    }
    return 0;
}

/* tools: {allow: [globs] | null, deny: [globs]}; absent/null gives
 * {allow: null, deny: []} (everything offered). See shared/toolsel.h. */
static int ck__tools(ck_t *c)
{
    static const char *const fields[] = {"allow", "deny", NULL};
    json_object *sel = NULL;
    int rc;

    if (!json_object_object_get_ex(c->obj, "tools", &sel) || !sel) {
        if (!(sel = json_object_new_object()))
            return -ENOMEM;
        json_object_object_add(c->obj, "tools", sel);
    }
    if (!json_object_is_type(sel, json_type_object))
        return ck__fail(c, "tools", "must be a mapping {allow: [globs], deny: [globs]}%s", NULL);
    json_object_object_foreach(sel, key, val) {
        const char *const *a;
        (void)val;
        for (a = fields; *a && strcmp(*a, key) != 0; a++)
            ;
        if (!*a) {
            char path[128];
            snprintf(path, sizeof path, "tools.%.64s", key);
            return ck__fail(c, path, "unknown field (allowed: allow, deny)%s", NULL);
        }
    }
    if ((rc = ck__globs(c, sel, "allow", 1)) < 0 || (rc = ck__globs(c, sel, "deny", 0)) < 0)
        return rc;
    ck__reorder(sel, fields);
    return 0;
}

int cfg_check_assistant(const char *name, json_object *obj, json_object *doc, char *err,
                        size_t errlen)
{
    static const char *const fields[] = {"name", "backend", "model", "description",
                                         "system_prompt", "mcp_servers", "tools", "max_tools",
                                         "max_tool_iterations", "temperature", "top_p",
                                         "max_tokens", "extra_body", "tool_events",
                                         "stream_keepalive_ms", "tool_images", "allow_sampling",
                                         NULL};
    ck_t c;
    json_object *v = NULL, *map = NULL;
    const char *own = NULL, *backend = NULL;
    char msg[512];
    int rc;

    if ((rc = ck__init(&c, obj, "assistant", err, errlen)) < 0 ||
        (rc = ck__unknown(&c, fields, "name, backend, model, description, system_prompt, "
                                      "mcp_servers, tools, max_tools, max_tool_iterations, "
                                      "temperature, top_p, max_tokens, extra_body, tool_events, "
                                      "stream_keepalive_ms, tool_images, allow_sampling")) < 0)
        goto out;
    if (name && (!json_object_object_get_ex(obj, "name", &v) || !v))
        json_object_object_add(obj, "name", json_object_new_string(name));
    if ((rc = ck__required_str(&c, "name", " (the model id clients use)", &own)) < 0 ||
        (rc = ck__name(own, "assistant", err, errlen)) < 0)
        goto out;
    if (name && strcmp(name, own) != 0) {
        snprintf(msg, sizeof msg, "'%s' does not match the assistant's name '%s'", own, name);
        rc = ck__fail(&c, "name", "%s", msg);
        goto out;
    }
    if ((rc = ck__required_str(&c, "backend", " (the name of a backend)", &backend)) < 0)
        goto out;
    if (doc && (!json_object_object_get_ex(doc, "backends", &map) ||
                !json_object_object_get_ex(map, backend, NULL))) {
        rc = ck__fail(&c, "backend", "unknown backend '%s' (define it under backends first)",
                      backend);
        goto out;
    }
    if ((rc = ck__required_str(&c, "model", " (the upstream model id)", NULL)) < 0 ||
        (rc = ck__str(&c, "description", "", "")) < 0 ||
        (rc = ck__str(&c, "system_prompt", "", "")) < 0 ||
        (rc = ck__strlist(&c, "mcp_servers")) < 0 ||
        (rc = ck__refs(&c, "mcp_servers", doc, "mcp_servers", "MCP server")) < 0 ||
        (rc = ck__tools(&c)) < 0 ||
        (rc = ck__num(&c, "max_tools", 1, 0, CAP_TOOLS_SETTING, 1, 0, 0,
                      "from 1 to " CFG__STR(CAP_TOOLS_SETTING) " (null: AIPROXY_MAX_TOOLS, "
                      "default 128)")) < 0 ||
        (rc = ck__num(&c, "max_tool_iterations", 0, 0, 100, 1, 1, 8, "from 0 to 100")) < 0 ||
        (rc = ck__num(&c, "temperature", 0, 0, 2, 0, 0, 0, "from 0 to 2")) < 0 ||
        (rc = ck__num(&c, "top_p", 0, 0, 1, 0, 0, 0, "from 0 to 1")) < 0 ||
        (rc = ck__num(&c, "max_tokens", 0, 1, 10000000, 1, 0, 0, "greater than 0")) < 0 ||
        (rc = ck__object(&c, "extra_body")) < 0 ||
        (rc = ck__bool(&c, "tool_events", 0)) < 0 ||
        (rc = ck__bool(&c, "allow_sampling", 1)) < 0 ||
        /* null: the responders' AIPROXY_STREAM_KEEPALIVE_MS; 0: none */
        (rc = ck__num(&c, "stream_keepalive_ms", 0, 0, 600000, 1, 0, 0,
                      "from 0 (off) to 600000 ms")) < 0 ||
        /* null: the backend's tool_images */
        (rc = ck__optbool(&c, "tool_images")) < 0)
        goto out;
    ck__reorder(obj, fields);
out:
    return rc;
}

/* {org}/{api}/{version}: three non-empty segments without spaces. */
static int ck__probe_api_ok(const char *s)
{
    int parts = 1;
    size_t seg = 0;

    for (; *s; s++) {
        if (*s == '/') {
            if (!seg)
                return 0;
            parts++;
            seg = 0;
        } else if (*s == ' ' || *s == '\t') {
            return 0;
        } else {
            seg++;
        }
    }
    return parts == 3 && seg > 0;
}

/* Issue 18 (docs/keys.md "Apiman callers"): apiman.plan is a plan name;
 * plan_header and client_header are header names, and only mean something
 * in trusted_header mode (in gateway_probe mode the client would set them). */
static int ck__apiman_plan(ck_t *c, json_object *a, const char *mode)
{
    int rc;
    const char *s;
    if ((rc = ck__str(c, "plan", NULL, " (a plan name)")) < 0 ||
        (rc = ck__str(c, "plan_header", NULL, " (a header name)")) < 0 ||
        (rc = ck__str(c, "client_header", NULL, " (a header name)")) < 0)
        return rc;
    s = jget_str(a, "plan");
    if (s && *s && !cfg_name_valid(s))
        return ck__fail(c, "plan", "must be a plan name ([A-Za-z0-9][A-Za-z0-9._-]{0,63})%s",
                        NULL);
    for (int i = 0; i < 2; i++) {
        const char *f = i ? "client_header" : "plan_header";
        s = jget_str(a, f);
        if (!s || !*s)
            continue;
        if (strcmp(mode, "trusted_header") != 0)
            return ck__fail(c, f, "only for mode trusted_header (in gateway_probe mode the "
                                  "client would choose it)%s", NULL);
        if (strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
            strlen(s))
            return ck__fail(c, f, "must be a header name (letters, digits, '-', '_')%s", NULL);
    }
    return 0;
}

static int ck__apiman(json_object *settings, char *err, size_t errlen)
{
    static const char *const fields[] = {"mode", "enabled", "gateway_url", "probe_api",
                                         "probe_path", "api_key_header", "timeout", "cache_ttl",
                                         "header", "secret", "plan", "plan_header",
                                         "client_header", NULL};
    json_object *a = NULL;
    ck_t c;
    const char *mode = NULL, *s;
    char sub[512];
    int rc;

    if (!json_object_object_get_ex(settings, "apiman", &a) || !a) {
        json_object_object_add(settings, "apiman", NULL);
        return 0;
    }
    rc = ck__init(&c, a, "apiman", sub, sizeof sub);
    if (rc == 0)
        rc = ck__unknown(&c, fields, "mode, enabled, gateway_url, probe_api, probe_path, "
                                     "api_key_header, timeout, cache_ttl, header, secret, "
                                     "plan, plan_header, client_header");
    if (rc == 0)
        rc = ck__required_str(&c, "mode", " (gateway_probe or trusted_header)", &mode);
    if (rc == 0 && strcmp(mode, "gateway_probe") && strcmp(mode, "trusted_header"))
        rc = ck__fail(&c, "mode", "must be gateway_probe or trusted_header (got '%s')", mode);
    if (rc == 0 && ((rc = ck__bool(&c, "enabled", 1)) < 0 ||
                    (rc = ck__str(&c, "gateway_url", NULL, "")) < 0 ||
                    (rc = ck__str(&c, "probe_api", NULL, " ({org}/{api}/{version})")) < 0 ||
                    (rc = ck__str(&c, "probe_path", "", "")) < 0 ||
                    (rc = ck__str(&c, "api_key_header", "X-API-Key", "")) < 0 ||
                    (rc = ck__num(&c, "timeout", 0, 1, 3600, 0, 1, 5, "in seconds, > 0")) < 0 ||
                    (rc = ck__num(&c, "cache_ttl", 0, 0, 86400 * 30, 0, 1, 60,
                                  "in seconds, >= 0")) < 0 ||
                    (rc = ck__str(&c, "header", NULL, "")) < 0 ||
                    (rc = ck__str(&c, "secret", NULL, "")) < 0 ||
                    (rc = ck__apiman_plan(&c, a, mode)) < 0))
        goto out;
    if (rc == 0 && json_object_get_boolean(json_object_object_get(a, "enabled"))) {
        if (strcmp(mode, "gateway_probe") == 0) {
            s = jget_str(a, "gateway_url");
            if (!s || !*s)
                rc = ck__fail(&c, "gateway_url", "required for mode gateway_probe (http(s) URL)%s",
                              NULL);
            else if ((rc = ck__http_url(&c, "gateway_url")) < 0)
                goto out;
            s = jget_str(a, "probe_api");
            if (rc == 0 && (!s || !ck__probe_api_ok(s)))
                rc = ck__fail(&c, "probe_api", "required for mode gateway_probe, of the form "
                                               "{org}/{api}/{version}%s", NULL);
        } else {
            s = jget_str(a, "header");
            if (!s || !*s)
                rc = ck__fail(&c, "header", "required for mode trusted_header (the header your "
                                            "gateway sets)%s", NULL);
            s = jget_str(a, "secret");
            if (rc == 0 && (!s || !*s))
                rc = ck__fail(&c, "secret", "required for mode trusted_header (the shared secret "
                                            "the gateway sends)%s", NULL);
        }
    }
    if (rc == 0)
        ck__reorder(a, fields);
out:
    if (rc < 0)
        snprintf(err, errlen, "apiman.%s", sub);
    return rc;
}

int cfg_key_is_hash(const char *s)
{
    size_t i, pl = sizeof(CFG_KEY_HASH_PREFIX) - 1;

    if (!s || strncmp(s, CFG_KEY_HASH_PREFIX, pl) != 0 || strlen(s) != pl + SHA256_HEX_LEN)
        return 0;
    for (i = pl; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

void cfg_key_hash(const char *key, size_t len, char out[CFG_KEY_HASH_LEN + 1])
{
    size_t pl = sizeof(CFG_KEY_HASH_PREFIX) - 1;

    memcpy(out, CFG_KEY_HASH_PREFIX, pl);
    sha256_hex(key, len, out + pl);
}

/* The stored form of one key: itself when already "sha256:<hex>", else its
 * hash. A new string, NULL on ENOMEM. */
static json_object *ck__hashed_key(const char *key, size_t len)
{
    char h[CFG_KEY_HASH_LEN + 1];

    if (cfg_key_is_hash(key))
        return json_object_new_string(key);
    cfg_key_hash(key, len, h);
    return json_object_new_string(h);
}

/* _src.proxy_api_keys keeps the list as written so an export writes ${VAR}
 * back; its literal entries are keys too, so they become hashes as well
 * (a literal with "$$" is expanded first: the hash is of the key itself). */
static int ck__hash_key_refs(json_object *settings)
{
    json_object *src = NULL, *refs = NULL;
    size_t i, n;
    char err[128];

    if (!json_object_object_get_ex(settings, "_src", &src) ||
        !json_object_object_get_ex(src, "proxy_api_keys", &refs) ||
        !json_object_is_type(refs, json_type_array))
        return 0;
    n = json_object_array_length(refs);
    for (i = 0; i < n; i++) {
        const char *t = json_object_get_string(json_object_array_get_idx(refs, i));
        char *lit = NULL;
        json_object *h;
        if (!t || !*t || cfg_has_ref(t) || cfg_key_is_hash(t))
            continue;
        if (cfg_expand_env(t, &lit, NULL, err, sizeof err) < 0)
            return -ENOMEM; /* no reference here, so only ENOMEM can fail */
        h = ck__hashed_key(lit, strlen(lit));
        free(lit);
        if (!h)
            return -ENOMEM;
        json_object_array_put_idx(refs, i, h);
    }
    return 0;
}

/* limits: {fail_open_rate: true, fail_open_budget: false} (docs/keys.md,
 * "Limits"): what the limiter does when Redis cannot count. */
static int ck__limits(json_object *settings, char *err, size_t errlen)
{
    static const char *const fields[] = {"fail_open_rate", "fail_open_budget", NULL};
    json_object *l = NULL;
    ck_t c;
    char sub[512];
    int rc;

    if (!json_object_object_get_ex(settings, "limits", &l) || !l)
        return 0;
    if ((rc = ck__init(&c, l, "limits", sub, sizeof sub)) == 0 &&
        (rc = ck__unknown(&c, fields, "fail_open_rate, fail_open_budget")) == 0 &&
        (rc = ck__bool(&c, "fail_open_rate", 1)) == 0 &&
        (rc = ck__bool(&c, "fail_open_budget", 0)) == 0)
        ck__reorder(l, fields);
    if (rc < 0)
        snprintf(err, errlen, "%s%s", strncmp(sub, "limits", 6) ? "limits." : "", sub);
    return rc;
}

/* usage: {retention_hours, retention_days, flush_ms} (issue 18, docs/usage.md):
 * how long the hourly and the daily usage buckets are kept, and how often a
 * worker writes its pending sums (0: each request writes its own). Defaults
 * filled in, flush_ms's only when given. */
static int ck__usage(json_object *settings, char *err, size_t errlen)
{
    static const char *const fields[] = {"retention_hours", "retention_days", "flush_ms",
                                         NULL};
    json_object *u = NULL, *fm = NULL;
    ck_t c;
    char sub[512];
    int rc;

    if (!json_object_object_get_ex(settings, "usage", &u) || !u)
        return 0;   /* absent: the defaults, and the registry stays as written */
    if ((rc = ck__init(&c, u, "usage", sub, sizeof sub)) == 0 &&
        (rc = ck__unknown(&c, fields, "retention_hours, retention_days, flush_ms")) == 0 &&
        (rc = ck__num(&c, "retention_hours", 1, 0, 24 * 366, 1, 1, 48,
                      "in hours, 1 to 8784")) == 0 &&
        (rc = ck__num(&c, "retention_days", 1, 0, 3660, 1, 1, 90, "in days, 1 to 3660")) == 0 &&
        (!json_object_object_get_ex(u, "flush_ms", &fm) ||
         (rc = ck__num(&c, "flush_ms", 0, 0, 600000, 1, 0, 0, "in ms, 0 to 600000")) == 0))
        ck__reorder(u, fields);
    if (rc < 0)
        snprintf(err, errlen, "usage.%s", sub);
    return rc;
}

int cfg_check_settings(json_object *settings, char *err, size_t errlen)
{
    static const char *const fields[] = {"proxy_api_keys", "apiman",
                                         "limits", "usage", NULL};
    ck_t c;
    json_object *keys = NULL, *kept = NULL;
    size_t i, n;
    int rc;

    if ((rc = ck__init(&c, settings, "settings", err, errlen)) < 0 ||
        (rc = ck__unknown(&c, fields, "proxy_api_keys, apiman, limits, usage")) < 0 ||
        (rc = ck__strlist(&c, "proxy_api_keys")) < 0)
        goto out;
    /* Entries empty after expansion are dropped: `- ${EXTRA_KEY:-}` is optional.
     * The rest are kept as "sha256:<hex>" only: the registry never holds a key
     * a reader of Redis could replay (docs/auth.md). */
    json_object_object_get_ex(settings, "proxy_api_keys", &keys);
    kept = json_object_new_array();
    if (!kept) {
        rc = -ENOMEM;
        goto out;
    }
    n = json_object_array_length(keys);
    for (i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(keys, i), *h;
        if (!json_object_get_string_len(e))
            continue;
        h = ck__hashed_key(json_object_get_string(e), (size_t)json_object_get_string_len(e));
        if (!h) {
            rc = -ENOMEM;
            goto out;
        }
        json_object_array_add(kept, h);
    }
    json_object_object_add(settings, "proxy_api_keys", kept);
    kept = NULL;
    if ((rc = ck__hash_key_refs(settings)) < 0 || (rc = ck__apiman(settings, err, errlen)) < 0 ||
        (rc = ck__usage(settings, err, errlen)) < 0)
        goto out;
    if ((rc = ck__limits(settings, err, errlen)) < 0)
        goto out;
    ck__reorder(settings, fields);
out:
    json_object_put(kept);
    return rc;
}

int cfg_check_broker(json_object *broker, char *err, size_t errlen)
{
    static const char *const fields[] = {"autostart", "command", "args", "log", "idle_exit_s",
                                         "start_timeout", NULL};
    ck_t c;
    int rc;

    if ((rc = ck__init(&c, broker, "broker", err, errlen)) < 0 ||
        (rc = ck__unknown(&c, fields, "autostart, command, args, log, idle_exit_s, "
                                      "start_timeout")) < 0 ||
        (rc = ck__bool(&c, "autostart", 0)) < 0 ||
        (rc = ck__str(&c, "command", "", "")) < 0 ||
        (rc = ck__strlist(&c, "args")) < 0 ||
        (rc = ck__str(&c, "log", "", "")) < 0 ||
        (rc = ck__num(&c, "idle_exit_s", 0, 0, CFG_BROKER_IDLE_MAX_S, 1, 1, 0,
                      "0 (never) .. 604800 seconds")) < 0 ||
        (rc = ck__num(&c, "start_timeout", 1, 0, 60, 1, 1, CFG_BROKER_START_TIMEOUT_S,
                      "1 .. 60 seconds")) < 0)
        goto out;
    ck__reorder(broker, fields);
out:
    return rc;
}
