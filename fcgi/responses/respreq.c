/* respreq — the Responses request to the canonical chat body (respreq.h). */
#include "fcgi/responses/respreq.h"
#include "fcgi/openai/chatreq.h"

#include "shared/caps.h"
#include "shared/jget.h"
#include "shared/jtext.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int rq__fail(aip_err_t *err, const char *param, const char *fmt, const char *a)
{
    aip_err_set(err, 400, "invalid_request_error", NULL, fmt, a);
    aip_err_param(err, param);
    return -EINVAL;
}

/* Adds key=val to o, consuming val; -ENOMEM when val is NULL or the add fails. */
static int rq__set(json_object *o, const char *key, json_object *val)
{
    if (!val)
        return -ENOMEM;
    if (json_object_object_add(o, key, val) != 0) {
        json_object_put(val);
        return -ENOMEM;
    }
    return 0;
}

static int rq__push(json_object *arr, json_object *val)
{
    if (!val)
        return -ENOMEM;
    if (json_object_array_add(arr, val) != 0) {
        json_object_put(val);
        return -ENOMEM;
    }
    return 0;
}

/* A field that is present and not null. */
static json_object *rq__opt(json_object *o, const char *key)
{
    json_object *v = jget(o, key);

    return v && !json_object_is_type(v, json_type_null) ? v : NULL;
}

/* A new {role, content: text}. */
static json_object *rq__msg(const char *role, const char *text, size_t len)
{
    json_object *m = json_object_new_object();

    if (!m || rq__set(m, "role", json_object_new_string(role)) < 0 ||
        rq__set(m, "content", json_object_new_string_len(text, (int)len)) < 0) {
        json_object_put(m);
        return NULL;
    }
    return m;
}

int respreq_parse(const char *text, size_t len, respreq_t *out, aip_err_t *err)
{
    char why[256];
    json_object *v;
    int rc;

    memset(out, 0, sizeof(*out));
    out->store = 1;
    rc = jtext_parse_strict(text, len, CAP_REQ_JSON_DEPTH, &out->in, why, sizeof(why));
    if (rc == -EINVAL)
        return rq__fail(err, "", "%s", why);
    if (rc < 0)
        return rc;
    if (!json_object_is_type(out->in, json_type_object)) {
        rc = rq__fail(err, "", "%s", "the request body must be a JSON object");
        goto fail;
    }
    out->model = jget_str(out->in, "model");
    if (!out->model || !*out->model) {
        rc = rq__fail(err, "model", "%s", "'model' is required: the name of an assistant "
                      "(GET /v1/models lists them)");
        goto fail;
    }
    if ((v = rq__opt(out->in, "stream"))) {
        if (!json_object_is_type(v, json_type_boolean)) {
            rc = rq__fail(err, "stream", "%s", "'stream' must be a boolean");
            goto fail;
        }
        out->stream = json_object_get_boolean(v);
    }
    if ((v = rq__opt(out->in, "store"))) {
        if (!json_object_is_type(v, json_type_boolean)) {
            rc = rq__fail(err, "store", "%s", "'store' must be a boolean");
            goto fail;
        }
        out->store = json_object_get_boolean(v);
    }
    if ((v = rq__opt(out->in, "previous_response_id"))) {
        out->previous = json_object_get_string(v);
        if (!json_object_is_type(v, json_type_string) || !*out->previous ||
            strlen(out->previous) != (size_t)json_object_get_string_len(v) ||
            strlen(out->previous) >= CAP_RESP_ID) {
            rc = rq__fail(err, "previous_response_id", "%s",
                          "'previous_response_id' must be the id of a stored response (resp_...)");
            goto fail;
        }
    }
    if (!jget(out->in, "input")) {
        rc = rq__fail(err, "input", "%s", "'input' is required: a string or a list of items");
        goto fail;
    }
    return 0;
fail:
    respreq_clear(out);
    return rc;
}

/* A message item's content: a string, or input_text / output_text /
 * input_image parts -> a string or chat parts. New value or NULL with *rc. */
static json_object *rq__content(json_object *c, const char *param, aip_err_t *err, int *rc)
{
    json_object *parts = NULL, *p;
    size_t i, n;
    char where[AIP_ERR_PARAM_MAX + 32];

    *rc = -ENOMEM;
    if (json_object_is_type(c, json_type_string))
        return json_object_new_string_len(json_object_get_string(c),
                                          json_object_get_string_len(c));
    if (!json_object_is_type(c, json_type_array)) {
        *rc = rq__fail(err, param, "'%s' must be a string or a list of content parts", param);
        return NULL;
    }
    if (!(parts = json_object_new_array()))
        return NULL;
    n = json_object_array_length(c);
    for (i = 0; i < n; i++) {
        json_object *part = json_object_array_get_idx(c, i), *t;
        const char *type = jget_str(part, "type");

        if (snprintf(where, sizeof(where), "%s[%zu]", param, i) >= (int)sizeof(where))
            where[sizeof(where) - 1] = '\0';   /* a cut name still points at the field */
        if (type && (!strcmp(type, "input_text") || !strcmp(type, "output_text") ||
                     !strcmp(type, "text")) &&
            (t = jget_typed(part, "text", json_type_string))) {
            if (!(p = json_object_new_object()) ||
                rq__set(p, "type", json_object_new_string("text")) < 0 ||
                rq__set(p, "text", json_object_get(t)) < 0)
                goto oom;
        } else if (type && !strcmp(type, "input_image") &&
                   (t = jget_typed(part, "image_url", json_type_string))) {
            json_object *u = json_object_new_object(), *d = rq__opt(part, "detail");

            if (!(p = json_object_new_object()) || !u ||
                rq__set(u, "url", json_object_get(t)) < 0 ||
                (d && rq__set(u, "detail", json_object_get(d)) < 0) ||
                rq__set(p, "type", json_object_new_string("image_url")) < 0 ||
                rq__set(p, "image_url", u) < 0) {
                json_object_put(p);
                goto oom;
            }
        } else {
            *rc = rq__fail(err, where, "'%s' must be an input_text part {type, text} or an "
                           "input_image part {type, image_url} (file ids and input_file are "
                           "not supported)", where);
            json_object_put(parts);
            return NULL;
        }
        if (rq__push(parts, p) < 0)
            goto oom;
        continue;
oom:
        json_object_put(p);
        json_object_put(parts);
        return NULL;
    }
    return parts;
}

/* The assistant message that carries a run of function_call items. */
static json_object *rq__calls_msg(json_object *msgs)
{
    size_t n = json_object_array_length(msgs);
    json_object *last = n ? json_object_array_get_idx(msgs, n - 1) : NULL, *m, *tc;
    const char *role = jget_str(last, "role");

    if (role && !strcmp(role, "assistant") && (tc = jget_arr(last, "tool_calls")))
        return tc;
    if (!(m = json_object_new_object()) ||
        rq__set(m, "role", json_object_new_string("assistant")) < 0 ||
        json_object_object_add(m, "content", NULL) != 0 ||
        rq__set(m, "tool_calls", json_object_new_array()) < 0 ||
        rq__push(msgs, m) < 0)
        return NULL;
    return jget_arr(m, "tool_calls");
}

/* One input item -> chat messages appended to msgs. */
static int rq__item(json_object *it, size_t i, json_object *msgs, aip_err_t *err)
{
    char where[AIP_ERR_PARAM_MAX + 32];
    const char *type = jget_str(it, "type"), *role = jget_str(it, "role");
    json_object *m = NULL, *c, *tc, *f;
    int rc = -ENOMEM;

    snprintf(where, sizeof(where), "input[%zu]", i);
    if (!json_object_is_type(it, json_type_object))
        return rq__fail(err, where, "'%s' must be an item object", where);
    if ((!type && role) || (type && !strcmp(type, "message"))) {
        if (!role || (strcmp(role, "user") && strcmp(role, "assistant") &&
                      strcmp(role, "system") && strcmp(role, "developer")))
            return rq__fail(err, where, "'%s.role' must be user, assistant, system or "
                            "developer", where);
        if (!(c = jget(it, "content")))
            return rq__fail(err, where, "'%s.content' is required", where);
        snprintf(where, sizeof(where), "input[%zu].content", i);
        if (!(m = json_object_new_object()) ||
            rq__set(m, "role", json_object_new_string(!strcmp(role, "developer") ? "system"
                                                                                   : role)) < 0)
            goto out;
        if (!(c = rq__content(c, where, err, &rc)))
            goto out;
        if (rq__set(m, "content", c) < 0)
            goto out;
        rc = rq__push(msgs, m);
        m = NULL;
        goto out;
    }
    if (type && !strcmp(type, "function_call")) {
        const char *id = jget_str(it, "call_id"), *name = jget_str(it, "name");
        json_object *args = jget_typed(it, "arguments", json_type_string);

        if (!id || !name || !args)
            return rq__fail(err, where, "'%s' (function_call) needs call_id, name and "
                            "arguments (a JSON string)", where);
        if (!(tc = rq__calls_msg(msgs)) || !(m = json_object_new_object()) ||
            !(f = json_object_new_object()) ||
            rq__set(m, "function", f) < 0 ||
            rq__set(m, "id", json_object_new_string(id)) < 0 ||
            rq__set(m, "type", json_object_new_string("function")) < 0 ||
            rq__set(f, "name", json_object_new_string(name)) < 0 ||
            rq__set(f, "arguments", json_object_get(args)) < 0)
            goto out;
        rc = rq__push(tc, m);
        m = NULL;
        goto out;
    }
    if (type && !strcmp(type, "function_call_output")) {
        const char *id = jget_str(it, "call_id");
        json_object *o = jget(it, "output");

        if (!id || !o || !json_object_is_type(o, json_type_string))
            return rq__fail(err, where, "'%s' (function_call_output) needs call_id and "
                            "output (a string)", where);
        if (!(m = rq__msg("tool", json_object_get_string(o),
                          (size_t)json_object_get_string_len(o))) ||
            rq__set(m, "tool_call_id", json_object_new_string(id)) < 0)
            goto out;
        rc = rq__push(msgs, m);
        m = NULL;
        goto out;
    }
    /* our own output echoed back: the loop already answered from them */
    if (type && (!strcmp(type, "mcp_call") || !strcmp(type, "mcp_list_tools") ||
                 !strcmp(type, "reasoning")))
        return 0;
    return rq__fail(err, where, "'%s' has an item type this gateway does not take (message, "
                    "function_call, function_call_output, mcp_call, mcp_list_tools)", where);
out:
    json_object_put(m);
    return rc;
}

/* tools: function tools -> chat tools; any other type is refused. */
static int rq__tools(json_object *in, json_object *body, aip_err_t *err)
{
    json_object *tools = rq__opt(in, "tools"), *arr = NULL, *t, *f, *v;
    char where[AIP_ERR_PARAM_MAX + 32];
    size_t i, n;
    int rc = -ENOMEM;

    if (!tools)
        return 0;
    if (!json_object_is_type(tools, json_type_array))
        return rq__fail(err, "tools", "%s", "'tools' must be an array of tools");
    if (!(n = json_object_array_length(tools)))
        return 0;
    if (!(arr = json_object_new_array()))
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        json_object *ct = json_object_array_get_idx(tools, i);
        const char *type = jget_str(ct, "type"), *name = jget_str(ct, "name");

        snprintf(where, sizeof(where), "tools[%zu]", i);
        if (type && !strcmp(type, "mcp")) {
            rc = rq__fail(err, where, "'%s': client MCP tools (type \"mcp\") are not "
                          "supported: the assistant's MCP servers are added server-side "
                          "(configure them on the assistant)", where);
            goto out;
        }
        if (!type || strcmp(type, "function") || !name || !*name) {
            rc = rq__fail(err, where, "'%s': only function tools {type: \"function\", name, "
                          "parameters} are supported", where);
            goto out;
        }
        if (!(t = json_object_new_object()) || rq__push(arr, t) < 0 ||
            rq__set(t, "type", json_object_new_string("function")) < 0 ||
            !(f = json_object_new_object()) || rq__set(t, "function", f) < 0 ||
            rq__set(f, "name", json_object_new_string(name)) < 0)
            goto out;
        if ((v = rq__opt(ct, "description")) && rq__set(f, "description", json_object_get(v)) < 0)
            goto out;
        if ((v = rq__opt(ct, "parameters")) && rq__set(f, "parameters", json_object_get(v)) < 0)
            goto out;
        if ((v = rq__opt(ct, "strict")) && rq__set(f, "strict", json_object_get(v)) < 0)
            goto out;
    }
    rc = rq__set(body, "tools", arr);
    arr = NULL;
out:
    json_object_put(arr);
    return rc;
}

/* tool_choice: a mode string or {type: "function", name}. */
static int rq__tool_choice(json_object *in, json_object *body, aip_err_t *err)
{
    json_object *tc = rq__opt(in, "tool_choice"), *o, *f;
    const char *type, *name;

    if (!tc)
        return 0;
    if (json_object_is_type(tc, json_type_string))
        return rq__set(body, "tool_choice", json_object_get(tc));
    type = jget_str(tc, "type");
    name = jget_str(tc, "name");
    if (!type || strcmp(type, "function") || !name)
        return rq__fail(err, "tool_choice", "%s", "'tool_choice' must be auto, none, "
                        "required or {type: \"function\", name}");
    if (!(o = json_object_new_object()) ||
        rq__set(o, "type", json_object_new_string("function")) < 0 ||
        !(f = json_object_new_object()) || rq__set(o, "function", f) < 0 ||
        rq__set(f, "name", json_object_new_string(name)) < 0) {
        json_object_put(o);
        return -ENOMEM;
    }
    return rq__set(body, "tool_choice", o);
}

/* text.format -> response_format. */
static int rq__format(json_object *in, json_object *body, aip_err_t *err)
{
    json_object *fmt = rq__opt(jget(in, "text"), "format"), *rf = NULL, *js, *v;
    const char *type;
    static const char *const keys[] = { "name", "schema", "strict", "description" };
    size_t i;

    if (!fmt)
        return 0;
    type = jget_str(fmt, "type");
    if (type && !strcmp(type, "text"))
        return 0;
    if (type && !strcmp(type, "json_object")) {
        if (!(rf = json_object_new_object()) ||
            rq__set(rf, "type", json_object_new_string("json_object")) < 0)
            goto oom;
        return rq__set(body, "response_format", rf);
    }
    if (!type || strcmp(type, "json_schema") || !jget_str(fmt, "name"))
        return rq__fail(err, "text.format", "%s", "'text.format' must be {type: \"text\"}, "
                        "{type: \"json_object\"} or {type: \"json_schema\", name, schema}");
    if (!(rf = json_object_new_object()) ||
        rq__set(rf, "type", json_object_new_string("json_schema")) < 0 ||
        !(js = json_object_new_object()) || rq__set(rf, "json_schema", js) < 0)
        goto oom;
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if ((v = rq__opt(fmt, keys[i])) && rq__set(js, keys[i], json_object_get(v)) < 0)
            goto oom;
    return rq__set(body, "response_format", rf);
oom:
    json_object_put(rf);
    return -ENOMEM;
}

/* Fields passed as they are, or renamed. */
static int rq__plain(json_object *in, json_object *body)
{
    static const char *const map[][2] = {
        { "temperature", "temperature" }, { "top_p", "top_p" },
        { "parallel_tool_calls", "parallel_tool_calls" }, { "user", "user" },
        { "max_output_tokens", "max_tokens" },
    };
    json_object *v;
    const char *effort;
    size_t i;

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if ((v = rq__opt(in, map[i][0])) && rq__set(body, map[i][1], json_object_get(v)) < 0)
            return -ENOMEM;
    effort = jget_str(jget(in, "reasoning"), "effort");
    if (effort && rq__set(body, "reasoning_effort", json_object_new_string(effort)) < 0)
        return -ENOMEM;
    /* the tool-events opt-in rides through (core/toolev.h) */
    if ((v = rq__opt(in, "aiproxy")) && rq__set(body, "aiproxy", json_object_get(v)) < 0)
        return -ENOMEM;
    return 0;
}

int respreq_translate(respreq_t *r, json_object *history, aip_err_t *err)
{
    json_object *body = NULL, *msgs, *input = jget(r->in, "input"), *ins;
    size_t i, n;
    int rc = -ENOMEM;

    if (!(body = json_object_new_object()) ||
        rq__set(body, "model", json_object_new_string(r->model)) < 0 ||
        !(msgs = json_object_new_array()) || rq__set(body, "messages", msgs) < 0)
        goto out;
    r->has_instructions = 0;
    if ((ins = rq__opt(r->in, "instructions"))) {
        if (!json_object_is_type(ins, json_type_string)) {
            rc = rq__fail(err, "instructions", "%s", "'instructions' must be a string");
            goto out;
        }
        if (json_object_get_string_len(ins)) {
            if (rq__push(msgs, rq__msg("system", json_object_get_string(ins),
                                       (size_t)json_object_get_string_len(ins))) < 0)
                goto out;
            r->has_instructions = 1;
        }
    }
    n = history ? json_object_array_length(history) : 0;
    for (i = 0; i < n; i++)
        if (rq__push(msgs, json_object_get(json_object_array_get_idx(history, i))) < 0)
            goto out;
    if (json_object_is_type(input, json_type_string)) {
        if (rq__push(msgs, rq__msg("user", json_object_get_string(input),
                                   (size_t)json_object_get_string_len(input))) < 0)
            goto out;
    } else if (json_object_is_type(input, json_type_array)) {
        n = json_object_array_length(input);
        for (i = 0; i < n; i++)
            if ((rc = rq__item(json_object_array_get_idx(input, i), i, msgs, err)) < 0)
                goto out;
    } else {
        rc = rq__fail(err, "input", "%s", "'input' must be a string or a list of items");
        goto out;
    }
    rc = -ENOMEM;
    if ((rc = rq__tools(r->in, body, err)) < 0 || (rc = rq__tool_choice(r->in, body, err)) < 0 ||
        (rc = rq__format(r->in, body, err)) < 0 || (rc = rq__plain(r->in, body)) < 0)
        goto out;
    if (r->stream && rq__set(body, "stream", json_object_new_boolean(1)) < 0) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = chatreq_validate(body, err)) < 0)
        goto out;
    json_object_put(r->body);
    r->body = body;
    body = NULL;
    rc = 0;
out:
    json_object_put(body);
    return rc;
}

void respreq_clear(respreq_t *out)
{
    json_object_put(out->body);
    json_object_put(out->in);
    memset(out, 0, sizeof(*out));
}
