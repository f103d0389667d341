/* fuzz_openai — the OpenAI backend's parse, stream and error hooks
 * (agent/backend.h be_openai), driven by fuzz_backend.h. */
#include "tests/fuzz/fuzz_backend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fb_run(&be_openai, data, size);
}
