/* oai — builders of OpenAI response objects. */
#include "fcgi/openai/oai.h"
#include "shared/jget.h"
#include "shared/rid.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

/* Adds `v` under the literal `key` to an object built here, which cannot
 * hold the key yet: json-c then neither copies the key (a strdup per field
 * of every answer and chunk) nor looks it up first. */
static void oai__add(json_object *o, const char *key, json_object *v)
{
    json_object_object_add_ex(o, key, v,
                              JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_KEY_IS_CONSTANT);
}

void oai_new_id(char out[OAI_ID_MAX])
{
    memcpy(out, "chatcmpl-", 9);
    rid_alnum(out + 9, 24);
}

static int oai__has_tool_calls(json_object *message)
{
    json_object *tc = jget_arr(message, "tool_calls");

    return tc && json_object_array_length(tc) > 0;
}

const char *oai_finish_reason(json_object *message, const char *finish_reason)
{
    if (oai__has_tool_calls(message))
        return "tool_calls";
    return finish_reason && *finish_reason ? finish_reason : "stop";
}

static json_object *oai__head(const char *id, long long created, const char *model,
                              const char *object)
{
    json_object *o = json_object_new_object();

    if (!o)
        return NULL;
    oai__add(o, "id", json_object_new_string(id));
    oai__add(o, "object", json_object_new_string(object));
    oai__add(o, "created", json_object_new_int64(created));
    oai__add(o, "model", json_object_new_string(model));
    return o;
}

json_object *oai_completion(const char *id, long long created, const char *model,
                            json_object *message, const char *finish_reason,
                            json_object *usage)
{
    json_object *o = NULL, *msg = NULL, *choice = NULL, *choices = NULL, *res = NULL;

    o = oai__head(id, created, model, "chat.completion");
    msg = json_object_new_object();
    choice = json_object_new_object();
    choices = json_object_new_array();
    if (!o || !msg || !choice || !choices)
        goto out;
    /* A copy of the message with role and content always present. */
    oai__add(msg, "role", json_object_new_string("assistant"));
    if (message) {
        json_object_object_foreach(message, k, v) {
            if (strcmp(k, "role") != 0)
                json_object_object_add(msg, k, json_object_get(v));
        }
    }
    if (!json_object_object_get_ex(msg, "content", NULL))
        oai__add(msg, "content", NULL);
    oai__add(choice, "index", json_object_new_int(0));
    oai__add(choice, "message", msg);
    msg = NULL;
    oai__add(choice, "logprobs", NULL);
    oai__add(choice, "finish_reason",
                           json_object_new_string(oai_finish_reason(message, finish_reason)));
    json_object_array_add(choices, choice);
    choice = NULL;
    oai__add(o, "choices", choices);
    choices = NULL;
    oai__add(o, "usage", usage ? json_object_get(usage) : NULL);
    oai__add(o, "system_fingerprint", NULL);
    res = o;
    o = NULL;
out:
    json_object_put(o);
    json_object_put(msg);
    json_object_put(choice);
    json_object_put(choices);
    return res;
}


/* 1 when `message` is already what oai_completion makes of it: its first
 * member "role": "assistant", and a "content" member (the agent's messages
 * are built that way, agent.c). */
static int oai__message_as_is(json_object *message)
{
    struct lh_entry *e;
    json_object *v;

    if (!message || !json_object_is_type(message, json_type_object) ||
        !json_object_object_get_ex(message, "content", NULL))
        return 0;
    e = json_object_get_object(message)->head;
    if (!e || strcmp((const char *)lh_entry_k(e), "role") != 0)
        return 0;
    v = (json_object *)lh_entry_v(e);
    return json_object_is_type(v, json_type_string) &&
           strcmp(json_object_get_string(v), "assistant") == 0;
}

/* 1 when every member of object `o` is a string, an integer, a boolean or
 * null: oai__put_flat writes those as json-c does. */
static int oai__flat(json_object *o)
{
    if (!json_object_is_type(o, json_type_object))
        return 0;
    json_object_object_foreach(o, k, v) {
        (void)k;
        if (v && !json_object_is_type(v, json_type_string) &&
            !json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_boolean))
            return 0;
    }
    return 1;
}

/* A flat object (oai__flat) byte for byte as json-c writes it (plain, no
 * slash escaping), without json-c's printbuf: the answer's message and usage
 * are such objects. */
static int oai__put_flat(buf_t *out, json_object *o)
{
    const char *sep = "{";
    int rc = 0;

    json_object_object_foreach(o, k, v) {
        if (rc == 0)
            rc = buf_puts(out, sep);
        if (rc == 0)
            rc = buf_json_str(out, k, strlen(k));
        if (rc == 0)
            rc = buf_append(out, ":", 1);
        if (rc != 0)
            break;
        if (!v)
            rc = buf_append(out, "null", 4);
        else if (json_object_is_type(v, json_type_string))
            rc = buf_json_str(out, json_object_get_string(v), (size_t)json_object_get_string_len(v));
        else if (json_object_is_type(v, json_type_int))
            rc = buf_printf(out, "%" PRId64, json_object_get_int64(v));
        else
            rc = buf_puts(out, json_object_get_boolean(v) ? "true" : "false");
        sep = ",";
    }
    if (rc == 0)
        rc = buf_puts(out, *sep == '{' ? "{}" : "}");
    return rc;
}

static int oai__put_json(buf_t *out, json_object *o)
{
    size_t len = 0;
    const char *s;

    if (!o)
        return buf_append(out, "null", 4);
    if (oai__flat(o))
        return oai__put_flat(out, o);
    s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    return s ? buf_append(out, s, len) : -ENOMEM;
}

int oai_completion_text(buf_t *out, const char *id, long long created, const char *model,
                        json_object *message, const char *finish_reason, json_object *usage)
{
    const char *fr = oai_finish_reason(message, finish_reason);
    int rc;

    if (!oai__message_as_is(message))
        return -EAGAIN;
    /* the frame and a short message in one allocation (a longer one grows;
     * a failed reservation changes nothing: the appends say what fits) */
    (void)buf_reserve(out, 480);
    rc = buf_puts(out, "{\"id\":");
    if (rc == 0)
        rc = buf_json_str(out, id, strlen(id));
    if (rc == 0)
        rc = buf_printf(out, ",\"object\":\"chat.completion\",\"created\":%lld,\"model\":",
                        created);
    if (rc == 0)
        rc = buf_json_str(out, model, strlen(model));
    if (rc == 0)
        rc = buf_puts(out, ",\"choices\":[{\"index\":0,\"message\":");
    if (rc == 0)
        rc = oai__put_json(out, message);
    if (rc == 0)
        rc = buf_puts(out, ",\"logprobs\":null,\"finish_reason\":");
    if (rc == 0)
        rc = buf_json_str(out, fr, strlen(fr));
    if (rc == 0)
        rc = buf_puts(out, "}],\"usage\":");
    if (rc == 0)
        rc = oai__put_json(out, usage);
    if (rc == 0)
        rc = buf_puts(out, ",\"system_fingerprint\":null}");
    return rc;
}

json_object *oai_chunk(const char *id, long long created, const char *model,
                       json_object *delta, const char *finish_reason, int usage_null)
{
    json_object *o = NULL, *choice = NULL, *choices = NULL, *res = NULL;

    if (!delta)
        delta = json_object_new_object();
    o = oai__head(id, created, model, "chat.completion.chunk");
    choice = json_object_new_object();
    choices = json_object_new_array();
    if (!o || !choice || !choices || !delta)
        goto out;
    oai__add(choice, "index", json_object_new_int(0));
    oai__add(choice, "delta", delta);
    delta = NULL;
    oai__add(choice, "logprobs", NULL);
    oai__add(choice, "finish_reason",
                           finish_reason ? json_object_new_string(finish_reason) : NULL);
    json_object_array_add(choices, choice);
    choice = NULL;
    oai__add(o, "choices", choices);
    choices = NULL;
    if (usage_null)
        oai__add(o, "usage", NULL);
    res = o;
    o = NULL;
out:
    json_object_put(delta);
    json_object_put(o);
    json_object_put(choice);
    json_object_put(choices);
    return res;
}

json_object *oai_usage_chunk(const char *id, long long created, const char *model,
                             json_object *usage)
{
    json_object *o = oai__head(id, created, model, "chat.completion.chunk");

    if (!o)
        return NULL;
    oai__add(o, "choices", json_object_new_array());
    if (usage) {
        oai__add(o, "usage", json_object_get(usage));
    } else {
        json_object *u = json_object_new_object();
        oai__add(u, "prompt_tokens", json_object_new_int(0));
        oai__add(u, "completion_tokens", json_object_new_int(0));
        oai__add(u, "total_tokens", json_object_new_int(0));
        oai__add(o, "usage", u);
    }
    return o;
}

json_object *oai_tool_calls_delta(json_object *message)
{
    json_object *tcs = NULL, *delta = NULL, *arr = NULL, *res = NULL;
    size_t i, n;

    if (!oai__has_tool_calls(message))
        return NULL;
    json_object_object_get_ex(message, "tool_calls", &tcs);
    delta = json_object_new_object();
    arr = json_object_new_array();
    if (!delta || !arr)
        goto out;
    n = json_object_array_length(tcs);
    for (i = 0; i < n; i++) {
        json_object *tc = json_object_array_get_idx(tcs, i), *fn = NULL, *v = NULL;
        json_object *d = json_object_new_object(), *dfn = json_object_new_object();
        if (!d || !dfn) {
            json_object_put(d);
            json_object_put(dfn);
            goto out;
        }
        oai__add(d, "index", json_object_new_int((int)i));
        oai__add(d, "id", json_object_object_get_ex(tc, "id", &v)
                                            ? json_object_get(v) : json_object_new_string(""));
        oai__add(d, "type", json_object_new_string("function"));
        json_object_object_get_ex(tc, "function", &fn);
        oai__add(dfn, "name", json_object_object_get_ex(fn, "name", &v)
                                                ? json_object_get(v) : json_object_new_string(""));
        oai__add(dfn, "arguments",
                               json_object_object_get_ex(fn, "arguments", &v)
                                   ? json_object_get(v) : json_object_new_string("{}"));
        oai__add(d, "function", dfn);
        json_object_array_add(arr, d);
    }
    oai__add(delta, "tool_calls", arr);
    arr = NULL;
    res = delta;
    delta = NULL;
out:
    json_object_put(arr);
    json_object_put(delta);
    return res;
}

int oai_sse_event(buf_t *out, json_object *obj)
{
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    int rc;

    if (!s)
        return -ENOMEM;
    rc = buf_append(out, "data: ", 6);
    if (rc == 0)
        rc = buf_append(out, s, len);
    if (rc == 0)
        rc = buf_append(out, "\n\n", 2);
    return rc;
}

static json_object *oai__field_copy(json_object *from, const char *key, json_type want,
                                    json_object *fallback)
{
    json_object *v = jget_typed(from, key, want);

    if (v) {
        json_object_put(fallback);
        return json_object_get(v);
    }
    return fallback;
}

json_object *oai_model(const char *name, json_object *assistant, long long created)
{
    json_object *o = json_object_new_object();

    if (!o)
        return NULL;
    oai__add(o, "id", json_object_new_string(name));
    oai__add(o, "object", json_object_new_string("model"));
    oai__add(o, "created", json_object_new_int64(created));
    oai__add(o, "owned_by", json_object_new_string("aiproxy"));
    oai__add(o, "description",
                           oai__field_copy(assistant, "description", json_type_string,
                                           json_object_new_string("")));
    oai__add(o, "backend",
                           oai__field_copy(assistant, "backend", json_type_string, NULL));
    oai__add(o, "mcp_servers",
                           oai__field_copy(assistant, "mcp_servers", json_type_array,
                                           json_object_new_array()));
    return o;
}
