/* msgreq — the top-level fields of an Anthropic Messages request: model,
 * max_tokens, system, tools, tool_choice, sampling, metadata, stream. The
 * messages themselves are msgreq_msgs.c's. */
#include "fcgi/anthropic/msgreq.h"
#include "agent/anthvocab.h"
#include "shared/caps.h"

#include "shared/buf.h"
#include "shared/jtext.h"

#include "fcgi/openai/chatreq.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int msgreq__is_number(json_object *v)
{
    if (json_object_is_type(v, json_type_int))
        return 1;
    return json_object_is_type(v, json_type_double) && isfinite(json_object_get_double(v));
}

/* system: a string or an array of text blocks -> one system message. */
static int msgreq__system(json_object *in, json_object *msgs, aip_err_t *err)
{
    json_object *sys = msgreq__opt(in, "system"), *m = NULL;
    buf_t text;
    size_t i, n;
    int rc = -ENOMEM;

    /* joined with the lengths: a "\u0000" in the text is kept, not a cut */
    buf_init(&text, INT_MAX);
    if (!sys)
        return 0;
    if (json_object_is_type(sys, json_type_string)) {
        if (buf_append(&text, json_object_get_string(sys),
                       (size_t)json_object_get_string_len(sys)) < 0)
            goto out;
    } else if (json_object_is_type(sys, json_type_array)) {
        n = json_object_array_length(sys);
        for (i = 0; i < n; i++) {
            json_object *b = json_object_array_get_idx(sys, i), *t = msgreq__opt(b, "text");
            const char *type = msgreq__str(b, "type");
            char param[48];
            snprintf(param, sizeof(param), "system[%zu]", i);
            if (!type || strcmp(type, ANTHV_BLOCK_TEXT) != 0 || !json_object_is_type(t, json_type_string)) {
                rc = msgreq__fail(err, param, "'%s' must be a text block {type: \"text\", "
                                  "text}", param);
                goto out;
            }
            if ((i && buf_append(&text, "\n", 1) < 0) ||
                buf_append(&text, json_object_get_string(t),
                           (size_t)json_object_get_string_len(t)) < 0)
                goto out;
        }
    } else {
        return msgreq__fail(err, "system", "'system' must be a string or an array of text "
                            "blocks");
    }
    rc = 0;
    if (!text.len)
        goto out;   /* an empty system prompt says nothing: leave the assistant's */
    rc = -ENOMEM;
    m = json_object_new_object();
    if (!m || msgreq__set(m, "role", json_object_new_string("system")) != 0 ||
        msgreq__set(m, "content", json_object_new_string_len(text.data, (int)text.len)) != 0)
        goto out;
    rc = json_object_array_add(msgs, m) == 0 ? 0 : -ENOMEM;
    if (rc == 0)
        m = NULL;
out:
    json_object_put(m);
    buf_free(&text);
    return rc;
}

/* 1 when name matches ^[a-zA-Z0-9_-]{1,64}$ (what both dialects accept). */
static int msgreq__tool_name_ok(const char *name)
{
    size_t i, n = strlen(name);

    if (n == 0 || n > 64)
        return 0;
    for (i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* tools: [{name, description?, input_schema}] -> OpenAI function tools.
 * Anthropic's server tools (web_search_..., bash_..., a "type" other than
 * "custom") run inside Anthropic's platform, which we are not: refused. */
static int msgreq__tools(json_object *in, json_object *out, aip_err_t *err)
{
    json_object *tools = msgreq__opt(in, "tools"), *arr = NULL;
    size_t i, n;
    int rc = -ENOMEM;

    if (!tools)
        return 0;
    if (!json_object_is_type(tools, json_type_array))
        return msgreq__fail(err, "tools", "'tools' must be an array of tool definitions");
    n = json_object_array_length(tools);
    if (n == 0)
        return 0;
    arr = json_object_new_array();
    if (!arr)
        goto out;
    for (i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(tools, i), *schema, *desc, *ot, *fn;
        const char *name = msgreq__str(t, "name"), *type = msgreq__str(t, "type");
        char param[48];
        snprintf(param, sizeof(param), "tools[%zu]", i);
        if (!json_object_is_type(t, json_type_object)) {
            rc = msgreq__fail(err, param, "'%s' must be an object", param);
            goto out;
        }
        if (type && strcmp(type, "custom") != 0) {
            rc = msgreq__fail(err, param, "'%s' is a server tool ('%s'), which this gateway "
                              "cannot run: define a custom tool {name, description, "
                              "input_schema}", param, type);
            goto out;
        }
        if (!name || !msgreq__tool_name_ok(name) || msgreq__no_nul(t, "name", "", err)) {
            snprintf(param, sizeof(param), "tools[%zu].name", i);
            rc = msgreq__fail(err, param, "'%s' is required and must match "
                              "^[a-zA-Z0-9_-]{1,64}$", param);
            goto out;
        }
        schema = msgreq__opt(t, "input_schema");
        if (!json_object_is_type(schema, json_type_object)) {
            snprintf(param, sizeof(param), "tools[%zu].input_schema", i);
            rc = msgreq__fail(err, param, "'%s' is required and must be a JSON Schema object",
                              param);
            goto out;
        }
        desc = msgreq__opt(t, "description");
        if (desc && !json_object_is_type(desc, json_type_string)) {
            snprintf(param, sizeof(param), "tools[%zu].description", i);
            rc = msgreq__fail(err, param, "'%s' must be a string", param);
            goto out;
        }
        rc = -ENOMEM;
        ot = json_object_new_object();
        fn = json_object_new_object();
        if (!ot || !fn || json_object_array_add(arr, ot) != 0) {
            json_object_put(ot);
            json_object_put(fn);
            goto out;
        }
        json_object_object_add(ot, "function", fn);
        if (msgreq__set(ot, "type", json_object_new_string("function")) != 0 ||
            msgreq__set(fn, "name", json_object_new_string(name)) != 0 ||
            (desc && msgreq__set(fn, "description", json_object_get(desc)) != 0) ||
            msgreq__set(fn, "parameters", json_object_get(schema)) != 0)
            goto out;
    }
    rc = msgreq__set(out, "tools", arr);
    arr = NULL;
out:
    json_object_put(arr);
    return rc;
}

/* tool_choice {type: auto|any|tool|none, name?, disable_parallel_tool_use?}. */
static int msgreq__tool_choice(json_object *in, json_object *out, aip_err_t *err)
{
    json_object *tc = msgreq__opt(in, "tool_choice"), *dp, *o = NULL, *fn = NULL;
    const char *type = msgreq__str(tc, "type"), *name;
    int rc = -ENOMEM;

    if (!tc)
        return 0;
    if (!type)
        return msgreq__fail(err, "tool_choice", "'tool_choice' must be an object with 'type' "
                            "auto, any, tool or none");
    dp = msgreq__opt(tc, "disable_parallel_tool_use");
    if (dp && !json_object_is_type(dp, json_type_boolean))
        return msgreq__fail(err, "tool_choice.disable_parallel_tool_use",
                            "'tool_choice.disable_parallel_tool_use' must be a boolean");
    if (strcmp(type, "auto") == 0) {
        rc = msgreq__set(out, "tool_choice", json_object_new_string("auto"));
    } else if (strcmp(type, "any") == 0) {
        rc = msgreq__set(out, "tool_choice", json_object_new_string("required"));
    } else if (strcmp(type, "none") == 0) {
        rc = msgreq__set(out, "tool_choice", json_object_new_string("none"));
    } else if (strcmp(type, "tool") == 0) {
        name = msgreq__str(tc, "name");
        if (!name)
            return msgreq__fail(err, "tool_choice.name", "'tool_choice.name' is required when "
                                "'tool_choice.type' is tool");
        if (msgreq__no_nul(tc, "name", "tool_choice.name", err))
            return -EINVAL;
        o = json_object_new_object();
        fn = json_object_new_object();
        if (!o || !fn || msgreq__set(fn, "name", json_object_new_string(name)) != 0 ||
            msgreq__set(o, "type", json_object_new_string("function")) != 0)
            goto out;
        json_object_object_add(o, "function", fn);
        fn = NULL;
        rc = msgreq__set(out, "tool_choice", o);
        o = NULL;
    } else {
        return msgreq__fail(err, "tool_choice.type", "'tool_choice.type' must be auto, any, "
                            "tool or none");
    }
    if (rc == 0 && dp && json_object_get_boolean(dp))
        rc = msgreq__set(out, "parallel_tool_calls", json_object_new_boolean(0));
out:
    json_object_put(o);
    json_object_put(fn);
    return rc;
}

/* stop_sequences, temperature, top_p, top_k (checked, then dropped: the
 * OpenAI dialect has no top_k), metadata.user_id -> user, stream. */
static int msgreq__sampling(json_object *in, json_object *out, aip_err_t *err)
{
    static const char *const unit[] = { "temperature", "top_p" };
    json_object *v, *u;
    size_t i, n;

    v = msgreq__opt(in, "stop_sequences");
    if (v) {
        if (!json_object_is_type(v, json_type_array))
            return msgreq__fail(err, "stop_sequences", "'stop_sequences' must be an array of "
                                "strings");
        n = json_object_array_length(v);
        for (i = 0; i < n; i++)
            if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_string))
                return msgreq__fail(err, "stop_sequences", "'stop_sequences' must be an array "
                                    "of strings");
        if (n > 0 && msgreq__set(out, "stop", json_object_get(v)) != 0)
            return -ENOMEM;
    }
    for (i = 0; i < sizeof(unit) / sizeof(unit[0]); i++) {
        v = msgreq__opt(in, unit[i]);
        if (!v)
            continue;
        if (!msgreq__is_number(v) || json_object_get_double(v) < 0 ||
            json_object_get_double(v) > 1)
            return msgreq__fail(err, unit[i], "'%s' must be a number from 0 to 1", unit[i]);
        if (msgreq__set(out, unit[i], json_object_get(v)) != 0)
            return -ENOMEM;
    }
    v = msgreq__opt(in, "top_k");
    if (v && (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0))
        return msgreq__fail(err, "top_k", "'top_k' must be a non-negative integer");
    v = msgreq__opt(in, "metadata");
    if (v) {
        if (!json_object_is_type(v, json_type_object))
            return msgreq__fail(err, "metadata", "'metadata' must be an object");
        u = msgreq__opt(v, "user_id");
        if (u && !json_object_is_type(u, json_type_string))
            return msgreq__fail(err, "metadata.user_id", "'metadata.user_id' must be a string");
        if (u && json_object_get_string_len(u) > 0 &&
            msgreq__set(out, "user", json_object_get(u)) != 0)
            return -ENOMEM;
    }
    v = msgreq__opt(in, "stream");
    if (v && !json_object_is_type(v, json_type_boolean))
        return msgreq__fail(err, "stream", "'stream' must be a boolean");
    if (v && json_object_get_boolean(v) && msgreq__set(out, "stream", json_object_get(v)) != 0)
        return -ENOMEM;
    return 0;
}

int msgreq_translate(json_object *in, json_object **out, aip_err_t *err)
{
    json_object *o = NULL, *msgs = NULL, *v;
    aip_err_t cerr;
    int rc = -EINVAL;

    *out = NULL;
    memset(err, 0, sizeof(*err));
    if (!json_object_is_type(in, json_type_object)) {
        msgreq__fail(err, NULL, "the request body must be a JSON object");
        goto out;
    }
    if (!msgreq__str(in, "model")) {
        msgreq__fail(err, "model", "'model' is required and must be a non-empty string: name "
                     "an assistant (GET /v1/models lists them)");
        goto out;
    }
    if (msgreq__no_nul(in, "model", "model", err))
        goto out;
    v = msgreq__opt(in, "max_tokens");
    if (!v) {
        msgreq__fail(err, "max_tokens", "'max_tokens' is required: the most tokens the answer "
                     "may have");
        goto out;
    }
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1) {
        msgreq__fail(err, "max_tokens", "'max_tokens' must be an integer of at least 1");
        goto out;
    }
    rc = -ENOMEM;
    o = json_object_new_object();
    msgs = json_object_new_array();
    if (!o || !msgs || msgreq__set(o, "model", json_object_get(msgreq__opt(in, "model"))) != 0 ||
        msgreq__set(o, "max_tokens", json_object_get(v)) != 0)
        goto out;
    if ((rc = msgreq__system(in, msgs, err)) != 0 ||
        (rc = msgreq__messages(in, msgs, err)) != 0)
        goto out;
    json_object_object_add(o, "messages", msgs);
    msgs = NULL;
    if ((rc = msgreq__tools(in, o, err)) != 0 || (rc = msgreq__tool_choice(in, o, err)) != 0 ||
        (rc = msgreq__sampling(in, o, err)) != 0)
        goto out;
    /* aiproxy's own options ({"tool_events": true}) ride along as they are:
     * the runner reads and checks them (core/toolev.h), the agent never
     * forwards them upstream */
    if ((v = msgreq__opt(in, "aiproxy")) && msgreq__set(o, "aiproxy", json_object_get(v)) != 0) {
        rc = -ENOMEM;
        goto out;
    }
    /* The agent trusts a validated OpenAI body: hold the translation to the
     * same checks, so a gap here is a 400, not an upstream surprise. */
    if (chatreq_validate(o, &cerr) != 0) {
        rc = msgreq__fail(err, cerr.param, "the request translates to an invalid chat request: "
                          "%s", cerr.msg);
        goto out;
    }
    *out = o;
    o = NULL;
    rc = 0;
out:
    json_object_put(o);
    json_object_put(msgs);
    return rc;
}

int msgreq_parse(const char *text, size_t len, msgreq_t *out, aip_err_t *err)
{
    json_object *in = NULL, *v;
    char why[320];
    int rc;

    memset(out, 0, sizeof(*out));
    aip_err_clear(err);
    rc = jtext_parse_strict(text, len, CAP_REQ_JSON_DEPTH, &in, why, sizeof(why));
    if (rc == -EINVAL)
        msgreq__fail(err, NULL, "%s", why);
    if (rc != 0)
        goto out;
    rc = msgreq_translate(in, &out->body, err);
    if (rc != 0)
        goto out;
    out->model = json_object_get_string(json_object_object_get(out->body, "model"));
    v = msgreq__opt(out->body, "stream");
    out->stream = v && json_object_get_boolean(v);
out:
    json_object_put(in);
    return rc;
}

void msgreq_clear(msgreq_t *out)
{
    json_object_put(out->body);
    memset(out, 0, sizeof(*out));
}
