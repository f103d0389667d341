/* complete — the one completion runner: drives the agent for any API surface
 * (POST /v1/chat/completions, POST /v1/messages, ...). The common flow lives
 * here once: parse the body into the canonical (OpenAI chat) request, find
 * the assistant and its backend in the registry, run the agent streaming or
 * not, render the answer, the stream or the error. What differs between
 * surfaces is a table of hooks, complete_surface_t, that the surface's folder
 * defines and hangs on its route_surface_t (.complete); errors go out
 * through route_surface_t.send_error, the surface's one error renderer.
 * Adding a completion surface is a folder with these hooks and one line in
 * fcgi/routes.c (docs/responder.md, "How to add a surface"). */
#ifndef AIPROXY_COMPLETE_H
#define AIPROXY_COMPLETE_H

#include "agent/agent.h"
#include "fcgi/core/route.h"

/* What a surface's parse hook hands the runner. Everything is borrowed from
 * the surface's per-request state (valid until its clear hook). */
typedef struct complete_req {
    const char *model;       /* the assistant's name */
    json_object *body;       /* the canonical OpenAI chat request */
    int stream;              /* answer as a stream */
    int include_usage;       /* stream: the surface reports usage at the end */
} complete_req_t;

/* A completion surface: its translation in and out, as hooks. `run` is the
 * surface's per-request state (run_size bytes, zeroed, arena memory, gone
 * after the request); every hook but parse runs after a successful parse.
 * Static, shared by all threads. */
typedef struct complete_surface {
    const char *name;        /* log lines: "chat", "messages" */
    size_t run_size;
    /* The body into *out. 0; -EINVAL with *err the 400 to answer; -ENOMEM. */
    int (*parse)(void *run, const char *body, size_t len, complete_req_t *out,
                 aip_err_t *err);
    /* Frees what parse made (called once parse was called, whatever it returned). */
    void (*clear)(void *run);
    /* Makes the answer's id and prepares the stream (sends nothing); `created`
     * is the request's time. Returns the id (borrowed from run), for logs. */
    const char *(*begin)(void *run, http_req_t *req, const complete_req_t *cr,
                         long long created);
    /* Stream events: one content piece; push what the pieces wrote. 0 or -EPIPE. */
    int (*delta)(void *run, const char *text, size_t len);
    int (*flush)(void *run);
    /* 1 once the stream's headers went out (an error is then a stream event). */
    int (*started)(const void *run);
    /* The end of a stream: the last events of a finished answer, or the
     * failure `res->err` as the surface's stream error. Returns as http_send. */
    int (*stream_end)(void *run, const agent_res_t *res);
    /* A whole answer (res->status 200) as a new object (caller owns it);
     * NULL on ENOMEM. */
    json_object *(*answer)(void *run, const complete_req_t *cr, const agent_res_t *res,
                           long long created);
    /* Streamed tool events (core/toolev.h; only when the request opted in):
     * writes one event (borrowed), starting the stream if needed, in a
     * carrier the surface's SDKs skip. Returns 0 or -EPIPE. */
    int (*tool_event)(void *run, json_object *ev);
    /* Stream only. `start`: the request is accepted (the agent's READY; the
     * runner calls it at the first alive poll after, once the upstream
     * request went out): send the headers and the stream's first event now,
     * flushed, so the client has its first byte before any content. `keepalive`: nothing was
     * written for the keep-alive interval: send an event every client of the
     * API skips (flushed; nothing before start). Both 0 or -EPIPE. */
    int (*start)(void *run);
    int (*keepalive)(void *run);
    /* Optional, NULL for none (added for /v1/responses). `prepare`: after a
     * successful parse, before the assistant is looked up, with the thread's
     * services (kept in run for the other hooks): a surface with state of its
     * own (stored conversations) reads it here. 0; -EINVAL with *err the
     * error to answer (any status); -ENOMEM. `on_event`: every agent event
     * (tool events whether the request opted into aiproxy's or not), before
     * toolev sees it; 0, or non-zero when the client has gone. */
    int (*prepare)(void *run, http_req_t *req, svc_t *svc, complete_req_t *cr,
                   aip_err_t *err);
    int (*on_event)(void *run, const agent_event_t *ev);
    /* Optional: a whole answer written as JSON text into *out, the bytes
     * `answer` would print, without building its object (the pass-through's
     * common case; the runner uses `answer` when tool events are on). 0;
     * -EAGAIN: use `answer`; or as buf_append. */
    int (*answer_text)(void *run, const complete_req_t *cr, const agent_res_t *res,
                       long long created, buf_t *out);
} complete_surface_t;

/* Keep-alive interval of streams, in ms, when the assistant sets none
 * (stream_keepalive_ms); 0 = no keep-alives. */
#define COMPLETE_KEEPALIVE_DEFAULT_MS 5000
#define COMPLETE_KEEPALIVE_MAX_MS     600000

/* Sets the process-wide keep-alive interval (AIPROXY_STREAM_KEEPALIVE_MS,
 * 0..COMPLETE_KEEPALIVE_MAX_MS, checked by the caller). Call before the
 * threads start; not thread-safe. */
void complete_set_keepalive_ms(long ms);

/* The keep-alive interval for `assistant` (borrowed registry entry, may be
 * NULL): its stream_keepalive_ms when set (0 = off), else the process-wide
 * one. */
long complete_keepalive_ms(json_object *assistant);

/* When a stream's keep-alive is due: the interval and the time of the last
 * byte written (ms on one monotonic clock). Pure, so tests drive the clock. */
typedef struct complete_pace {
    long interval_ms;        /* 0: never due */
    long long last_ms;       /* the last write */
} complete_pace_t;

/* Notes a write at `now_ms`. */
void complete_pace_touch(complete_pace_t *p, long long now_ms);

/* 1 when nothing was written for the interval by `now_ms` (the caller then
 * sends a keep-alive and touches), else 0. */
int complete_pace_due(const complete_pace_t *p, long long now_ms);

/* The route handler of every completion route: runs the matched route's
 * surface (r->def->surface->complete, which must be set) on `req` with the
 * thread's agent and registry. Answers the client itself; returns 0, or
 * -EPIPE when the client went away. */
int complete_handle(http_req_t *req, const route_t *r, svc_t *svc);

#endif
