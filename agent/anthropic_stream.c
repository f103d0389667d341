/* anthropic_stream — Messages API SSE events into the same canonical turn
 * (and content sink calls) the OpenAI backend produces. No I/O: upstream.c
 * feeds it one event at a time. */
#include "agent/anthropic.h"
#include "agent/anthvocab.h"
#include "shared/jget.h"
#include "shared/caps.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct anth_stream {
    be_turn_t *turn;             /* borrowed, filled as events arrive */
    be_sink_t sink;              /* copy; content may be NULL */
    long block;                  /* index of the open content block, -1 if none */
    json_object *call;           /* borrowed: the open block's tool call, or NULL */
    buf_t args;                  /* the open tool call's arguments so far */
    size_t args_total;           /* over every call, against CAP_ANTH_STREAM_ARGS */
    json_tokener *tok;           /* reused for every event */
} anth_stream_t;

void *anth_stream_new(be_turn_t *turn, const be_sink_t *sink)
{
    anth_stream_t *s = calloc(1, sizeof *s);

    if (!s || !(s->tok = json_tokener_new()))
        goto fail;
    s->turn = turn;
    if (sink)
        s->sink = *sink;
    s->block = -1;
    buf_init(&s->args, CAP_ANTH_STREAM_ARGS);
    return s;
fail:
    free(s);
    return NULL;
}

static void stream__flush(anth_stream_t *s);

void anth_stream_free(void *st)
{
    anth_stream_t *s = st;

    if (s) {
        stream__flush(s); /* a stream cut inside a tool block still yields its call */
        buf_free(&s->args);
        json_tokener_free(s->tok);
        free(s);
    }
}

/* Called only when message_stop never came (it makes stream_event return 1):
 * whatever else arrived, even a stop_reason, the message is cut. */
int anth_stream_end(void *st, char *err, size_t errlen)
{
    (void)st;
    snprintf(err, errlen, "the anthropic stream ended without message_stop: the answer is cut");
    return -EPROTO;
}

static void stream__usage(anth_stream_t *s, json_object *usage)
{
    json_object *out = jget_typed(usage, "output_tokens", json_type_int);
    int present = 0;
    long prompt = anth__prompt_tokens(usage, &present);

    /* prompt_tokens include cached input, as OpenAI counts them */
    if (present)
        s->turn->prompt_tokens = prompt;
    if (out) /* cumulative in message_delta */
        s->turn->completion_tokens = (long)json_object_get_int64(out);
    if (present || out)
        s->turn->has_usage = 1;
}

/* Text of the open block: into the turn and to the sink. */
static int stream__text(anth_stream_t *s, json_object *t, char *err, size_t errlen)
{
    size_t n = t ? (size_t)json_object_get_string_len(t) : 0;
    int rc = 0;

    if (!n)
        goto out;
    if (buf_append(&s->turn->content, json_object_get_string(t), n)) {
        snprintf(err, errlen, "anthropic stream: text larger than the %zu-byte cap",
                 s->turn->content.max);
        rc = -EPROTO;
    } else if (s->sink.content && s->sink.content(s->sink.ud, json_object_get_string(t), n)) {
        snprintf(err, errlen, "the client went away");
        rc = -ECANCELED;
    }
out:
    return rc;
}

/* A tool_use block opens a new call at the next index. Its arguments are
 * "{}" until input_json_delta says otherwise (a tool without input streams no
 * delta at all); a proxy that sends the whole input here and no deltas is
 * taken at its word. */
static int stream__tool_start(anth_stream_t *s, json_object *cb, char *err, size_t errlen)
{
    json_object *in = jget_typed(cb, "input", json_type_object), *tc, *fn;
    const char *id = jget_str(cb, "id"), *name = jget_str(cb, "name");
    int rc = 0;

    if (!id || !name) {
        snprintf(err, errlen, "anthropic stream: a tool_use block lacks its id or name");
        rc = -EPROTO;
        goto out;
    }
    if (!s->turn->tool_calls)
        s->turn->tool_calls = json_object_new_array();
    fn = json_object_new_object();
    json_object_object_add(fn, "name", json_object_new_string(name));
    json_object_object_add(fn, "arguments", json_object_new_string(
        in && json_object_object_length(in)
            ? json_object_to_json_string_ext(in, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
            : "{}"));
    tc = json_object_new_object();
    json_object_object_add(tc, "id", json_object_new_string(id));
    json_object_object_add(tc, "type", json_object_new_string("function"));
    json_object_object_add(tc, "function", fn);
    json_object_array_add(s->turn->tool_calls, tc);
    s->call = fn;
out:
    return rc;
}

static int stream__block_start(anth_stream_t *s, json_object *ev, char *err, size_t errlen)
{
    json_object *idx = jget_typed(ev, "index", json_type_int);
    json_object *cb = jget_typed(ev, "content_block", json_type_object);
    const char *type = jget_str(cb, "type");
    int rc = 0;

    if (!idx || !type) {
        snprintf(err, errlen, "anthropic stream: content_block_start without index or type");
        rc = -EPROTO;
        goto out;
    }
    s->block = (long)json_object_get_int64(idx);
    s->call = NULL;
    buf_reset(&s->args);
    if (strcmp(type, ANTHV_BLOCK_TEXT) == 0) /* usually opens empty; text here still counts */
        rc = stream__text(s, jget_typed(cb, "text", json_type_string), err, errlen);
    else if (strcmp(type, ANTHV_BLOCK_TOOL_USE) == 0)
        rc = stream__tool_start(s, cb, err, errlen);
    /* thinking, redacted_thinking, server tools: not for the client */
out:
    return rc;
}

/* Writes the open call's accumulated arguments into the turn. Done when the
 * block (or the message) ends rather than per piece, so arguments are copied
 * once, not once per delta. */
static void stream__flush(anth_stream_t *s)
{
    if (s->call && s->args.len)
        json_object_object_add(s->call, "arguments",
                               json_object_new_string_len(s->args.data, (int)s->args.len));
}

static int stream__block_delta(anth_stream_t *s, json_object *ev, char *err, size_t errlen)
{
    json_object *idx = jget_typed(ev, "index", json_type_int);
    json_object *d = jget_typed(ev, "delta", json_type_object);
    const char *type = jget_str(d, "type");
    json_object *p;
    size_t n;
    int rc = 0;

    if (!idx || !type) {
        snprintf(err, errlen, "anthropic stream: content_block_delta without index or type");
        rc = -EPROTO;
    } else if ((long)json_object_get_int64(idx) != s->block) {
        snprintf(err, errlen, "anthropic stream: delta for block %ld, which is not open",
                 (long)json_object_get_int64(idx));
        rc = -EPROTO;
    } else if (strcmp(type, ANTHV_DELTA_TEXT) == 0) {
        rc = stream__text(s, jget_typed(d, "text", json_type_string), err, errlen);
    } else if (strcmp(type, ANTHV_DELTA_INPUT_JSON) == 0) {
        p = jget_typed(d, "partial_json", json_type_string);
        n = p ? (size_t)json_object_get_string_len(p) : 0;
        if (!s->call) {
            snprintf(err, errlen, "anthropic stream: input_json_delta outside a tool_use block");
            rc = -EPROTO;
        } else if (n && (s->args_total + n > CAP_ANTH_STREAM_ARGS ||
                         buf_append(&s->args, json_object_get_string(p), n))) {
            snprintf(err, errlen, "anthropic stream: tool arguments larger than %u bytes",
                     CAP_ANTH_STREAM_ARGS);
            rc = -EPROTO;
        } else {
            s->args_total += n;
        }
    } /* thinking_delta, signature_delta, citations_delta: not for the client */
    return rc;
}

static int stream__block_stop(anth_stream_t *s)
{
    stream__flush(s);
    s->call = NULL;
    s->block = -1;
    buf_reset(&s->args);
    return 0;
}

int anth_stream_event(void *st, const char *event, const char *data, size_t len, int *status,
                      char *err, size_t errlen)
{
    anth_stream_t *s = st;
    json_tokener *tok = s->tok;
    json_object *ev = NULL;
    const char *type;
    int rc = -EPROTO;

    json_tokener_reset(tok);
    if (len)
        ev = json_tokener_parse_ex(tok, data, (int)len);
    if (!ev || json_tokener_get_error(tok) != json_tokener_success ||
        !json_object_is_type(ev, json_type_object)) {
        if (event && strcmp(event, "ping") == 0) {
            rc = 0;
            goto out;
        }
        snprintf(err, errlen, "anthropic stream: event '%s' is not a JSON object",
                 event ? event : "message");
        goto out;
    }
    type = jget_str(ev, "type");
    if (!type)
        type = event ? event : "";
    if (strcmp(type, "message_start") == 0) {
        json_object *m = jget_typed(ev, "message", json_type_object);
        stream__usage(s, jget_typed(m, "usage", json_type_object));
        rc = 0;
    } else if (strcmp(type, "content_block_start") == 0) {
        rc = stream__block_start(s, ev, err, errlen);
    } else if (strcmp(type, "content_block_delta") == 0) {
        rc = stream__block_delta(s, ev, err, errlen);
    } else if (strcmp(type, "content_block_stop") == 0) {
        rc = stream__block_stop(s);
    } else if (strcmp(type, "message_delta") == 0) {
        stream__flush(s); /* a block the upstream never closed */
        json_object *d = jget_typed(ev, "delta", json_type_object);
        const char *sr = jget_str(d, "stop_reason");
        if (sr)
            snprintf(s->turn->finish_reason, sizeof s->turn->finish_reason, "%s",
                     anthv_finish_reason(sr));
        stream__usage(s, jget_typed(ev, "usage", json_type_object));
        rc = 0;
    } else if (strcmp(type, "message_stop") == 0) {
        stream__flush(s);
        rc = 1;
    } else if (strcmp(type, "error") == 0) {
        json_object *e = jget_typed(ev, "error", json_type_object);
        const char *otype = NULL, *msg = jget_str(e, "message");
        int st_out = 500;
        anthv_error_kind(jget_str(e, "type"), 0, &st_out, &otype);
        if (status)
            *status = st_out;
        snprintf(err, errlen, "%s", msg && *msg ? msg : "the anthropic upstream sent an error event");
        rc = -EREMOTEIO;
    } else {
        rc = 0; /* ping, and event types added after this was written */
    }
out:
    json_object_put(ev);
    return rc;
}
