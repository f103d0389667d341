/* chatreq — request validation. Each check names the field in err->param the
 * way OpenAI's own errors do ("messages[0].content"). null counts as absent
 * for optional fields, as it does for OpenAI. */
#include "fcgi/openai/chatreq.h"
#include "shared/jget.h"
#include "shared/caps.h"

#include "shared/jtext.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>


static int chatreq__fail(aip_err_t *err, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int chatreq__fail(aip_err_t *err, const char *param, const char *fmt, ...)
{
    char msg[AIP_ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    aip_err_set(err, 400, "invalid_request_error", NULL, "%s", msg);
    aip_err_param(err, param);
    return -EINVAL;
}

/* An optional field: absent or null gives NULL. */
/* 1 when `v` is a string with a NUL inside: as a C string it would be cut
 * ("plain\u0000evil" served as plain), so a name or an id holding one is
 * refused. Content keeps its NULs (it is only ever used with its length). */
static int chatreq__has_nul(json_object *v)
{
    return json_object_is_type(v, json_type_string) &&
           memchr(json_object_get_string(v), '\0', (size_t)json_object_get_string_len(v));
}

static int chatreq__nul_fail(aip_err_t *err, const char *param)
{
    return chatreq__fail(err, param, "'%s' must not contain a NUL character (\\u0000)", param);
}

/* The ids and names of a message (tool_call_id, name, tool_calls[].id and
 * .function.name): no NUL in any. */
static int chatreq__ids(json_object *m, size_t i, aip_err_t *err)
{
    static const char *const keys[] = { "tool_call_id", "name" };
    json_object *v = NULL, *calls = NULL;
    char param[96];
    size_t k, n;

    /* each param's name is formatted only for the error it names */
    for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        if (json_object_object_get_ex(m, keys[k], &v) && chatreq__has_nul(v)) {
            snprintf(param, sizeof(param), "messages[%zu].%s", i, keys[k]);
            return chatreq__nul_fail(err, param);
        }
    }
    if (!json_object_object_get_ex(m, "tool_calls", &calls) ||
        !json_object_is_type(calls, json_type_array))
        return 0;
    n = json_object_array_length(calls);
    for (k = 0; k < n; k++) {
        json_object *c = json_object_array_get_idx(calls, k), *fn = NULL;
        if (json_object_object_get_ex(c, "id", &v) && chatreq__has_nul(v)) {
            snprintf(param, sizeof(param), "messages[%zu].tool_calls[%zu].id", i, k);
            return chatreq__nul_fail(err, param);
        }
        if (json_object_object_get_ex(c, "function", &fn) &&
            json_object_object_get_ex(fn, "name", &v) && chatreq__has_nul(v)) {
            snprintf(param, sizeof(param), "messages[%zu].tool_calls[%zu].function.name", i, k);
            return chatreq__nul_fail(err, param);
        }
    }
    return 0;
}

static int chatreq__content(json_object *content, const char *role, int idx,
                            aip_err_t *err)
{
    char param[64];
    size_t i, n;

    if (content && json_object_is_type(content, json_type_string))
        return 0;
    snprintf(param, sizeof(param), "messages[%d].content", idx);
    if (!content) {
        /* An assistant turn may be tool calls only. */
        if (strcmp(role, "assistant") == 0)
            return 0;
        return chatreq__fail(err, param, "'%s' is required for a %s message", param, role);
    }
    if (!json_object_is_type(content, json_type_array))
        return chatreq__fail(err, param,
                             "'%s' must be a string or an array of content parts", param);
    n = json_object_array_length(content);
    for (i = 0; i < n; i++) {
        json_object *part = json_object_array_get_idx(content, i), *type = NULL;
        if (!json_object_is_type(part, json_type_object) ||
            !json_object_object_get_ex(part, "type", &type) ||
            !json_object_is_type(type, json_type_string)) {
            snprintf(param, sizeof(param), "messages[%d].content[%zu]", idx, i);
            return chatreq__fail(err, param,
                                 "'%s' must be an object with a string 'type'", param);
        }
    }
    return 0;
}

static int chatreq__messages(json_object *body, aip_err_t *err)
{
    static const char *const roles[] = { "system", "developer", "user", "assistant", "tool" };
    json_object *msgs = jget(body, "messages");
    size_t i, n, r;

    if (!msgs)
        return chatreq__fail(err, "messages", "'messages' is required");
    if (!json_object_is_type(msgs, json_type_array))
        return chatreq__fail(err, "messages", "'messages' must be an array of messages");
    n = json_object_array_length(msgs);
    if (n == 0)
        return chatreq__fail(err, "messages", "'messages' must not be empty");
    for (i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(msgs, i), *role = NULL;
        const char *rs;
        char param[48];

        if (!json_object_is_type(m, json_type_object)) {
            snprintf(param, sizeof(param), "messages[%zu]", i);
            return chatreq__fail(err, param, "'%s' must be an object", param);
        }
        /* the param's name is formatted only for the error that names it */
        if (!json_object_object_get_ex(m, "role", &role) ||
            !json_object_is_type(role, json_type_string)) {
            snprintf(param, sizeof(param), "messages[%zu].role", i);
            return chatreq__fail(err, param, "'%s' is required and must be a string", param);
        }
        rs = json_object_get_string(role);
        for (r = 0; r < sizeof(roles) / sizeof(roles[0]); r++)
            if (strcmp(rs, roles[r]) == 0)
                break;
        if (chatreq__has_nul(role) || r == sizeof(roles) / sizeof(roles[0])) {
            snprintf(param, sizeof(param), "messages[%zu].role", i);
            if (chatreq__has_nul(role))
                return chatreq__nul_fail(err, param);
            return chatreq__fail(err, param,
                                 "'%s' must be one of system, developer, user, assistant, tool",
                                 param);
        }
        if (chatreq__content(jget(m, "content"), rs, (int)i, err) != 0 ||
            chatreq__ids(m, i, err) != 0)
            return -EINVAL;
    }
    return 0;
}

/* A JSON number we can send on: 1e999 parses as infinity, which has no JSON
 * spelling, so it would turn the upstream request into invalid JSON. */
static int chatreq__is_number(json_object *v)
{
    if (json_object_is_type(v, json_type_int))
        return 1;
    return json_object_is_type(v, json_type_double) && isfinite(json_object_get_double(v));
}

static int chatreq__tools(json_object *tools, aip_err_t *err)
{
    size_t i, n;

    if (!json_object_is_type(tools, json_type_array))
        return chatreq__fail(err, "tools", "'tools' must be an array of tools");
    n = json_object_array_length(tools);
    for (i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(tools, i), *fn = NULL, *name = NULL;
        char param[48];

        snprintf(param, sizeof(param), "tools[%zu]", i);
        if (!json_object_is_type(t, json_type_object) ||
            !json_object_object_get_ex(t, "function", &fn) ||
            !json_object_is_type(fn, json_type_object) ||
            !json_object_object_get_ex(fn, "name", &name) ||
            !json_object_is_type(name, json_type_string))
            return chatreq__fail(err, param,
                                 "'%s' must be an object with function.name a string", param);
        if (chatreq__has_nul(name)) {
            snprintf(param, sizeof(param), "tools[%zu].function.name", i);
            return chatreq__nul_fail(err, param);
        }
    }
    return 0;
}

int chatreq_validate(json_object *body, aip_err_t *err)
{
    static const char *const numbers[] = { "temperature", "top_p", "presence_penalty",
                                           "frequency_penalty" };
    static const char *const integers[] = { "max_tokens", "max_completion_tokens", "seed", "n" };
    json_object *v;
    size_t i;

    memset(err, 0, sizeof(*err));
    if (!json_object_is_type(body, json_type_object))
        return chatreq__fail(err, NULL, "the request body must be a JSON object");
    v = jget(body, "model");
    if (!v)
        return chatreq__fail(err, "model", "'model' is required: name an assistant "
                             "(GET /v1/models lists them)");
    if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
        return chatreq__fail(err, "model", "'model' must be a non-empty string");
    if (chatreq__has_nul(v))
        return chatreq__nul_fail(err, "model");
    if (chatreq__messages(body, err) != 0)
        return -EINVAL;
    v = jget(body, "stream");
    if (v && !json_object_is_type(v, json_type_boolean))
        return chatreq__fail(err, "stream", "'stream' must be a boolean");
    for (i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        v = jget(body, numbers[i]);
        if (v && !chatreq__is_number(v))
            return chatreq__fail(err, numbers[i], "'%s' must be a finite number", numbers[i]);
    }
    for (i = 0; i < sizeof(integers) / sizeof(integers[0]); i++) {
        v = jget(body, integers[i]);
        if (v && !json_object_is_type(v, json_type_int))
            return chatreq__fail(err, integers[i], "'%s' must be an integer", integers[i]);
        /* a token budget below 1 has no meaning: refuse it rather than pass it on */
        if (v && strncmp(integers[i], "max_", 4) == 0 && json_object_get_int64(v) < 1)
            return chatreq__fail(err, integers[i], "'%s' must be at least 1", integers[i]);
    }
    v = jget(body, "stop");
    if (v && !json_object_is_type(v, json_type_string)) {
        size_t n;
        if (!json_object_is_type(v, json_type_array))
            return chatreq__fail(err, "stop", "'stop' must be a string or an array of strings");
        n = json_object_array_length(v);
        for (i = 0; i < n; i++)
            if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_string))
                return chatreq__fail(err, "stop",
                                     "'stop' must be a string or an array of strings");
    }
    v = jget(body, "tools");
    if (v && chatreq__tools(v, err) != 0)
        return -EINVAL;
    v = jget(body, "tool_choice");
    if (v && !json_object_is_type(v, json_type_string) && !json_object_is_type(v, json_type_object))
        return chatreq__fail(err, "tool_choice", "'tool_choice' must be a string or an object");
    v = jget(body, "stream_options");
    if (v) {
        json_object *iu = NULL;
        if (!json_object_is_type(v, json_type_object))
            return chatreq__fail(err, "stream_options", "'stream_options' must be an object");
        if (json_object_object_get_ex(v, "include_usage", &iu) && iu &&
            !json_object_is_type(iu, json_type_boolean))
            return chatreq__fail(err, "stream_options.include_usage",
                                 "'stream_options.include_usage' must be a boolean");
    }
    return 0;
}

int chatreq_parse(const char *text, size_t len, chatreq_t *out, aip_err_t *err)
{
    json_object *body = NULL, *v;
    char why[256];
    int rc;

    memset(out, 0, sizeof(*out));
    aip_err_clear(err);
    rc = jtext_parse_strict(text, len, CAP_REQ_JSON_DEPTH, &body, why, sizeof(why));
    if (rc == -EINVAL)
        chatreq__fail(err, NULL, "%s", why);
    if (rc != 0)
        goto out;
    rc = -EINVAL;
    if (chatreq_validate(body, err) != 0)
        goto out;
    out->model = json_object_get_string(json_object_object_get(body, "model"));
    v = jget(body, "stream");
    out->stream = v && json_object_get_boolean(v);
    v = jget(body, "stream_options");
    if (v && json_object_object_get_ex(v, "include_usage", &v) && v)
        out->include_usage = json_object_get_boolean(v);
    out->body = body;
    body = NULL;
    rc = 0;
out:
    json_object_put(body);
    return rc;
}

void chatreq_clear(chatreq_t *out)
{
    json_object_put(out->body);
    memset(out, 0, sizeof(*out));
}
