/* bsched — the broker's hint to the Linux scheduler (issue 20, the tool
 * round trip).
 *
 * The broker is a relay: Redis wakes it with a call, it wakes the MCP
 * server, the server's answer wakes it, it wakes Redis. Each of its wake-ups
 * came from a process about to block anyway, yet with the kernel's default
 * request size (slice) the broker preempts that process, which then needs
 * a switch back in just to block: on a small machine, where the whole chain
 * often runs on one CPU, that extra switch sat on the critical path of every
 * call. EEVDF (Linux >= 6.12) takes a per-thread request size from
 * sched_attr.sched_runtime (0.1 .. 100 ms): a longer one gives the broker a
 * later virtual deadline, so its wake-ups let the waker finish first, while
 * its CPU share (weight, nice) stays what it was. The MCP servers it starts
 * inherit it. Older kernels accept the call and ignore the value.
 *
 * AIPROXY_BROKER_SLICE_US: the request size in µs, BSCHED_MIN_US ..
 * BSCHED_MAX_US, or 0 to leave the kernel's default; unset:
 * BSCHED_DEFAULT_US. No I/O besides the two system calls. */
#ifndef AIPROXY_BSCHED_H
#define AIPROXY_BSCHED_H

#define BSCHED_ENV        "AIPROXY_BROKER_SLICE_US"
#define BSCHED_DEFAULT_US 5000u
#define BSCHED_MIN_US     100u
#define BSCHED_MAX_US     100000u

/* The value of AIPROXY_BROKER_SLICE_US in `s` (NULL or "": the default)
 * into *us: 0 (leave the default) or BSCHED_MIN_US..BSCHED_MAX_US.
 * Returns 0, or -EINVAL (then *us is the default). */
int bsched_parse(const char *s, unsigned *us);

/* Asks for a request size of `us` µs for the calling thread (and the
 * threads and processes it starts later), keeping its policy and nice
 * value; us 0 does nothing. Only SCHED_OTHER and SCHED_BATCH threads are
 * touched (a real-time policy set by the operator stays). Returns 0, or a
 * negative errno (no sched_setattr, or refused): the broker runs on with
 * the default. */
int bsched_apply(unsigned us);

#endif
