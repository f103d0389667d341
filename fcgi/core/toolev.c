/* toolev — tool events (see toolev.h): the opt-in decision, the event JSON,
 * and where each event goes (the stream's carrier or the answer's list). */
#include "fcgi/core/toolev.h"
#include "shared/caps.h"
#include "shared/jget.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* 1 on, 0 off, -1 neither: a header value. */
static int toolev__flag(const char *s)
{
    static const char *const on[] = { "1", "true", "yes", "on" };
    static const char *const off[] = { "0", "false", "no", "off" };

    for (size_t i = 0; i < sizeof(on) / sizeof(on[0]); i++)
        if (strcasecmp(s, on[i]) == 0)
            return 1;
    for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++)
        if (strcasecmp(s, off[i]) == 0)
            return 0;
    return -1;
}

int toolev_decide(http_req_t *req, json_object *body, json_object *assistant, int *on,
                  aip_err_t *err)
{
    const char *h = req ? http_header(req, TOOLEV_HEADER) : NULL;
    json_object *opt = jget(body, TOOLEV_FIELD), *v = NULL;
    int said = 0, want = 0, f;

    *on = 0;
    if (h) {
        if ((f = toolev__flag(h)) < 0) {
            aip_err_set(err, 400, "invalid_request_error", "invalid_header",
                        "header %s must be 1 or 0 (true/false, yes/no, on/off), not '%.64s'",
                        TOOLEV_HEADER, h);
            return -EINVAL;
        }
        said = 1;
        want = f;
    }
    if (opt) {
        if (!json_object_is_type(opt, json_type_object)) {
            aip_err_set(err, 400, "invalid_request_error", "invalid_type",
                        "'%s' must be an object, e.g. {\"tool_events\": true}", TOOLEV_FIELD);
            aip_err_param(err, TOOLEV_FIELD);
            return -EINVAL;
        }
        v = jget(opt, "tool_events");
        if (v && !json_object_is_type(v, json_type_boolean)) {
            aip_err_set(err, 400, "invalid_request_error", "invalid_type",
                        "'%s.tool_events' must be a boolean", TOOLEV_FIELD);
            aip_err_param(err, TOOLEV_FIELD ".tool_events");
            return -EINVAL;
        }
        if (v) {
            want = said ? (want || json_object_get_boolean(v)) : json_object_get_boolean(v);
            said = 1;
        }
    }
    if (!said) {
        v = jget(assistant, "tool_events");
        want = v && json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
    }
    *on = want;
    return 0;
}

/* A new string of s cut to at most cap bytes, never inside a UTF-8
 * character; *cut says whether anything was left out. */
static json_object *toolev__cut(const char *s, size_t cap, int *cut)
{
    size_t n = s ? strlen(s) : 0;

    *cut = 0;
    if (n > cap) {
        n = cap;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        *cut = 1;
    }
    return json_object_new_string_len(s ? s : "", (int)n);
}

static json_object *toolev__str(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

json_object *toolev_json(const agent_event_t *ev)
{
    const char *type;
    json_object *o;
    int cut;

    switch (ev->kind) {
    case AGENT_EV_TOOL_START:    type = "tool.started"; break;
    case AGENT_EV_TOOL_PROGRESS: type = "tool.progress"; break;
    case AGENT_EV_TOOL_DONE:     type = "tool.finished"; break;
    default:                     return NULL;
    }
    if (!(o = json_object_new_object()))
        return NULL;
    json_object_object_add(o, "type", json_object_new_string(type));
    json_object_object_add(o, "round", json_object_new_int(ev->round));
    json_object_object_add(o, "call_id", toolev__str(ev->call_id));
    json_object_object_add(o, "name", toolev__str(ev->name));
    json_object_object_add(o, "server", toolev__str(ev->server));
    json_object_object_add(o, "tool", toolev__str(ev->tool));
    if (ev->kind == AGENT_EV_TOOL_START) {
        json_object_object_add(o, "arguments", toolev__cut(ev->args_json, CAP_TOOLEV_ARGS, &cut));
        json_object_object_add(o, "truncated", json_object_new_boolean(cut));
    } else if (ev->kind == AGENT_EV_TOOL_PROGRESS) {
        json_object_object_add(o, "progress", json_object_new_double(ev->progress));
        json_object_object_add(o, "total", ev->total >= 0 ? json_object_new_double(ev->total)
                                                          : NULL);
        json_object_object_add(o, "message", toolev__str(ev->message));
    } else {
        json_object_object_add(o, "ok", json_object_new_boolean(!ev->is_error));
        json_object_object_add(o, "duration_ms", json_object_new_int64(ev->ms));
        json_object_object_add(o, "result_preview",
                               toolev__cut(ev->result, CAP_TOOLEV_PREVIEW, &cut));
        json_object_object_add(o, "truncated", json_object_new_boolean(cut));
    }
    return o;
}

int toolev_event(toolev_t *t, const agent_event_t *ev)
{
    json_object *o;
    int gone = 0;

    if (!t->on || !(o = toolev_json(ev)))
        return 0;
    if (t->stream) {
        gone = t->emit && t->emit(t->run, o) == -EPIPE;
    } else {
        if (!t->list)
            t->list = json_object_new_array();
        if (t->list && json_object_array_length(t->list) < CAP_TOOLEV_LIST &&
            json_object_array_add(t->list, o) == 0)
            o = NULL;
    }
    json_object_put(o);
    return gone;
}

int toolev_attach(toolev_t *t, json_object *answer)
{
    json_object *l;

    if (!t->on)
        return 0;
    l = t->list ? json_object_get(t->list) : json_object_new_array();
    if (!l || json_object_object_add(answer, TOOLEV_LIST_KEY, l) != 0) {
        json_object_put(l);
        return -ENOMEM;
    }
    return 0;
}

void toolev_clear(toolev_t *t)
{
    json_object_put(t->list);
    t->list = NULL;
}
