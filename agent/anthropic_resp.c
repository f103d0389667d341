/* anthropic_resp — a whole Messages API answer, or an error body, in the
 * loop's canonical (OpenAI) vocabulary. No I/O. */
#include "agent/anthropic.h"
#include "agent/anthvocab.h"
#include "shared/sat.h"
#include "shared/jtext.h"
#include "shared/jget.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

long anth__prompt_tokens(json_object *usage, int *present)
{
    static const char *const keys[] = {"input_tokens", "cache_creation_input_tokens",
                                       "cache_read_input_tokens"};
    json_object *v = NULL;
    long sum = 0, n;
    size_t i;

    if (present)
        *present = 0;
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (!(v = jget_typed(usage, keys[i], json_type_int)))
            continue;
        if (present)
            *present = 1;
        n = (long)json_object_get_int64(v);
        if (n > 0)
            sum = sat_add_i64(sum, n);
    }
    return sum;
}

/* A tool_use block as an OpenAI tool call, appended to turn->tool_calls. */
static int resp__tool_call(be_turn_t *turn, json_object *block, char *err, size_t errlen)
{
    const char *id = jget_str(block, "id"), *name = jget_str(block, "name");
    json_object *input = NULL, *tc, *fn;
    int rc = 0;

    if (!id || !name) {
        snprintf(err, errlen, "anthropic answer: a tool_use block lacks its id or name");
        rc = -EPROTO;
        goto out;
    }
    json_object_object_get_ex(block, "input", &input);
    if (!turn->tool_calls)
        turn->tool_calls = json_object_new_array();
    fn = json_object_new_object();
    json_object_object_add(fn, "name", json_object_new_string(name));
    json_object_object_add(fn, "arguments", json_object_new_string(
        input && json_object_is_type(input, json_type_object)
            ? json_object_to_json_string_ext(input, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
            : "{}"));
    tc = json_object_new_object();
    json_object_object_add(tc, "id", json_object_new_string(id));
    json_object_object_add(tc, "type", json_object_new_string("function"));
    json_object_object_add(tc, "function", fn);
    json_object_array_add(turn->tool_calls, tc);
out:
    return rc;
}

int anth_parse(const char *body, size_t len, be_turn_t *turn, char *err, size_t errlen)
{
    json_object *root = NULL, *content = NULL, *usage = NULL;
    const char *type;
    int rc = -EPROTO;

    /* as written: a tool_use input's big integers keep their text on the
     * way to the MCP server */
    root = jtext_parse_peer(body, len);
    if (!root || !json_object_is_type(root, json_type_object)) {
        snprintf(err, errlen, "anthropic answer: not a JSON object");
        goto out;
    }
    type = jget_str(root, "type");
    if (type && strcmp(type, "error") == 0) {
        json_object *e = NULL;
        json_object_object_get_ex(root, "error", &e);
        snprintf(err, errlen, "anthropic answer: %s", jget_str(e, "message") ? jget_str(e, "message") : "error");
        goto out;
    }
    if (!json_object_object_get_ex(root, "content", &content) || !json_object_is_type(content, json_type_array)) {
        snprintf(err, errlen, "anthropic answer: no content array");
        goto out;
    }
    for (size_t i = 0; i < json_object_array_length(content); i++) {
        json_object *b = json_object_array_get_idx(content, i), *t = NULL;
        const char *bt = jget_str(b, "type");
        if (!bt)
            continue;
        if (strcmp(bt, ANTHV_BLOCK_TEXT) == 0 && json_object_object_get_ex(b, "text", &t)) {
            if (buf_append(&turn->content, json_object_get_string(t), (size_t)json_object_get_string_len(t))) {
                snprintf(err, errlen, "anthropic answer: text larger than the %zu-byte cap",
                         turn->content.max);
                goto out;
            }
        } else if (strcmp(bt, ANTHV_BLOCK_TOOL_USE) == 0) {
            if (resp__tool_call(turn, b, err, errlen))
                goto out;
        } /* thinking, redacted_thinking, server tool blocks: not for the client */
    }
    snprintf(turn->finish_reason, sizeof turn->finish_reason, "%s",
             anthv_finish_reason(jget_str(root, "stop_reason")));
    if ((usage = jget_obj(root, "usage"))) {
        /* OpenAI's prompt_tokens include cached input; Anthropic counts cache
         * reads and writes apart from input_tokens. */
        turn->prompt_tokens = anth__prompt_tokens(usage, NULL);
        turn->completion_tokens = (long)jget_int64(usage, "output_tokens", 0);
        turn->has_usage = 1;
    }
    rc = 0;
out:
    json_object_put(root);
    return rc;
}

void anth_error(int status, const char *body, size_t len, int *status_out, char *type,
                size_t typelen, char *msg, size_t msglen)
{
    json_tokener *tok = json_tokener_new();
    json_object *root = NULL, *e = NULL;
    const char *atype = NULL, *amsg = NULL, *otype = "api_error";

    if (tok && body && len) {
        root = json_tokener_parse_ex(tok, body, (int)len);
        if (json_tokener_get_error(tok) != json_tokener_success) {
            json_object_put(root);
            root = NULL;
        }
    }
    if (root && json_object_object_get_ex(root, "error", &e)) {
        if (json_object_is_type(e, json_type_object)) {
            atype = jget_str(e, "type");
            amsg = jget_str(e, "message");
        } else if (json_object_is_type(e, json_type_string)) {
            amsg = json_object_get_string(e);
        }
    }
    anthv_error_kind(atype, status, status_out, &otype);
    snprintf(type, typelen, "%s", otype);
    if (amsg && *amsg)
        snprintf(msg, msglen, "%s", amsg);
    else
        snprintf(msg, msglen, "the anthropic upstream answered HTTP %d without an error message "
                 "(check the backend's base_url and api_key)", status);
    json_object_put(root);
    if (tok)
        json_tokener_free(tok);
}
