/* sampling — createMessage through the assistant's backend (see sampling.h). */
#include "agent/sampling.h"
#include "shared/buf.h"
#include "shared/caps.h"
#include "shared/jget.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define SMP_MAX_MESSAGES 256     /* a sampling conversation longer than this is refused */

int smp_allowed(json_object *assistant)
{
    json_object *v = jget(assistant, "allow_sampling");

    return !(v && json_object_is_type(v, json_type_boolean) && !json_object_get_boolean(v));
}

/* One MCP content block (or an array of them, 2025-11-25) as text appended
 * to out. 0, -EINVAL (unknown shape) or -ENOMEM. */
static int smp__text(json_object *content, buf_t *out)
{
    const char *type, *mime;

    if (content && json_object_is_type(content, json_type_array)) {
        size_t n = json_object_array_length(content);
        for (size_t i = 0; i < n; i++) {
            int rc = smp__text(json_object_array_get_idx(content, i), out);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    type = jget_str(content, "type");
    if (!type)
        return -EINVAL;
    if (out->len && buf_append(out, "\n", 1) < 0)
        return -ENOMEM;
    if (strcmp(type, "text") == 0) {
        const char *t = jget_str(content, "text");
        return buf_append(out, t ? t : "", t ? strlen(t) : 0) < 0 ? -ENOMEM : 0;
    }
    if (strcmp(type, "image") == 0 || strcmp(type, "audio") == 0) {
        char line[160];
        mime = jget_str(content, "mimeType");
        snprintf(line, sizeof line, "[%s %.100s content omitted]", type, mime ? mime : "");
        return buf_append(out, line, strlen(line)) < 0 ? -ENOMEM : 0;
    }
    /* tool_use / tool_result blocks need tools, which sampling here never offers */
    return -EINVAL;
}

static int smp__message(json_object *msgs, const char *role, const char *text, size_t len)
{
    json_object *m = json_object_new_object();

    if (!m)
        return -ENOMEM;
    json_object_object_add(m, "role", json_object_new_string(role));
    json_object_object_add(m, "content", json_object_new_string_len(text, (int)len));
    json_object_array_add(msgs, m);
    return 0;
}

int smp_request(json_object *assistant, json_object *params, json_object **req, char *err,
                size_t errlen)
{
    json_object *out = NULL, *msgs, *in, *v;
    const char *sys;
    int64_t max;
    size_t n;
    buf_t text;
    int rc = -EINVAL;

    *req = NULL;
    buf_init(&text, CAP_AG_CONTENT);
    in = jget_arr(params, "messages");
    if (!in || (n = json_object_array_length(in)) == 0 || n > SMP_MAX_MESSAGES) {
        snprintf(err, errlen, "messages: must be an array of 1 to %d messages", SMP_MAX_MESSAGES);
        goto out;
    }
    v = jget_typed(params, "maxTokens", json_type_int);
    if (!v || (max = json_object_get_int64(v)) < 1) {
        snprintf(err, errlen, "maxTokens: must be a positive integer");
        goto out;
    }
    if ((v = jget_typed(assistant, "max_tokens", json_type_int)) && json_object_get_int64(v) > 0 &&
        json_object_get_int64(v) < max)
        max = json_object_get_int64(v);
    rc = -ENOMEM;
    if (!(out = json_object_new_object()) || !(msgs = json_object_new_array()))
        goto out;
    json_object_object_add(out, "messages", msgs);
    if (!(v = jget(assistant, "model")))
        goto out;
    json_object_object_add(out, "model", json_object_get(v));
    json_object_object_add(out, "max_tokens", json_object_new_int64(max));
    if ((v = jget(params, "temperature")) &&
        (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
        json_object_object_add(out, "temperature", json_object_get(v));
    if ((v = jget_arr(params, "stopSequences")) && json_object_array_length(v) > 0)
        json_object_object_add(out, "stop", json_object_get(v));
    if ((sys = jget_str(params, "systemPrompt")) && *sys &&
        smp__message(msgs, "system", sys, strlen(sys)) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(in, i);
        const char *role = jget_str(m, "role");
        int r;
        if (!role || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)) {
            snprintf(err, errlen, "messages[%zu].role: must be \"user\" or \"assistant\"", i);
            rc = -EINVAL;
            goto out;
        }
        buf_reset(&text);
        if ((r = smp__text(jget(m, "content"), &text)) < 0) {
            if (r == -EINVAL)
                snprintf(err, errlen, "messages[%zu].content: only text, image and audio blocks "
                         "are supported", i);
            rc = r;
            goto out;
        }
        if (smp__message(msgs, role, buf_str(&text), text.len) < 0)
            goto out;
    }
    *req = out;
    out = NULL;
    rc = 0;
out:
    if (rc == -ENOMEM && !err[0])
        snprintf(err, errlen, "out of memory");
    buf_free(&text);
    json_object_put(out);
    return rc;
}

/* The MCP stopReason for an OpenAI finish_reason. */
static const char *smp__stop(const char *finish)
{
    if (!finish[0] || strcmp(finish, "stop") == 0)
        return "endTurn";
    if (strcmp(finish, "length") == 0)
        return "maxTokens";
    return finish;
}

int smp_answer(const smp_ctx_t *x, json_object *params, long long left_ms, json_object **result,
               char *err, size_t errlen)
{
    json_object *req = NULL, *res = NULL, *content = NULL;
    up_call_t call;
    be_turn_t turn;
    aip_err_t e;
    int rc;

    *result = NULL;
    err[0] = '\0';
    be_turn_init(&turn, CAP_AG_TURN_CONTENT);
    aip_err_clear(&e);
    if (!smp_allowed(x->assistant)) {
        snprintf(err, errlen, "sampling/createMessage refused: assistant '%s' does not allow sampling "
                 "(allow_sampling: false)", x->assistant_name);
        rc = -EPERM;
        goto out;
    }
    if (left_ms <= 0) {
        snprintf(err, errlen, "sampling/createMessage refused: the tool call has no time left");
        rc = -ETIMEDOUT;
        goto out;
    }
    if ((rc = smp_request(x->assistant, params, &req, err, errlen)) < 0) {
        if (rc == -EINVAL) {
            char why[256];
            snprintf(why, sizeof why, "%s", err);
            snprintf(err, errlen, "sampling/createMessage: %s", why);
        }
        goto out;
    }
    memset(&call, 0, sizeof(call));
    call.be = x->be;
    call.backend_name = x->backend_name;
    call.backend = x->backend;
    call.req = req;
    call.alive = x->alive;
    call.ud = x->ud;
    call.request_id = x->request_id;
    if ((rc = up_turn(x->up, &call, &turn, &e)) < 0) {
        snprintf(err, errlen, "sampling/createMessage: the assistant's backend failed: %s", e.msg);
        goto out;
    }
    rc = -ENOMEM;
    if (!(res = json_object_new_object()) || !(content = json_object_new_object()))
        goto out;
    json_object_object_add(content, "type", json_object_new_string("text"));
    json_object_object_add(content, "text", json_object_new_string_len(turn.content.data ? turn.content.data : "",
                                                                       (int)turn.content.len));
    json_object_object_add(res, "role", json_object_new_string("assistant"));
    json_object_object_add(res, "content", content);
    content = NULL;
    json_object_object_add(res, "model", json_object_get(jget(req, "model")));
    json_object_object_add(res, "stopReason", json_object_new_string(smp__stop(turn.finish_reason)));
    *result = res;
    res = NULL;
    rc = 0;
out:
    if (rc == -ENOMEM && !err[0])
        snprintf(err, errlen, "sampling/createMessage: out of memory");
    be_turn_clear(&turn);
    json_object_put(content);
    json_object_put(res);
    json_object_put(req);
    return rc;
}
