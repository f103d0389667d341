/* agent — the agent loop: call the assistant's LLM, run the tools it asks for on
 * MCP servers (through the broker), feed the results back, until it answers.
 *
 * The loop speaks one dialect, OpenAI chat messages; backends (backend.h)
 * translate. One agent_t per responder thread: it keeps curl handles (so
 * connections to upstreams are reused across requests) and the broker client. */
#ifndef AIPROXY_AGENT_H
#define AIPROXY_AGENT_H

#include "shared/err.h"

#include <json-c/json.h>
#include <stddef.h>

typedef struct agent agent_t;

/* What the loop tells its caller as it goes (agent_req_t.on_event). */
typedef enum agent_ev_kind {
    AGENT_EV_READY = 1,      /* catalogs known and the upstream request built: the
                                request is accepted; errors after this come from
                                the upstream or the tools */
    AGENT_EV_TOOL_START,     /* an MCP call of a tool round goes out */
    AGENT_EV_TOOL_PROGRESS,  /* the MCP server reported progress on it */
    AGENT_EV_TOOL_DONE,      /* it has its result (or tool error / timeout) */
    AGENT_EV_TURN_START,     /* an upstream turn (one LLM call) goes out */
    AGENT_EV_TURN_DONE       /* it ended: status, us, tokens */
} agent_ev_kind_t;

/* How a tool call ended (agent_event_t.outcome, mcpc_call_t.outcome): for
 * metrics; the model sees the text either way. */
typedef enum agent_tool_outcome {
    AGENT_TOOL_OK = 0,
    AGENT_TOOL_ERROR,        /* the tool said it failed, or the call was not valid */
    AGENT_TOOL_TIMEOUT,      /* no answer in time (here or at the broker) */
    AGENT_TOOL_DOWN          /* the broker could not reach the MCP server */
} agent_tool_outcome_t;

/* One event. Everything is borrowed for the callback's time. */
typedef struct agent_event {
    agent_ev_kind_t kind;
    int round;               /* tool events: the tool round, from 0 */
    const char *call_id;     /* tool events: the model's tool call id */
    const char *name;        /* tool events: the name the model used */
    const char *server;      /* tool events: the MCP server */
    const char *tool;        /* tool events: the tool's MCP name */
    const char *args_json;   /* START: the arguments as JSON text */
    double progress, total;  /* PROGRESS: total < 0 when the server gave none */
    const char *message;     /* PROGRESS: NULL when the server gave none */
    int is_error;            /* DONE */
    int outcome;             /* DONE: an agent_tool_outcome_t */
    long long ms;            /* DONE: how long the call took */
    const char *result;      /* DONE: the whole result text (callers truncate) */
    /* Turn events: `round` is the turn's number from 0; TURN_DONE also has
     * the upstream's answer status (200, or the status the turn failed
     * with), the time the turn took, the tokens the upstream reported for
     * it (0 when none), and `model`, the model the request named upstream. */
    int status;
    long long us;
    long long prompt_tokens, completion_tokens;
    const char *model;
    /* TURN_START and TOOL_START only (else NULL): a buffer of
     * AGENT_TRACEPARENT_SIZE bytes holding "", which the callee may fill
     * with the W3C traceparent this turn's upstream request (a header) or
     * this tool call (through the broker to the MCP server) carries. */
    char *traceparent;
    /* TURN_DONE: the upstream's finish reason ("" when unknown). */
    const char *finish_reason;
} agent_event_t;

#define AGENT_TRACEPARENT_SIZE 64

typedef struct agent_req {
    const char  *assistant_name;
    json_object *assistant;   /* borrowed registry entry */
    json_object *backend;     /* borrowed registry entry of the assistant's backend */
    json_object *mcp_servers; /* borrowed: the registry's whole name->server map */
    json_object *body;        /* borrowed: the client's request, already validated */
    /* Borrowed, NULL for none: the caller's own tool policy (a managed key's
     * {"tools": {"allow", "deny"}}, shared/keypol.h), narrowing the MCP tools
     * offered on top of the assistant's own lists. */
    json_object *tool_policy;
    int stream;               /* stream from the upstream and call on_delta per piece */
    /* Streaming only: each content piece as the upstream produces it. Return 0
     * to go on, non-zero when the client is gone: the agent then aborts the
     * upstream transfer, starts no further tool call, and returns with
     * res->client_gone set. */
    int (*on_delta)(void *ud, const char *text, size_t len);
    /* Streaming only, may be NULL: called once after the pieces that arrived
     * in one upstream read have all gone to on_delta, so the caller may buffer
     * in on_delta and push once per read (one flush, not one per piece;
     * nothing that arrived is held back). Non-zero: the client is gone. */
    int (*on_flush)(void *ud);
    /* Polled (about every 100 ms) while waiting on the upstream or on tools;
     * returns 0 when the client has gone. May be NULL. */
    int (*alive)(void *ud);
    /* May be NULL: a file descriptor the upstream wait also watches (-1:
     * none now; asked at every wake); when it turns readable, alive() is
     * asked at once rather than at its next 100 ms poll (the caller's
     * limiter verdict, read beside the upstream call). */
    int (*watch)(void *ud);
    /* May be NULL: the loop's events (agent_event_t), streamed or not.
     * Non-zero: the client is gone (as alive() returning 0). */
    int (*on_event)(void *ud, const agent_event_t *ev);
    void *ud;
    /* The request id (shared/reqid.h) or NULL: sent to the upstream as
     * X-Request-Id and with each tool call to the broker ("rid"). */
    const char *request_id;
    /* The client's tracestate, sent upstream beside a traceparent (NULL: none). */
    const char *tracestate;
} agent_req_t;

typedef struct agent_res {
    int status;                  /* 200, or the HTTP status to answer */
    /* on success */
    json_object *message;        /* final assistant message {role, content} (owned).
                                    content is the text of every turn joined, i.e.
                                    what a streaming client received. When the model
                                    called client-supplied tools, it also has
                                    tool_calls (content may be null) and
                                    finish_reason is "tool_calls": the client
                                    runs them (stream them as delta.tool_calls). */
    char finish_reason[32];      /* "stop", "length", "content_filter", "tool_calls" */
    json_object *usage;          /* {prompt_tokens, completion_tokens, total_tokens}
                                    summed over every turn (owned; NULL if the
                                    upstream reported none) */
    int tool_rounds;             /* how many tool rounds ran */
    /* Always set, success or not (accounting: a failed request may have
     * spent tokens): the tokens the upstream reported over every turn that
     * reported any, the turns made and the time spent in them. */
    long long prompt_tokens, completion_tokens;
    int upstream_turns;
    long long upstream_us;
    /* on failure: the error value, made where the failure happened (upstream,
     * broker, MCP, request checks); the surface renders it in its shape */
    aip_err_t err;
    int client_gone;             /* the client hung up: answer nothing (status 499) */
} agent_res_t;

/* A new per-thread agent using the broker over Redis at `redis_url`/`prefix`
 * (connected lazily, on the first tool-using request). NULL on ENOMEM. */
agent_t *agent_new(const char *redis_url, const char *prefix);
void agent_free(agent_t *ag);

/* The agent's broker client (owned by the agent, connected lazily), lent to
 * other users on the same thread so that a thread holds one pair of Redis
 * connections to the broker, not one per user. */
struct mcpc *agent_broker(agent_t *ag);

/* Runs one chat completion. Always fills *res (call agent_res_clear after).
 * Returns 0 when res->status is 200, else a negative code with res->status
 * and res->err the error to answer (-ECONNABORTED: the client left). In streaming mode some
 * deltas may have been delivered before a failure: the caller knows, since it
 * received them. */
int agent_run(agent_t *ag, const agent_req_t *req, agent_res_t *res);

/* Frees what agent_run put in *res. */
void agent_res_clear(agent_res_t *res);

#endif
