/* sat — saturating integer arithmetic for counts that come from peers
 * (token usage from an upstream): a hostile or broken value sticks at the
 * limit instead of overflowing, which C leaves undefined. */
#ifndef AIPROXY_SAT_H
#define AIPROXY_SAT_H

#include <stdint.h>

/* a + b, or INT64_MAX / INT64_MIN when the sum does not fit. */
static inline int64_t sat_add_i64(int64_t a, int64_t b)
{
    int64_t r;

    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

#endif
