/* fuzz_anthropic — the Anthropic backend's parse, stream and error hooks
 * (agent/backend.h be_anthropic), driven by fuzz_backend.h. */
#include "tests/fuzz/fuzz_backend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fb_run(&be_anthropic, data, size);
}
