/* anthropic — the hook table of the Anthropic Messages API backend. The work
 * is in anthropic_req.c (build), anthropic_resp.c (parse, error) and
 * anthropic_stream.c (stream_*); docs/anthropic.md lists the translation rules. */
#include "agent/anthropic.h"

const be_ops_t be_anthropic = {
    .kind         = "anthropic",
    .build        = anth_build,
    .parse        = anth_parse,
    .stream_new   = anth_stream_new,
    .stream_event = anth_stream_event,
    .stream_end   = anth_stream_end,
    .stream_free  = anth_stream_free,
    .error        = anth_error,
};
