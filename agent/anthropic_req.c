/* anthropic_req — the canonical OpenAI chat request as an Anthropic Messages
 * request: URL, headers, tools, sampling fields; the messages themselves are
 * anthropic_msgs.c's. No I/O. See anthropic.h and docs/anthropic.md for the rules. */
#include "agent/anthropic.h"
#include "agent/anthvocab.h"
#include "shared/caps.h"
#include "shared/jget.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Fields of the OpenAI request the Messages API would refuse and that have no
 * Anthropic equivalent: dropped rather than sent. */
static const char *const req__dropped[] = {
    "n", "presence_penalty", "frequency_penalty", "seed", "response_format", "logit_bias",
    "stream_options", "logprobs", "top_logprobs", "store", "modalities", "audio",
    "prediction", "reasoning_effort", "service_tier", "functions", "function_call",
    "web_search_options", "verbosity", NULL
};

/* Fields translated one by one below; everything else (extra_body fields the
 * loop merged in, e.g. top_k, thinking, metadata) goes through untouched. */
static const char *const req__handled[] = {
    "model", "messages", "tools", "tool_choice", "max_tokens", "max_completion_tokens",
    "stop", "temperature", "top_p", "stream", "user", "parallel_tool_calls", NULL
};

static int req__in(const char *const *list, const char *key)
{
    int found = 0;
    for (size_t i = 0; !found && list[i]; i++)
        found = strcmp(list[i], key) == 0;
    return found;
}

/* The API refuses tool_use/tool_result blocks in a request that defines no
 * tools, and the loop withdraws the tools for its last turn (round cap,
 * repeated call) while the history still holds its calls. So the tools named
 * in the history are declared again, schema-less, with tool_choice none: the
 * history stays intact and the model must answer in text. */
static void req__withdrawn_tools(json_object *out)
{
    json_object *msgs = NULL, *tools = NULL, *choice;
    json_object_object_get_ex(out, "messages", &msgs);
    for (size_t i = 0; msgs && i < json_object_array_length(msgs); i++) {
        json_object *c = NULL;
        json_object_object_get_ex(json_object_array_get_idx(msgs, i), "content", &c);
        for (size_t j = 0; j < json_object_array_length(c); j++) {
            json_object *b = json_object_array_get_idx(c, j), *t = NULL, *nm = NULL, *o;
            int seen = 0;
            if (!json_object_object_get_ex(b, "type", &t) ||
                strcmp(json_object_get_string(t), ANTHV_BLOCK_TOOL_USE) != 0 ||
                !json_object_object_get_ex(b, "name", &nm))
                continue;
            if (!tools)
                tools = json_object_new_array();
            for (size_t k = 0; !seen && k < json_object_array_length(tools); k++)
                seen = strcmp(json_object_get_string(json_object_object_get(
                                  json_object_array_get_idx(tools, k), "name")),
                              json_object_get_string(nm)) == 0;
            if (seen)
                continue;
            o = json_object_new_object();
            json_object_object_add(o, "name", json_object_get(nm));
            json_object_object_add(o, "input_schema",
                                   json_tokener_parse("{\"type\":\"object\",\"properties\":{}}"));
            json_object_array_add(tools, o);
        }
    }
    if (tools) {
        json_object_object_add(out, "tools", tools);
        choice = json_object_new_object();
        json_object_object_add(choice, "type", json_object_new_string("none"));
        json_object_object_add(out, "tool_choice", choice);
    }
}

/* tools -> {name, description, input_schema}; tool_choice translated; with no
 * tools, tool_choice is dropped (the API refuses one without tools). */
/* The Messages tool_choice for the OpenAI tool_choice and parallel_tool_calls
 * (a new object). */
static json_object *req__choice(json_object *req)
{
    json_object *tc = NULL, *nm = NULL, *choice = json_object_new_object();
    const char *type = "auto";

    json_object_object_get_ex(req, "tool_choice", &tc);
    if (tc && json_object_is_type(tc, json_type_string)) {
        const char *s = json_object_get_string(tc);
        type = strcmp(s, "none") == 0 ? "none" : strcmp(s, "required") == 0 ? "any" : "auto";
    } else if ((nm = jget_typed(jget(tc, "function"), "name", json_type_string))) {
        type = "tool";
    }
    json_object_object_add(choice, "type", json_object_new_string(type));
    if (strcmp(type, "tool") == 0)
        json_object_object_add(choice, "name", json_object_get(nm));
    if (jget_bool(req, "parallel_tool_calls", 1) == 0 && strcmp(type, "none") != 0)
        json_object_object_add(choice, "disable_parallel_tool_use", json_object_new_boolean(1));
    return choice;
}

static int req__tools(json_object *req, json_object *out, char *err, size_t errlen)
{
    json_object *tools = NULL, *arr = NULL;
    int rc = 0;

    if (!json_object_object_get_ex(req, "tools", &tools) || json_object_is_type(tools, json_type_null) ||
        (json_object_is_type(tools, json_type_array) && json_object_array_length(tools) == 0)) {
        req__withdrawn_tools(out);
        goto out;
    }
    if (!json_object_is_type(tools, json_type_array)) {
        rc = anth__fail(err, errlen, "tools: must be an array");
        goto out;
    }
    arr = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(tools); i++) {
        json_object *t = json_object_array_get_idx(tools, i), *fn = NULL, *nm = NULL, *d = NULL,
                    *p = NULL, *o;
        if (!json_object_object_get_ex(t, "function", &fn) ||
            !json_object_object_get_ex(fn, "name", &nm) || !json_object_is_type(nm, json_type_string)) {
            rc = anth__fail(err, errlen, "tools[%zu]: needs function.name", i);
            goto out;
        }
        o = json_object_new_object();
        json_object_object_add(o, "name", json_object_get(nm));
        if ((d = jget_typed(fn, "description", json_type_string)))
            json_object_object_add(o, "description", json_object_get(d));
        if ((p = jget_obj(fn, "parameters")))
            json_object_object_add(o, "input_schema", json_object_get(p));
        else
            json_object_object_add(o, "input_schema",
                                   json_tokener_parse("{\"type\":\"object\",\"properties\":{}}"));
        json_object_array_add(arr, o);
    }
    json_object_object_add(out, "tools", arr);
    arr = NULL;
    json_object_object_add(out, "tool_choice", req__choice(req));
out:
    json_object_put(arr);
    return rc;
}

static int req__sampling(json_object *req, json_object *out, char *err, size_t errlen)
{
    json_object *v = NULL, *mt = NULL, *seq = NULL;
    int64_t max = ANTH_DEFAULT_MAX_TOKENS;
    int rc = 0;

    if ((json_object_object_get_ex(req, "max_completion_tokens", &mt) &&
         !json_object_is_type(mt, json_type_null)) ||
        (json_object_object_get_ex(req, "max_tokens", &mt) && !json_object_is_type(mt, json_type_null))) {
        if (!json_object_is_type(mt, json_type_int) || json_object_get_int64(mt) < 1) {
            rc = anth__fail(err, errlen, "max_tokens: must be a positive integer");
            goto out;
        }
        max = json_object_get_int64(mt);
    }
    json_object_object_add(out, "max_tokens", json_object_new_int64(max));
    if (json_object_object_get_ex(req, "stop", &v) && !json_object_is_type(v, json_type_null)) {
        seq = json_object_new_array();
        if (json_object_is_type(v, json_type_string)) {
            json_object_array_add(seq, json_object_get(v));
        } else if (json_object_is_type(v, json_type_array)) {
            for (size_t i = 0; i < json_object_array_length(v); i++) {
                json_object *s = json_object_array_get_idx(v, i);
                if (!json_object_is_type(s, json_type_string)) {
                    rc = anth__fail(err, errlen, "stop[%zu]: must be a string", i);
                    goto out;
                }
                json_object_array_add(seq, json_object_get(s));
            }
        } else {
            rc = anth__fail(err, errlen, "stop: must be a string or an array of strings");
            goto out;
        }
        json_object_object_add(out, "stop_sequences", seq);
        seq = NULL;
    }
    if (json_object_object_get_ex(req, "temperature", &v) && !json_object_is_type(v, json_type_null))
        json_object_object_add(out, "temperature", json_object_get(v));
    if (json_object_object_get_ex(req, "top_p", &v) && !json_object_is_type(v, json_type_null))
        json_object_object_add(out, "top_p", json_object_get(v));
out:
    json_object_put(seq);
    return rc;
}

/* extra fields through; user -> metadata.user_id. */
static void req__extra(json_object *req, json_object *out)
{
    json_object *u = NULL, *md = NULL;
    json_object_object_foreach(req, key, val) {
        if (req__in(req__handled, key) || req__in(req__dropped, key) ||
            json_object_object_get_ex(out, key, NULL))
            continue;
        json_object_object_add(out, key, json_object_get(val));
    }
    if ((u = jget_typed(req, "user", json_type_string)) && json_object_get_string_len(u)) {
        if (!json_object_object_get_ex(out, "metadata", &md) || !json_object_is_type(md, json_type_object)) {
            md = json_object_new_object();
            json_object_object_add(out, "metadata", md);
        } else {
            /* a copy: the object is shared with the caller's request */
            json_object *copy = NULL;
            json_object_deep_copy(md, &copy, NULL);
            md = copy;
            json_object_object_add(out, "metadata", md);
        }
        if (md && !json_object_object_get_ex(md, "user_id", NULL))
            json_object_object_add(md, "user_id", json_object_get(u));
    }
}

static int req__header_ok(const char *s)
{
    return strpbrk(s, "\r\n") == NULL;
}

/* Appends one header line; 0 or -ENOMEM. */
static int req__add(struct curl_slist **h, const char *name, const char *value)
{
    buf_t line;
    struct curl_slist *l = NULL;
    buf_init(&line, CAP_UP_HEADER);
    /* "Name:" with no value tells curl to send no such header */
    if (buf_printf(&line, *value ? "%s: %s" : "%s:%s", name, value) == 0)
        l = curl_slist_append(*h, buf_str(&line));
    buf_free(&line);
    if (l)
        *h = l;
    return l ? 0 : -ENOMEM;
}

/* Headers go to *headers only when all of them could be made, so a failed
 * build leaves the caller nothing to free. */
static int req__headers(json_object *backend, struct curl_slist **headers, char *err, size_t errlen)
{
    json_object *dh = NULL, *key = NULL;
    struct curl_slist *h = NULL;
    int have_version = 0, have_ctype = 0, rc = -ENOMEM;

    if (json_object_object_get_ex(backend, "default_headers", &dh) && json_object_is_type(dh, json_type_object)) {
        json_object_object_foreach(dh, name, val) {
            const char *v = json_object_get_string(val);
            if (!*name || !req__header_ok(name) || !req__header_ok(v) || strchr(name, ':')) {
                rc = anth__fail(err, errlen, "backend default_headers.%s: not a valid header "
                               "(no ':' in the name, no line breaks)", name);
                goto out;
            }
            if (strcasecmp(name, "x-api-key") == 0)
                continue; /* the key comes from api_key only */
            have_version |= strcasecmp(name, "anthropic-version") == 0;
            have_ctype |= strcasecmp(name, "content-type") == 0;
            if (req__add(&h, name, v))
                goto out;
        }
    }
    if (json_object_object_get_ex(backend, "api_key", &key) && json_object_is_type(key, json_type_string) &&
        json_object_get_string_len(key)) {
        if (!req__header_ok(json_object_get_string(key))) {
            rc = anth__fail(err, errlen, "backend api_key: contains a line break");
            goto out;
        }
        if (req__add(&h, "x-api-key", json_object_get_string(key)))
            goto out;
    }
    if ((!have_version && req__add(&h, "anthropic-version", ANTH_VERSION)) ||
        (!have_ctype && req__add(&h, "content-type", "application/json")) ||
        /* no 100-continue round trip on large bodies, as in the OpenAI backend */
        req__add(&h, "Expect", ""))
        goto out;
    if (*headers) {
        struct curl_slist *tail = *headers;
        while (tail->next)
            tail = tail->next;
        tail->next = h;
    } else {
        *headers = h;
    }
    h = NULL;
    rc = 0;
out:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory building the upstream headers");
    curl_slist_free_all(h);
    return rc;
}

static int req__url(json_object *backend, buf_t *url, char *err, size_t errlen)
{
    json_object *b = NULL;
    const char *base = ANTH_DEFAULT_BASE_URL;
    size_t n;
    int rc = 0;

    if ((b = jget_typed(backend, "base_url", json_type_string)) && json_object_get_string_len(b))
        base = json_object_get_string(b);
    n = strlen(base);
    while (n && base[n - 1] == '/')
        n--;
    if (buf_append(url, base, n) || buf_puts(url, "/messages"))
        rc = anth__fail(err, errlen, "backend base_url: too long");
    return rc;
}

int anth_build(json_object *backend, json_object *req, int stream, buf_t *url,
               struct curl_slist **headers, buf_t *body, char *err, size_t errlen)
{
    json_object *out = json_object_new_object(), *model = NULL;
    const char *text;
    int rc = -EINVAL;

    if (!json_object_object_get_ex(req, "model", &model) || !json_object_is_type(model, json_type_string) ||
        !json_object_get_string_len(model)) {
        rc = anth__fail(err, errlen, "model: missing (set the assistant's model)");
        goto out;
    }
    json_object_object_add(out, "model", json_object_get(model));
    if ((rc = anth__messages(req, out, err, errlen)) || (rc = req__sampling(req, out, err, errlen)) ||
        (rc = req__tools(req, out, err, errlen)))
        goto out;
    req__extra(req, out);
    if (stream)
        json_object_object_add(out, "stream", json_object_new_boolean(1));
    if ((rc = req__url(backend, url, err, errlen)) || (rc = req__headers(backend, headers, err, errlen)))
        goto out;
    text = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (buf_puts(body, text)) {
        rc = anth__fail(err, errlen, "request body: larger than the %zu-byte cap", body->max);
        goto out;
    }
    rc = 0;
out:
    json_object_put(out);
    return rc;
}
