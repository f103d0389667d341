/* anthropic_msgs — the OpenAI `messages` array as Messages API `system` and
 * alternating user/assistant turns of content blocks. No I/O. The rules are
 * listed in docs/anthropic.md. */
#include "agent/anthropic.h"
#include "agent/anthvocab.h"
#include "shared/jtext.h"
#include "shared/caps.h"
#include "shared/jget.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int anth__fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static json_object *msgs__text_block(const char *text, size_t len)
{
    json_object *b = json_object_new_object();
    json_object_object_add(b, "type", json_object_new_string(ANTHV_BLOCK_TEXT));
    json_object_object_add(b, "text", json_object_new_string_len(text, (int)len));
    return b;
}

/* An image_url part as an image block: data: URLs become base64 sources with
 * their media type, anything else a url source. */
static int msgs__image(json_object *part, json_object *blocks, const char *where, char *err,
                      size_t errlen)
{
    json_object *iu = NULL;
    const char *url = NULL;
    json_object *src = NULL, *b = NULL;
    int rc = -EINVAL;

    if (json_object_object_get_ex(part, "image_url", &iu)) {
        if (json_object_is_type(iu, json_type_string))
            url = json_object_get_string(iu);
        else
            url = jget_str(iu, "url");
    }
    if (!url || !*url) {
        rc = anth__fail(err, errlen, "%s.image_url.url: missing", where);
        goto out;
    }
    src = json_object_new_object();
    if (strncasecmp(url, "data:", 5) == 0) {
        const char *comma = strchr(url, ',');
        const char *semi = memchr(url + 5, ';', comma ? (size_t)(comma - url - 5) : 0);
        if (!comma || !semi || strncmp(semi, ";base64,", 8) != 0 || semi == url + 5) {
            rc = anth__fail(err, errlen,
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
    json_object_object_add(b, "type", json_object_new_string(ANTHV_BLOCK_IMAGE));
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
static int msgs__content(json_object *content, json_object *blocks, int images,
                        const char *where, char *err, size_t errlen)
{
    int rc = 0;

    if (!content || json_object_is_type(content, json_type_null))
        goto out;
    if (json_object_is_type(content, json_type_string)) {
        size_t n = (size_t)json_object_get_string_len(content);
        if (n)
            json_object_array_add(blocks, msgs__text_block(json_object_get_string(content), n));
        goto out;
    }
    if (!json_object_is_type(content, json_type_array)) {
        rc = anth__fail(err, errlen, "%s: must be a string or an array of parts", where);
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
                rc = anth__fail(err, errlen, "%s.%s: must be a string", pw, key);
            else if (json_object_get_string_len(tx))
                json_object_array_add(blocks, msgs__text_block(json_object_get_string(tx),
                                                              (size_t)json_object_get_string_len(tx)));
        } else if (strcmp(type, "image_url") == 0 && images) {
            rc = msgs__image(part, blocks, pw, err, errlen);
        } else {
            rc = anth__fail(err, errlen, "%s: content part type '%s' is not supported by "
                           "the anthropic backend (use text%s)", pw, type,
                           images ? " or image_url" : "");
        }
    }
out:
    return rc;
}

/* The content array of the turn to append to: the last one when it has the
 * same role (the API wants user and assistant to alternate), else a new one. */
static json_object *msgs__turn(json_object *msgs, const char *role)
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
static void msgs__append(json_object *to, json_object *from)
{
    for (size_t i = 0; i < json_object_array_length(from); i++)
        json_object_array_add(to, json_object_get(json_object_array_get_idx(from, i)));
}

/* Assistant tool_calls as tool_use blocks; arguments that are not a JSON
 * object become {} (input must be an object). */
static int msgs__tool_uses(json_object *calls, json_object *blocks, const char *where, char *err,
                          size_t errlen)
{
    int rc = 0;

    if (!calls || json_object_is_type(calls, json_type_null))
        goto out;
    if (!json_object_is_type(calls, json_type_array)) {
        rc = anth__fail(err, errlen, "%s.tool_calls: must be an array", where);
        goto out;
    }
    for (size_t i = 0; i < json_object_array_length(calls); i++) {
        json_object *tc = json_object_array_get_idx(calls, i), *id = NULL, *fn = NULL, *nm = NULL,
                    *args = NULL, *input = NULL, *b;
        char pe[160];
        json_object_object_get_ex(tc, "id", &id);
        json_object_object_get_ex(tc, "function", &fn);
        if (fn)
            json_object_object_get_ex(fn, "name", &nm);
        if (!id || !nm || !json_object_is_type(id, json_type_string) ||
            !json_object_is_type(nm, json_type_string)) {
            rc = anth__fail(err, errlen, "%s.tool_calls[%zu]: needs an id and a function.name", where, i);
            goto out;
        }
        if (json_object_object_get_ex(fn, "arguments", &args) &&
            json_object_is_type(args, json_type_string) &&
            jtext_parse(json_object_get_string(args), (size_t)json_object_get_string_len(args),
                        JSON_TOKENER_DEFAULT_DEPTH, &input, pe, sizeof pe) != 0)
            input = NULL;   /* as written: big integers keep their text */
        if (input && !json_object_is_type(input, json_type_object)) {
            json_object_put(input);
            input = NULL;
        }
        b = json_object_new_object();
        json_object_object_add(b, "type", json_object_new_string(ANTHV_BLOCK_TOOL_USE));
        json_object_object_add(b, "id", json_object_get(id));
        json_object_object_add(b, "name", json_object_get(nm));
        json_object_object_add(b, "input", input ? input : json_object_new_object());
        json_object_array_add(blocks, b);
    }
out:
    return rc;
}

static int msgs__tool_result(json_object *m, json_object *blocks, const char *where, char *err,
                            size_t errlen)
{
    json_object *id = NULL, *content = NULL, *b = NULL, *parts = NULL;
    char cw[128];
    int rc = 0;

    if (!json_object_object_get_ex(m, "tool_call_id", &id) || !json_object_is_type(id, json_type_string)) {
        rc = anth__fail(err, errlen, "%s.tool_call_id: missing", where);
        goto out;
    }
    json_object_object_get_ex(m, "content", &content);
    b = json_object_new_object();
    json_object_object_add(b, "type", json_object_new_string(ANTHV_BLOCK_TOOL_RESULT));
    json_object_object_add(b, "tool_use_id", json_object_get(id));
    if (content && json_object_is_type(content, json_type_string)) {
        if (json_object_get_string_len(content))
            json_object_object_add(b, "content", json_object_get(content));
    } else if (content && !json_object_is_type(content, json_type_null)) {
        snprintf(cw, sizeof cw, "%s.content", where);
        parts = json_object_new_array();
        if ((rc = msgs__content(content, parts, 1, cw, err, errlen)))
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
static int msgs__system(json_object *m, buf_t *sys, const char *where, char *err, size_t errlen)
{
    json_object *c = NULL, *parts = json_object_new_array();
    int rc;
    json_object_object_get_ex(m, "content", &c);
    rc = msgs__content(c, parts, 0, where, err, errlen);
    for (size_t i = 0; rc == 0 && i < json_object_array_length(parts); i++) {
        json_object *t = NULL;
        json_object_object_get_ex(json_object_array_get_idx(parts, i), "text", &t);
        if ((sys->len && buf_puts(sys, "\n\n")) ||
            buf_append(sys, json_object_get_string(t), (size_t)json_object_get_string_len(t)))
            rc = anth__fail(err, errlen, "system messages: too large");
    }
    json_object_put(parts);
    return rc;
}

int anth__messages(json_object *req, json_object *out, char *err, size_t errlen)
{
    json_object *in = NULL, *msgs = json_object_new_array(), *blocks = NULL;
    buf_t sys;
    int rc = -EINVAL;

    buf_init(&sys, CAP_ANTH_SYSTEM);
    if (!json_object_object_get_ex(req, "messages", &in) || !json_object_is_type(in, json_type_array)) {
        rc = anth__fail(err, errlen, "messages: must be an array");
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
            rc = msgs__system(m, &sys, cw, err, errlen);
        } else if (strcmp(role, "user") == 0 || strcmp(role, "assistant") == 0) {
            char cw[80];
            int user = role[0] == 'u';
            snprintf(cw, sizeof cw, "%s.content", where);
            json_object_put(blocks);
            blocks = json_object_new_array();
            rc = msgs__content(c, blocks, user, cw, err, errlen);
            json_object_object_get_ex(m, "tool_calls", &tc);
            if (rc == 0 && !user)
                rc = msgs__tool_uses(tc, blocks, where, err, errlen);
            /* A message with nothing to say adds no turn: the API refuses
             * empty content. The API wants the conversation to open with a
             * user turn. */
            if (rc == 0 && json_object_array_length(blocks)) {
                if (!user && json_object_array_length(msgs) == 0)
                    json_object_array_add(msgs__turn(msgs, "user"), msgs__text_block(".", 1));
                msgs__append(msgs__turn(msgs, role), blocks);
            }
        } else if (strcmp(role, "tool") == 0) {
            rc = msgs__tool_result(m, msgs__turn(msgs, "user"), where, err, errlen);
        } else {
            rc = anth__fail(err, errlen, "%s.role: '%s' is not supported by the anthropic backend "
                           "(use system, developer, user, assistant or tool)", where, role);
        }
        if (rc)
            goto out;
    }
    if (json_object_array_length(msgs) == 0) {
        rc = anth__fail(err, errlen, "messages: needs at least one user or assistant message");
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
