/* anthropic — the Anthropic Messages API backend (be_anthropic in backend.h),
 * split in parsers/builders that do no I/O:
 *   anthropic_req.c    canonical OpenAI chat request -> POST /v1/messages
 *   anthropic_msgs.c   its messages -> system + alternating turns of blocks
 *   anthropic_resp.c   whole message and error bodies -> be_turn_t / OpenAI error
 *   anthropic_stream.c Messages SSE events -> be_turn_t + content sink
 * Only anthropic.c (the hook table) and the unit tests include this header;
 * everyone else goes through be_anthropic. The contracts are backend.h's. */
#ifndef AIPROXY_ANTHROPIC_H
#define AIPROXY_ANTHROPIC_H

#include "agent/backend.h"

#define ANTH_VERSION            "2023-06-01"
#define ANTH_DEFAULT_BASE_URL   "https://api.anthropic.com/v1"
#define ANTH_DEFAULT_MAX_TOKENS 4096

/* be_ops_t.build. Besides the URL, headers and body, refuses (-EINVAL, err
 * naming the field) what the Messages API cannot express: unknown roles,
 * content part types other than text and image_url, non-base64 data: URLs. */
int anth_build(json_object *backend, json_object *req, int stream, buf_t *url,
               struct curl_slist **headers, buf_t *body, char *err, size_t errlen);

/* be_ops_t.parse and be_ops_t.error. */
int anth_parse(const char *body, size_t len, be_turn_t *turn, char *err, size_t errlen);
void anth_error(int status, const char *body, size_t len, int *status_out, char *type,
                size_t typelen, char *msg, size_t msglen);

/* be_ops_t stream hooks. */
void *anth_stream_new(be_turn_t *turn, const be_sink_t *sink);
int anth_stream_event(void *st, const char *event, const char *data, size_t len,
                      int *status, char *err, size_t errlen);
int anth_stream_end(void *st, char *err, size_t errlen);
void anth_stream_free(void *st);

/* anthropic_msgs.c: req's "messages" as out's "system" and "messages".
 * 0 or -EINVAL with err naming the message (e.g. "messages[2].role: ..."). */
int anth__messages(json_object *req, json_object *out, char *err, size_t errlen);

/* Writes the formatted message to err and returns -EINVAL (build's errors). */
int anth__fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Shared by resp and stream: OpenAI's prompt_tokens from an Anthropic usage
 * object (input plus cache creation plus cache reads; absent or negative
 * counts are 0, the sum saturates at LONG_MAX: an upstream's numbers must not
 * overflow). *present (may be NULL) is set when any of the three is there. */
long anth__prompt_tokens(json_object *usage, int *present);

#endif
