/* anthvocab — the one table of Anthropic stop reasons and error types (see
 * anthvocab.h). The order of the rows matters for the reverse look-ups: the
 * first row that maps to an OpenAI finish_reason or an HTTP status wins. */
#include "agent/anthvocab.h"

#include <stddef.h>
#include <string.h>

static const struct {
    const char *anth, *openai;
} anthv__stops[] = {
    { "end_turn", "stop" },
    { "stop_sequence", "stop" },
    { "pause_turn", "stop" },
    { "tool_use", "tool_calls" },
    { "max_tokens", "length" },
    { "model_context_window_exceeded", "length" },
    { "refusal", "content_filter" },
};

/* status: what the API answers with this type; openai: our error type. */
static const struct {
    const char *anth;
    int status;
    const char *openai;
} anthv__errors[] = {
    { "invalid_request_error", 400, "invalid_request_error" },
    { "authentication_error", 401, "authentication_error" },
    { "permission_error", 403, "permission_error" },
    { "not_found_error", 404, "not_found_error" },
    { "request_too_large", 413, "invalid_request_error" },
    { "rate_limit_error", 429, "rate_limit_error" },
    { "api_error", 500, "api_error" },
    { "timeout_error", 504, "api_error" },
    { "overloaded_error", 529, "api_error" },
};

#define ANTHV__N(a) (sizeof (a) / sizeof (a)[0])

const char *anthv_finish_reason(const char *stop_reason)
{
    for (size_t i = 0; stop_reason && i < ANTHV__N(anthv__stops); i++)
        if (strcmp(anthv__stops[i].anth, stop_reason) == 0)
            return anthv__stops[i].openai;
    return "";
}

const char *anthv_stop_reason(const char *finish_reason)
{
    for (size_t i = 0; finish_reason && i < ANTHV__N(anthv__stops); i++)
        if (strcmp(anthv__stops[i].openai, finish_reason) == 0)
            return anthv__stops[i].anth;
    return "end_turn";
}

void anthv_error_kind(const char *anth_type, int status, int *status_out,
                      const char **openai_type)
{
    size_t i;

    for (i = 0; anth_type && i < ANTHV__N(anthv__errors); i++)
        if (strcmp(anthv__errors[i].anth, anth_type) == 0) {
            *status_out = status >= 400 ? status : anthv__errors[i].status;
            *openai_type = anthv__errors[i].openai;
            return;
        }
    /* unknown or no type: judge by the status; 422 is how some APIs say
     * invalid request, every other status of no row is a server error */
    *status_out = status >= 400 ? status : 500;
    *openai_type = *status_out == 422 ? "invalid_request_error" : "api_error";
    for (i = 0; i < ANTHV__N(anthv__errors); i++)
        if (anthv__errors[i].status == *status_out) {
            *openai_type = anthv__errors[i].openai;
            break;
        }
}

const char *anthv_error_type(int status)
{
    for (size_t i = 0; i < ANTHV__N(anthv__errors); i++)
        if (anthv__errors[i].status == status)
            return anthv__errors[i].anth;
    return status >= 500 ? "api_error" : "invalid_request_error";
}
