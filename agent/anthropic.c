/* STUB: replaced by the Anthropic Messages backend (issue 5). */
#include "agent/backend.h"

const be_ops_t be_anthropic = { .kind = "anthropic" };
