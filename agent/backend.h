/* backend — one LLM wire dialect (OpenAI chat completions, Anthropic Messages),
 * as a table of hooks. The agent loop works in OpenAI chat messages; a backend
 * turns the loop's canonical request into its HTTP request and its answers
 * (whole or streamed) back into a canonical turn. Hooks do no I/O: the loop's
 * upstream transfer (upstream.c, libcurl) calls them. */
#ifndef AIPROXY_BACKEND_H
#define AIPROXY_BACKEND_H

#include "shared/buf.h"

#include <curl/curl.h>
#include <json-c/json.h>

/* One assistant turn in canonical form, filled by parse or stream_event. */
typedef struct be_turn {
    buf_t content;              /* assistant text (init with a cap by the caller) */
    json_object *tool_calls;    /* NULL or array of {id, type:"function",
                                   function:{name, arguments(string)}} (owned) */
    char finish_reason[32];     /* OpenAI vocabulary: stop, length, tool_calls,
                                   content_filter; "" if the upstream said none */
    long prompt_tokens, completion_tokens;
    int has_usage;
} be_turn_t;

/* Where a streaming parser delivers content pieces as they arrive. */
typedef struct be_sink {
    int (*content)(void *ud, const char *text, size_t len); /* non-zero stops */
    void *ud;
} be_sink_t;

typedef struct be_ops {
    const char *kind;          /* "openai", "anthropic" */
    /* Builds the request for a canonical OpenAI chat request `req` (model,
     * messages, tools, sampling fields, extra fields, "stream"). Appends the
     * URL to *url and the body to *body; appends headers to *headers (caller
     * frees with curl_slist_free_all). `backend` is the registry entry
     * (base_url, api_key, default_headers). 0 or -EINVAL with err. */
    int (*build)(json_object *backend, json_object *req, int stream, buf_t *url,
                 struct curl_slist **headers, buf_t *body, char *err, size_t errlen);
    /* Parses a whole 2xx response body into *turn. 0 or -EPROTO with err. */
    int (*parse)(const char *body, size_t len, be_turn_t *turn, char *err, size_t errlen);
    /* Streaming: a parser state filling *turn and sending content to *sink;
     * NULL on ENOMEM. */
    void *(*stream_new)(be_turn_t *turn, const be_sink_t *sink);
    /* One SSE event. Returns 0 to go on, 1 when the stream says it is complete,
     * -EPROTO (err set) for invalid data, -ECANCELED when the sink stopped,
     * -EREMOTEIO for an error event (err = its message, *status = its status). */
    int (*stream_event)(void *st, const char *event, const char *data, size_t len,
                        int *status, char *err, size_t errlen);
    /* The upstream closed a stream before the event that says it is complete
     * (stream_event never returned 1). Returns 0 when what came is a whole
     * turn all the same (OpenAI: a finish_reason arrived, only [DONE] is
     * missing), or -EPROTO with err when the answer was cut: a client must
     * not take a truncated answer for a finished one. */
    int (*stream_end)(void *st, char *err, size_t errlen);
    void (*stream_free)(void *st);
    /* An upstream error response (status >= 400) as an OpenAI error: the
     * message and type from the upstream's body when it has them, else a
     * message naming the status. `*status_out` is the status to answer. */
    void (*error)(int status, const char *body, size_t len, int *status_out, char *type,
                  size_t typelen, char *msg, size_t msglen);
} be_ops_t;

extern const be_ops_t be_openai;
extern const be_ops_t be_anthropic;

/* The table for a registry `kind`, NULL when unknown. */
const be_ops_t *be_lookup(const char *kind);

/* Turn helpers: init with a content cap; clear frees what the turn holds. */
void be_turn_init(be_turn_t *t, size_t max_content);
void be_turn_clear(be_turn_t *t);

#endif
