/* anthropic_req — the canonical OpenAI chat request as an Anthropic Messages
 * request. No I/O. See anthropic.h and docs/anthropic.md for the rules. */
#include "agent/anthropic.h"

#include <errno.h>
#include <stdarg.h>
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

__attribute__((format(printf, 3, 4)))
static int req__fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static json_object *req__text_block(const char *text, size_t len)
{
    json_object *b = json_object_new_object();
    json_object_object_add(b, "type", json_object_new_string("text"));
    json_object_object_add(b, "text", json_object_new_string_len(text, (int)len));
    return b;
}

/* An image_url part as an image block: data: URLs become base64 sources with
 * their media type, anything else a url source. */
static int req__image(json_object *part, json_object *blocks, const char *where, char *err,
                      size_t errlen)
{
    json_object *iu = NULL, *u = NULL;
    const char *url = NULL;
    json_object *src = NULL, *b = NULL;
    int rc = -EINVAL;

    if (json_object_object_get_ex(part, "image_url", &iu)) {
        if (json_object_is_type(iu, json_type_string))
            url = json_object_get_string(iu);
        else if (json_object_object_get_ex(iu, "url", &u) && json_object_is_type(u, json_type_string))
            url = json_object_get_string(u);
    }
    if (!url || !*url) {
        rc = req__fail(err, errlen, "%s.image_url.url: missing", where);
        goto out;
    }
    src = json_object_new_object();
    if (strncasecmp(url, "data:", 5) == 0) {
        const char *comma = strchr(url, ',');
        const char *semi = memchr(url + 5, ';', comma ? (size_t)(comma - url - 5) : 0);
        if (!comma || !semi || strncmp(semi, ";base64,", 8) != 0 || semi == url + 5) {
            rc = req__fail(err, errlen,
                           "%s.image_url.url: a data: URL must look like "
                           "data:<media type>;base64,<data>", where);
            goto out;
        }
        json_object_object_add(src, "type", json_object_new_string("base64"));
        json_object_object_add(src, "media_type",
                               json_object_new_string_len(url + 5, (int)(semi - url - 5)));
        json_object_object_add(src, "data", json_object_new_string(comma + 1));
    } else {
        json_object_object_add(src, "type", json_object_new_string("url"));
        json_object_object_add(src, "url", json_object_new_string(url));
    }
    b = json_object_new_object();
    json_object_object_add(b, "type", json_object_new_string("image"));
    json_object_object_add(b, "source", src);
    src = NULL;
    json_object_array_add(blocks, b);
    b = NULL;
    rc = 0;
out:
    json_object_put(src);
    json_object_put(b);
    return rc;
}

/* Appends the blocks for an OpenAI `content` (string, array of parts, or
 * null) to `blocks`. Empty text is skipped: the API refuses empty text blocks.
 * `images` says whether image parts are allowed here. */
static int req__content(json_object *content, json_object *blocks, int images,
                        const char *where, char *err, size_t errlen)
{
    int rc = 0;

    if (!content || json_object_is_type(content, json_type_null))
        goto out;
    if (json_object_is_type(content, json_type_string)) {
        size_t n = (size_t)json_object_get_string_len(content);
        if (n)
            json_object_array_add(blocks, req__text_block(json_object_get_string(content), n));
        goto out;
    }
    if (!json_object_is_type(content, json_type_array)) {
        rc = req__fail(err, errlen, "%s: must be a string or an array of parts", where);
        goto out;
    }
    for (size_t i = 0; rc == 0 && i < json_object_array_length(content); i++) {
        json_object *part = json_object_array_get_idx(content, i), *t = NULL, *tx = NULL;
        const char *type = json_object_object_get_ex(part, "type", &t) ? json_object_get_string(t) : "";
        char pw[128];
        snprintf(pw, sizeof pw, "%s[%zu]", where, i);
        if (strcmp(type, "text") == 0 || strcmp(type, "refusal") == 0) {
            const char *key = type[0] == 't' ? "text" : "refusal";
            if (!json_object_object_get_ex(part, key, &tx) || !json_object_is_type(tx, json_type_string))
                rc = req__fail(err, errlen, "%s.%s: must be a string", pw, key);
            else if (json_object_get_string_len(tx))
                json_object_array_add(blocks, req__text_block(json_object_get_string(tx),
                                                              (size_t)json_object_get_string_len(tx)));
        } else if (strcmp(type, "image_url") == 0 && images) {
            rc = req__image(part, blocks, pw, err, errlen);
        } else {
            rc = req__fail(err, errlen, "%s: content part type '%s' is not supported by "
                           "the anthropic backend (use text%s)", pw, type,
                           images ? " or image_url" : "");
        }
    }
out:
    return rc;
}

/* The content array of the turn to append to: the last one when it has the
 * same role (the API wants user and assistant to alternate), else a new one. */
static json_object *req__turn(json_object *msgs, const char *role)
{
    size_t n = json_object_array_length(msgs);
    json_object *m = n ? json_object_array_get_idx(msgs, n - 1) : NULL, *r = NULL, *c = NULL;

    if (m && json_object_object_get_ex(m, "role", &r) && strcmp(json_object_get_string(r), role) == 0 &&
        json_object_object_get_ex(m, "content", &c))
        goto out;
    m = json_object_new_object();
    c = json_object_new_array();
    json_object_object_add(m, "role", json_object_new_string(role));
    json_object_object_add(m, "content", c);
    json_object_array_add(msgs, m);
out:
    return c;
}

/* Moves every block of `from` to the end of `to`. */
static void req__append(json_object *to, json_object *from)
{
    for (size_t i = 0; i < json_object_array_length(from); i++)
        json_object_array_add(to, json_object_get(json_object_array_get_idx(from, i)));
}

/* Assistant tool_calls as tool_use blocks; arguments that are not a JSON
 * object become {} (input must be an object). */
static int req__tool_uses(json_object *calls, json_object *blocks, const char *where, char *err,
                          size_t errlen)
{
    int rc = 0;

    if (!calls || json_object_is_type(calls, json_type_null))
        goto out;
    if (!json_object_is_type(calls, json_type_array)) {
        rc = req__fail(err, errlen, "%s.tool_calls: must be an array", where);
        goto out;
    }
    for (size_t i = 0; i < json_object_array_length(calls); i++) {
        json_object *tc = json_object_array_get_idx(calls, i), *id = NULL, *fn = NULL, *nm = NULL,
                    *args = NULL, *input = NULL, *b;
        json_object_object_get_ex(tc, "id", &id);
        json_object_object_get_ex(tc, "function", &fn);
        if (fn)
            json_object_object_get_ex(fn, "name", &nm);
        if (!id || !nm || !json_object_is_type(id, json_type_string) ||
            !json_object_is_type(nm, json_type_string)) {
            rc = req__fail(err, errlen, "%s.tool_calls[%zu]: needs an id and a function.name", where, i);
            goto out;
        }
        if (json_object_object_get_ex(fn, "arguments", &args) &&
            json_object_is_type(args, json_type_string))
            input = json_tokener_parse(json_object_get_string(args));
        if (input && !json_object_is_type(input, json_type_object)) {
            json_object_put(input);
            input = NULL;
        }
        b = json_object_new_object();
        json_object_object_add(b, "type", json_object_new_string("tool_use"));
        json_object_object_add(b, "id", json_object_get(id));
        json_object_object_add(b, "name", json_object_get(nm));
        json_object_object_add(b, "input", input ? input : json_object_new_object());
        json_object_array_add(blocks, b);
    }
out:
    return rc;
}

static int req__tool_result(json_object *m, json_object *blocks, const char *where, char *err,
                            size_t errlen)
{
    json_object *id = NULL, *content = NULL, *b = NULL, *parts = NULL;
    char cw[128];
    int rc = 0;

    if (!json_object_object_get_ex(m, "tool_call_id", &id) || !json_object_is_type(id, json_type_string)) {
        rc = req__fail(err, errlen, "%s.tool_call_id: missing", where);
        goto out;
    }
    json_object_object_get_ex(m, "content", &content);
    b = json_object_new_object();
    json_object_object_add(b, "type", json_object_new_string("tool_result"));
    json_object_object_add(b, "tool_use_id", json_object_get(id));
    if (content && json_object_is_type(content, json_type_string)) {
        if (json_object_get_string_len(content))
            json_object_object_add(b, "content", json_object_get(content));
    } else if (content && !json_object_is_type(content, json_type_null)) {
        snprintf(cw, sizeof cw, "%s.content", where);
        parts = json_object_new_array();
        if ((rc = req__content(content, parts, 1, cw, err, errlen)))
            goto out;
        if (json_object_array_length(parts)) {
            json_object_object_add(b, "content", parts);
            parts = NULL;
        }
    }
    json_object_array_add(blocks, b);
    b = NULL;
out:
    json_object_put(parts);
    json_object_put(b);
    return rc;
}

/* The system text of a system/developer message, appended to `sys`. */
static int req__system(json_object *m, buf_t *sys, const char *where, char *err, size_t errlen)
{
    json_object *c = NULL, *parts = json_object_new_array();
    int rc;
    json_object_object_get_ex(m, "content", &c);
    rc = req__content(c, parts, 0, where, err, errlen);
    for (size_t i = 0; rc == 0 && i < json_object_array_length(parts); i++) {
        json_object *t = NULL;
        json_object_object_get_ex(json_object_array_get_idx(parts, i), "text", &t);
        if ((sys->len && buf_puts(sys, "\n\n")) ||
            buf_append(sys, json_object_get_string(t), (size_t)json_object_get_string_len(t)))
            rc = req__fail(err, errlen, "system messages: too large");
    }
    json_object_put(parts);
    return rc;
}

static int req__messages(json_object *req, json_object *out, char *err, size_t errlen)
{
    json_object *in = NULL, *msgs = json_object_new_array(), *blocks = NULL;
    buf_t sys;
    int rc = -EINVAL;

    buf_init(&sys, 4u << 20);
    if (!json_object_object_get_ex(req, "messages", &in) || !json_object_is_type(in, json_type_array)) {
        rc = req__fail(err, errlen, "messages: must be an array");
        goto out;
    }
    for (size_t i = 0; i < json_object_array_length(in); i++) {
        json_object *m = json_object_array_get_idx(in, i), *r = NULL, *c = NULL, *tc = NULL;
        const char *role = json_object_object_get_ex(m, "role", &r) ? json_object_get_string(r) : "";
        char where[64];
        snprintf(where, sizeof where, "messages[%zu]", i);
        json_object_object_get_ex(m, "content", &c);
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            char cw[80];
            snprintf(cw, sizeof cw, "%s.content", where);
            rc = req__system(m, &sys, cw, err, errlen);
        } else if (strcmp(role, "user") == 0 || strcmp(role, "assistant") == 0) {
            char cw[80];
            int user = role[0] == 'u';
            snprintf(cw, sizeof cw, "%s.content", where);
            json_object_put(blocks);
            blocks = json_object_new_array();
            rc = req__content(c, blocks, user, cw, err, errlen);
            json_object_object_get_ex(m, "tool_calls", &tc);
            if (rc == 0 && !user)
                rc = req__tool_uses(tc, blocks, where, err, errlen);
            /* A message with nothing to say adds no turn: the API refuses
             * empty content. The API wants the conversation to open with a
             * user turn. */
            if (rc == 0 && json_object_array_length(blocks)) {
                if (!user && json_object_array_length(msgs) == 0)
                    json_object_array_add(req__turn(msgs, "user"), req__text_block(".", 1));
                req__append(req__turn(msgs, role), blocks);
            }
        } else if (strcmp(role, "tool") == 0) {
            rc = req__tool_result(m, req__turn(msgs, "user"), where, err, errlen);
        } else {
            rc = req__fail(err, errlen, "%s.role: '%s' is not supported by the anthropic backend "
                           "(use system, developer, user, assistant or tool)", where, role);
        }
        if (rc)
            goto out;
    }
    if (json_object_array_length(msgs) == 0) {
        rc = req__fail(err, errlen, "messages: needs at least one user or assistant message");
        goto out;
    }
    if (sys.len)
        json_object_object_add(out, "system", json_object_new_string_len(sys.data, (int)sys.len));
    json_object_object_add(out, "messages", msgs);
    msgs = NULL;
    rc = 0;
out:
    json_object_put(blocks);
    json_object_put(msgs);
    buf_free(&sys);
    return rc;
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
                strcmp(json_object_get_string(t), "tool_use") != 0 ||
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
    json_object *tc = NULL, *ptc = NULL, *fn = NULL, *nm = NULL, *choice = json_object_new_object();
    const char *type = "auto";

    json_object_object_get_ex(req, "tool_choice", &tc);
    if (tc && json_object_is_type(tc, json_type_string)) {
        const char *s = json_object_get_string(tc);
        type = strcmp(s, "none") == 0 ? "none" : strcmp(s, "required") == 0 ? "any" : "auto";
    } else if (tc && json_object_is_type(tc, json_type_object) &&
               json_object_object_get_ex(tc, "function", &fn) &&
               json_object_object_get_ex(fn, "name", &nm) && json_object_is_type(nm, json_type_string)) {
        type = "tool";
    }
    json_object_object_add(choice, "type", json_object_new_string(type));
    if (strcmp(type, "tool") == 0)
        json_object_object_add(choice, "name", json_object_get(nm));
    if (json_object_object_get_ex(req, "parallel_tool_calls", &ptc) &&
        json_object_is_type(ptc, json_type_boolean) && !json_object_get_boolean(ptc) &&
        strcmp(type, "none") != 0)
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
        rc = req__fail(err, errlen, "tools: must be an array");
        goto out;
    }
    arr = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(tools); i++) {
        json_object *t = json_object_array_get_idx(tools, i), *fn = NULL, *nm = NULL, *d = NULL,
                    *p = NULL, *o;
        if (!json_object_object_get_ex(t, "function", &fn) ||
            !json_object_object_get_ex(fn, "name", &nm) || !json_object_is_type(nm, json_type_string)) {
            rc = req__fail(err, errlen, "tools[%zu]: needs function.name", i);
            goto out;
        }
        o = json_object_new_object();
        json_object_object_add(o, "name", json_object_get(nm));
        if (json_object_object_get_ex(fn, "description", &d) && json_object_is_type(d, json_type_string))
            json_object_object_add(o, "description", json_object_get(d));
        if (json_object_object_get_ex(fn, "parameters", &p) && json_object_is_type(p, json_type_object))
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
            rc = req__fail(err, errlen, "max_tokens: must be a positive integer");
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
                    rc = req__fail(err, errlen, "stop[%zu]: must be a string", i);
                    goto out;
                }
                json_object_array_add(seq, json_object_get(s));
            }
        } else {
            rc = req__fail(err, errlen, "stop: must be a string or an array of strings");
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
    if (json_object_object_get_ex(req, "user", &u) && json_object_is_type(u, json_type_string) &&
        json_object_get_string_len(u)) {
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
    buf_init(&line, 16384);
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
                rc = req__fail(err, errlen, "backend default_headers.%s: not a valid header "
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
            rc = req__fail(err, errlen, "backend api_key: contains a line break");
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

    if (json_object_object_get_ex(backend, "base_url", &b) && json_object_is_type(b, json_type_string) &&
        json_object_get_string_len(b))
        base = json_object_get_string(b);
    n = strlen(base);
    while (n && base[n - 1] == '/')
        n--;
    if (buf_append(url, base, n) || buf_puts(url, "/messages"))
        rc = req__fail(err, errlen, "backend base_url: too long");
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
        rc = req__fail(err, errlen, "model: missing (set the assistant's model)");
        goto out;
    }
    json_object_object_add(out, "model", json_object_get(model));
    if ((rc = req__messages(req, out, err, errlen)) || (rc = req__sampling(req, out, err, errlen)) ||
        (rc = req__tools(req, out, err, errlen)))
        goto out;
    req__extra(req, out);
    if (stream)
        json_object_object_add(out, "stream", json_object_new_boolean(1));
    if ((rc = req__url(backend, url, err, errlen)) || (rc = req__headers(backend, headers, err, errlen)))
        goto out;
    text = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (buf_puts(body, text)) {
        rc = req__fail(err, errlen, "request body: larger than the %zu-byte cap", body->max);
        goto out;
    }
    rc = 0;
out:
    json_object_put(out);
    return rc;
}
