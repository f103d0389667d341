/* msgreq_msgs — the "messages" of an Anthropic request -> OpenAI chat
 * messages (msgreq.h). Each check names the field in err->param
 * ("messages[1].content[0].source"). */
#include "fcgi/anthropic/msgreq.h"
#include "agent/anthvocab.h"
#include "shared/buf.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int msgreq__fail(aip_err_t *err, const char *param, const char *fmt, ...)
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

json_object *msgreq__opt(json_object *o, const char *key)
{
    json_object *v = NULL;

    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

const char *msgreq__str(json_object *o, const char *key)
{
    json_object *v = msgreq__opt(o, key);

    if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
        return NULL;
    return json_object_get_string(v);
}

int msgreq__no_nul(json_object *o, const char *key, const char *param, aip_err_t *err)
{
    json_object *v = msgreq__opt(o, key);

    if (json_object_is_type(v, json_type_string) &&
        memchr(json_object_get_string(v), '\0', (size_t)json_object_get_string_len(v)))
        return msgreq__fail(err, param, "'%s' must not contain a NUL character (\\u0000)",
                            param);
    return 0;
}

int msgreq__set(json_object *o, const char *key, json_object *val)
{
    if (!val)
        return -ENOMEM;
    if (json_object_object_add(o, key, val) != 0) {
        json_object_put(val);
        return -ENOMEM;
    }
    return 0;
}

static int msgreq__push(json_object *arr, json_object *val)
{
    if (!val)
        return -ENOMEM;
    if (json_object_array_add(arr, val) != 0) {
        json_object_put(val);
        return -ENOMEM;
    }
    return 0;
}

/* {role, content: string} */
static json_object *msgreq__msg(const char *role, json_object *content)
{
    json_object *m = json_object_new_object();

    if (!m || msgreq__set(m, "role", json_object_new_string(role)) != 0) {
        json_object_put(m);
        json_object_put(content);
        return NULL;
    }
    json_object_object_add(m, "content", content);
    return m;
}

/* An image block's source -> an OpenAI image_url part. */
static int msgreq__image(json_object *blk, const char *param, json_object **part,
                         aip_err_t *err)
{
    json_object *src = msgreq__opt(blk, "source"), *iu = NULL, *p = NULL;
    const char *type = msgreq__str(src, "type"), *mt, *data, *url;
    char sp[128];
    char *du = NULL;
    size_t n;
    int rc = -ENOMEM;

    snprintf(sp, sizeof(sp), "%s.source", param);
    if (!json_object_is_type(src, json_type_object) || !type)
        return msgreq__fail(err, sp, "'%s' must be an object with a 'type' (base64 or url)", sp);
    iu = json_object_new_object();
    p = json_object_new_object();
    if (!iu || !p)
        goto out;
    if (strcmp(type, "base64") == 0) {
        mt = msgreq__str(src, "media_type");
        data = msgreq__str(src, "data");
        if (!mt || !data || strchr(mt, ';') || strchr(mt, ',')) {
            rc = msgreq__fail(err, sp, "'%s' of type base64 needs a 'media_type' (e.g. "
                              "image/png) and non-empty 'data'", sp);
            goto out;
        }
        n = strlen(mt) + strlen(data) + 16;
        du = malloc(n);
        if (!du)
            goto out;
        snprintf(du, n, "data:%s;base64,%s", mt, data);
        rc = msgreq__set(iu, "url", json_object_new_string(du));
    } else if (strcmp(type, "url") == 0) {
        url = msgreq__str(src, "url");
        if (!url) {
            rc = msgreq__fail(err, sp, "'%s' of type url needs a non-empty 'url'", sp);
            goto out;
        }
        rc = msgreq__set(iu, "url", json_object_new_string(url));
    } else {
        rc = msgreq__fail(err, sp, "'%s.type' '%s' is not supported: use base64 or url", sp,
                          type);
    }
    if (rc != 0)
        goto out;
    rc = msgreq__set(p, "type", json_object_new_string("image_url"));
    if (rc == 0) {
        json_object_object_add(p, "image_url", iu);
        iu = NULL;
        *part = p;
        p = NULL;
    }
out:
    free(du);
    json_object_put(iu);
    json_object_put(p);
    return rc;
}

/* A text block's text, borrowed (param names the block). Client text is
 * used with its length: a "\u0000" in it is kept, never a cut. */
static int msgreq__text(json_object *blk, const char *param, json_object **text,
                        aip_err_t *err)
{
    json_object *t = msgreq__opt(blk, "text");

    if (!json_object_is_type(t, json_type_string))
        return msgreq__fail(err, param, "'%s.text' is required and must be a string", param);
    *text = t;
    return 0;
}

/* Appends JSON string `s` to `b` with its length; 0 or -ENOMEM/-ENOSPC. */
static int msgreq__cat(buf_t *b, json_object *s)
{
    return buf_append(b, json_object_get_string(s), (size_t)json_object_get_string_len(s));
}

/* tool_result content (string or text blocks) -> the tool message text,
 * appended to `out`. */
static int msgreq__result_text(json_object *c, const char *param, buf_t *out,
                               aip_err_t *err)
{
    size_t i, n;
    char bp[128];
    json_object *t = NULL;

    if (!c)
        return 0;
    if (json_object_is_type(c, json_type_string))
        return msgreq__cat(out, c) ? -ENOMEM : 0;
    if (!json_object_is_type(c, json_type_array))
        return msgreq__fail(err, param, "'%s.content' must be a string or an array of text "
                            "blocks", param);
    n = json_object_array_length(c);
    for (i = 0; i < n; i++) {
        json_object *b = json_object_array_get_idx(c, i);
        const char *type = msgreq__str(b, "type");
        snprintf(bp, sizeof(bp), "%s.content[%zu]", param, i);
        if (!type || strcmp(type, ANTHV_BLOCK_TEXT) != 0)
            return msgreq__fail(err, bp, "'%s' must be a text block: a tool result's images "
                                "and documents cannot be passed to the model here", bp);
        if (msgreq__text(b, bp, &t, err) != 0)
            return -EINVAL;
        if ((i && buf_append(out, "\n", 1)) || msgreq__cat(out, t))
            return -ENOMEM;
    }
    return 0;
}

/* A tool_result block -> {role: tool, tool_call_id, content}. */
static int msgreq__tool_result(json_object *blk, const char *param, json_object *msgs,
                               aip_err_t *err)
{
    const char *id = msgreq__str(blk, "tool_use_id");
    json_object *ie = msgreq__opt(blk, "is_error"), *m = NULL;
    char idp[160];
    buf_t text;
    int rc;

    buf_init(&text, INT_MAX);
    if (!id)
        return msgreq__fail(err, param, "'%s.tool_use_id' is required: the id of the "
                            "tool_use block this answers", param);
    snprintf(idp, sizeof(idp), "%s.tool_use_id", param);
    if (msgreq__no_nul(blk, "tool_use_id", idp, err))
        return -EINVAL;
    if (ie && !json_object_is_type(ie, json_type_boolean))
        return msgreq__fail(err, param, "'%s.is_error' must be a boolean", param);
    /* OpenAI's tool message has no error flag: say it in the text. */
    if (ie && json_object_get_boolean(ie) && buf_puts(&text, "Error: ") < 0)
        return -ENOMEM;
    rc = msgreq__result_text(msgreq__opt(blk, "content"), param, &text, err);
    if (rc != 0)
        goto out;
    rc = -ENOMEM;
    m = msgreq__msg("tool", json_object_new_string_len(text.data ? text.data : "",
                                                       (int)text.len));
    if (!m || msgreq__set(m, "tool_call_id", json_object_new_string(id)) != 0)
        goto out;
    rc = msgreq__push(msgs, m);
    m = NULL;
out:
    json_object_put(m);
    buf_free(&text);
    return rc;
}

/* A user turn: tool_result blocks become tool messages (first, since OpenAI
 * wants them right after the assistant's tool_calls), the rest one user
 * message (a string when it is a single text block). */
static int msgreq__user(json_object *content, int idx, json_object *msgs, aip_err_t *err)
{
    json_object *parts = NULL, *p = NULL;
    size_t i, n, ntext = 0;
    char param[80];
    json_object *t = NULL;
    int rc = -ENOMEM;

    if (json_object_is_type(content, json_type_string))
        return msgreq__push(msgs, msgreq__msg("user", json_object_get(content)));
    parts = json_object_new_array();
    if (!parts)
        goto out;
    n = json_object_array_length(content);
    for (i = 0; i < n; i++) {
        json_object *b = json_object_array_get_idx(content, i);
        const char *type = msgreq__str(b, "type");
        snprintf(param, sizeof(param), "messages[%d].content[%zu]", idx, i);
        if (!type) {
            rc = msgreq__fail(err, param, "'%s' must be an object with a string 'type'", param);
            goto out;
        }
        if (strcmp(type, ANTHV_BLOCK_TEXT) == 0) {
            if ((rc = msgreq__text(b, param, &t, err)) != 0)
                goto out;
            p = json_object_new_object();
            if (!p || msgreq__set(p, "type", json_object_new_string("text")) != 0 ||
                msgreq__set(p, "text", json_object_get(t)) != 0) {
                rc = -ENOMEM;
                goto out;
            }
            ntext++;
        } else if (strcmp(type, ANTHV_BLOCK_IMAGE) == 0) {
            if ((rc = msgreq__image(b, param, &p, err)) != 0)
                goto out;
        } else if (strcmp(type, ANTHV_BLOCK_TOOL_RESULT) == 0) {
            if ((rc = msgreq__tool_result(b, param, msgs, err)) != 0)
                goto out;
            continue;
        } else {
            rc = msgreq__fail(err, param, "'%s' has type '%s', which this gateway does not "
                              "support in a user turn (text, image and tool_result are)",
                              param, type);
            goto out;
        }
        rc = msgreq__push(parts, p);
        p = NULL;
        if (rc != 0)
            goto out;
    }
    rc = 0;
    if (json_object_array_length(parts) == 0)
        goto out;
    if (json_object_array_length(parts) == 1 && ntext == 1)
        rc = msgreq__push(msgs, msgreq__msg("user", json_object_get(json_object_object_get(
                                                json_object_array_get_idx(parts, 0), "text"))));
    else {
        rc = msgreq__push(msgs, msgreq__msg("user", parts));
        parts = NULL;
    }
out:
    json_object_put(p);
    json_object_put(parts);
    return rc;
}

/* A tool_use block -> an OpenAI tool call. */
static int msgreq__tool_use(json_object *b, const char *param, json_object *calls,
                            aip_err_t *err)
{
    const char *id = msgreq__str(b, "id"), *name = msgreq__str(b, "name");
    json_object *input = msgreq__opt(b, "input"), *tc = NULL, *fn = NULL;
    int rc = -ENOMEM;

    char np[160];

    if (!id || !name)
        return msgreq__fail(err, param, "'%s' needs a non-empty 'id' and 'name'", param);
    snprintf(np, sizeof(np), "%s.id", param);
    if (msgreq__no_nul(b, "id", np, err))
        return -EINVAL;
    snprintf(np, sizeof(np), "%s.name", param);
    if (msgreq__no_nul(b, "name", np, err))
        return -EINVAL;
    if (input && !json_object_is_type(input, json_type_object))
        return msgreq__fail(err, param, "'%s.input' must be an object", param);
    tc = json_object_new_object();
    fn = json_object_new_object();
    if (!tc || !fn || msgreq__set(fn, "name", json_object_new_string(name)) != 0 ||
        msgreq__set(fn, "arguments", json_object_new_string(
                        input ? json_object_to_json_string_ext(input, JSON_C_TO_STRING_PLAIN)
                              : "{}")) != 0 ||
        msgreq__set(tc, "id", json_object_new_string(id)) != 0 ||
        msgreq__set(tc, "type", json_object_new_string("function")) != 0)
        goto out;
    json_object_object_add(tc, "function", fn);
    fn = NULL;
    rc = msgreq__push(calls, tc);
    tc = NULL;
out:
    json_object_put(tc);
    json_object_put(fn);
    return rc;
}

/* An assistant turn: text blocks joined, tool_use blocks as tool_calls,
 * thinking blocks dropped (the OpenAI dialect cannot carry them back). */
static int msgreq__assistant(json_object *content, int idx, json_object *msgs,
                             aip_err_t *err)
{
    json_object *calls = NULL, *m = NULL, *text = NULL;
    size_t i, n;
    char param[80];
    json_object *t = NULL;
    int rc = -ENOMEM;

    if (json_object_is_type(content, json_type_string))
        return msgreq__push(msgs, msgreq__msg("assistant", json_object_get(content)));
    calls = json_object_new_array();
    if (!calls)
        goto out;
    n = json_object_array_length(content);
    for (i = 0; i < n; i++) {
        json_object *b = json_object_array_get_idx(content, i);
        const char *type = msgreq__str(b, "type");
        snprintf(param, sizeof(param), "messages[%d].content[%zu]", idx, i);
        if (!type) {
            rc = msgreq__fail(err, param, "'%s' must be an object with a string 'type'", param);
            goto out;
        }
        if (strcmp(type, ANTHV_BLOCK_TEXT) == 0) {
            if ((rc = msgreq__text(b, param, &t, err)) != 0)
                goto out;
            if (text) {
                json_object *joined = NULL;
                buf_t j;
                buf_init(&j, INT_MAX);
                if (msgreq__cat(&j, text) == 0 && msgreq__cat(&j, t) == 0)
                    joined = json_object_new_string_len(j.data ? j.data : "", (int)j.len);
                buf_free(&j);
                if (!joined) {
                    rc = -ENOMEM;
                    goto out;
                }
                json_object_put(text);
                text = joined;
            } else {
                text = json_object_get(t);
            }
        } else if (strcmp(type, ANTHV_BLOCK_TOOL_USE) == 0) {
            if ((rc = msgreq__tool_use(b, param, calls, err)) != 0)
                goto out;
        } else if (strcmp(type, "thinking") != 0 && strcmp(type, "redacted_thinking") != 0) {
            rc = msgreq__fail(err, param, "'%s' has type '%s', which this gateway does not "
                              "support in an assistant turn (text, tool_use and thinking are)",
                              param, type);
            goto out;
        }
    }
    m = msgreq__msg("assistant", text);
    text = NULL;
    if (!m)
        goto out;
    if (json_object_array_length(calls) > 0) {
        json_object_object_add(m, "tool_calls", calls);
        calls = NULL;
    } else if (!json_object_object_get(m, "content") &&
               msgreq__set(m, "content", json_object_new_string("")) != 0) {
        goto out;
    }
    rc = msgreq__push(msgs, m);
    m = NULL;
out:
    json_object_put(text);
    json_object_put(calls);
    json_object_put(m);
    return rc;
}

int msgreq__messages(json_object *in, json_object *out, aip_err_t *err)
{
    json_object *msgs = msgreq__opt(in, "messages");
    size_t i, n;
    char param[48];
    int rc;

    if (!msgs)
        return msgreq__fail(err, "messages", "'messages' is required");
    if (!json_object_is_type(msgs, json_type_array) || json_object_array_length(msgs) == 0)
        return msgreq__fail(err, "messages", "'messages' must be a non-empty array of "
                            "{role, content} turns");
    n = json_object_array_length(msgs);
    for (i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(msgs, i), *content;
        const char *role = msgreq__str(m, "role");
        snprintf(param, sizeof(param), "messages[%zu].role", i);
        if (!role || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0))
            return msgreq__fail(err, param, "'%s' must be \"user\" or \"assistant\" (the system "
                                "prompt is the top-level 'system' field)", param);
        if (msgreq__no_nul(m, "role", param, err))
            return -EINVAL;
        content = msgreq__opt(m, "content");
        snprintf(param, sizeof(param), "messages[%zu].content", i);
        if (!json_object_is_type(content, json_type_string) &&
            !(json_object_is_type(content, json_type_array) &&
              json_object_array_length(content) > 0))
            return msgreq__fail(err, param, "'%s' must be a string or a non-empty array of "
                                "content blocks", param);
        rc = strcmp(role, "user") == 0 ? msgreq__user(content, (int)i, out, err)
                                       : msgreq__assistant(content, (int)i, out, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}
