/* toolev — tool events, the client's view of the agent loop (issue 13 item 3,
 * docs/tool-events.md). Opt-in per request (header X-Aiproxy-Tool-Events or
 * body field aiproxy.tool_events) or per assistant (tool_events: true); off,
 * nothing here writes a byte.
 *
 * This module turns the agent's AGENT_EV_TOOL_* events into the JSON the
 * client sees ({type: tool.started|tool.progress|tool.finished, round,
 * call_id, ...}) and either hands each to the surface's stream renderer at
 * once, or keeps the list for a non-streamed answer's one extra top-level
 * field, aiproxy_tool_events. The carriers themselves (a chunk with an empty
 * delta, a named SSE event) live with the surfaces' writers. */
#ifndef AIPROXY_TOOLEV_H
#define AIPROXY_TOOLEV_H

#include "agent/agent.h"
#include "fcgi/core/http.h"
#include "shared/err.h"

#include <json-c/json.h>

/* The request header and body field that turn tool events on or off. */
#define TOOLEV_HEADER "X-Aiproxy-Tool-Events"
#define TOOLEV_FIELD  "aiproxy"            /* {"aiproxy": {"tool_events": true}} */
/* The top-level field of a non-streamed answer, and of each streamed carrier. */
#define TOOLEV_LIST_KEY  "aiproxy_tool_events"
#define TOOLEV_EVENT_KEY "aiproxy_tool_event"

/* Decides whether this request gets tool events. The request decides when it
 * says: the header (1/true/yes/on or 0/false/no/off) or the body's
 * aiproxy.tool_events (a boolean); on when either says on. Otherwise the
 * assistant's tool_events (borrowed registry entry, may be NULL). Sets *on
 * and returns 0, or -EINVAL with *err the 400 to answer (a header or field
 * with another value: a typo must not silently mean off). `body` is the
 * canonical request (borrowed). */
int toolev_decide(http_req_t *req, json_object *body, json_object *assistant, int *on,
                  aip_err_t *err);

/* The client's JSON for a tool event (ev->kind AGENT_EV_TOOL_*): a new
 * object the caller owns; NULL for other kinds or on ENOMEM. Pure. */
json_object *toolev_json(const agent_event_t *ev);

/* Where a request's tool events go: streamed to `emit` as they happen, or
 * kept for the answer. Zero it, then set the members. */
typedef struct toolev {
    int on;                  /* the request gets tool events */
    int stream;              /* emit each event; else keep the list */
    /* The surface's carrier (complete_surface_t.tool_event): writes one
     * event (borrowed) to the stream. 0, or -EPIPE when the client left. */
    int (*emit)(void *run, json_object *ev);
    void *run;
    json_object *list;       /* kept events (owned; toolev_clear) */
} toolev_t;

/* Delivers one agent event. Returns 0, or non-zero when the client has gone
 * (the agent's on_event contract). An event that cannot be built (ENOMEM) is
 * dropped: it is a view of the loop, not part of the answer. */
int toolev_event(toolev_t *t, const agent_event_t *ev);

/* Adds the kept list to a non-streamed answer `answer` (borrowed) as
 * aiproxy_tool_events (an empty array when no tool ran); does nothing when
 * tool events are off. 0 or -ENOMEM. */
int toolev_attach(toolev_t *t, json_object *answer);

/* Frees the kept list. */
void toolev_clear(toolev_t *t);

#endif
