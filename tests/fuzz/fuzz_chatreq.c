/* fuzz_chatreq — fcgi/openai/chatreq.h: a POST /v1/chat/completions body.
 *
 * Checks: a refusal has a message for the client, a terminated param, and no
 * body; an accepted body has a non-empty model and validates again (what the
 * responder hands on is what was checked), and the text we would send on
 * reads back to the same text (every input keeps its meaning: big integers,
 * NUL in content). */
#include "fcgi/openai/chatreq.h"
#include "shared/jtext.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    chatreq_t req, again;
    aip_err_t err;
    char *text, *back;
    int rc = chatreq_parse((const char *)data, size, &req, &err);

    if (!memchr(err.param, '\0', sizeof err.param) || !memchr(err.msg, '\0', sizeof err.msg))
        abort();
    if (rc != 0) {
        if (rc != -EINVAL || !err.msg[0] || err.status != 400 || req.body || req.model)
            abort();
        return 0;
    }
    if (!req.body || !req.model || !req.model[0] || chatreq_validate(req.body, &err) != 0)
        abort();
    text = jtext_take(json_object_get(req.body));
    if (!text || chatreq_parse(text, strlen(text), &again, &err) != 0)
        abort();
    back = jtext_take(json_object_get(again.body));
    if (!back || strcmp(text, back) != 0)
        abort();
    free(text);
    free(back);
    chatreq_clear(&again);
    chatreq_clear(&req);
    return 0;
}
