#include "agent/backend.h"

#include <string.h>

const be_ops_t *be_lookup(const char *kind)
{
    if (!kind)
        return NULL;
    if (strcmp(kind, "openai") == 0)
        return &be_openai;
    /* The Anthropic table exists from the start; it is usable once it has hooks. */
    if (strcmp(kind, "anthropic") == 0 && be_anthropic.build)
        return &be_anthropic;
    return NULL;
}

void be_turn_init(be_turn_t *t, size_t max_content)
{
    memset(t, 0, sizeof(*t));
    buf_init(&t->content, max_content);
}

void be_turn_clear(be_turn_t *t)
{
    buf_free(&t->content);
    if (t->tool_calls)
        json_object_put(t->tool_calls);
    t->tool_calls = NULL;
    t->finish_reason[0] = '\0';
    t->prompt_tokens = t->completion_tokens = 0;
    t->has_usage = 0;
}
