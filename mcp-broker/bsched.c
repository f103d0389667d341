/* bsched — the broker's scheduler hint (see bsched.h). glibc has no
 * wrapper for sched_getattr/sched_setattr: raw system calls, with the
 * structure of sched_setattr(2) (its first version, 48 bytes, which every
 * kernel since 3.14 takes). */
#include "mcp-broker/bsched.h"

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct bsched_attr {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;    /* for SCHED_OTHER/BATCH: the request size, ns (Linux >= 6.12) */
    uint64_t sched_deadline;
    uint64_t sched_period;
};

int bsched_parse(const char *s, unsigned *us)
{
    char *end;
    unsigned long v;

    *us = BSCHED_DEFAULT_US;
    if (!s || !*s)
        return 0;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || (v != 0 && (v < BSCHED_MIN_US || v > BSCHED_MAX_US)))
        return -EINVAL;
    *us = (unsigned)v;
    return 0;
}

int bsched_apply(unsigned us)
{
#if defined(SYS_sched_getattr) && defined(SYS_sched_setattr)
    struct bsched_attr a;

    if (us == 0)
        return 0;
    memset(&a, 0, sizeof a);
    if (syscall(SYS_sched_getattr, 0, &a, (unsigned)sizeof a, 0) != 0)
        return -errno;
    if (a.sched_policy != SCHED_OTHER && a.sched_policy != SCHED_BATCH)
        return 0;
    a.size = sizeof a;
    a.sched_flags &= 0x01;        /* SCHED_FLAG_RESET_ON_FORK stays as it was */
    a.sched_runtime = (uint64_t)us * 1000u;
    a.sched_deadline = a.sched_period = 0;
    if (syscall(SYS_sched_setattr, 0, &a, 0) != 0)
        return -errno;
    return 0;
#else
    (void)us;
    return -ENOSYS;
#endif
}
