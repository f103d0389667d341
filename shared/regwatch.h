/* regwatch — registry freshness without a round trip per request (issue 20).
 *
 * One watcher per process: a thread with its own connection SUBSCRIBEd to
 * the registry's change channel (`<prefix>reg:changed`, reg.h) and the
 * managed keys' (`<prefix>keys:changed`). It moves a
 * generation number whenever a change message arrives (before reading it),
 * every REGWATCH_TICK_MS (the cover for a lost message or an edit made
 * behind the API's back), and whenever its connection is lost or re-made.
 * A reader (reg_refresh with reg_set_watch) re-reads the version only when
 * the generation moved since its last good refresh or a message is waiting
 * unread on the watcher's socket (one poll(2), no wait): an edit published
 * before a client's next request reaches the socket before that request,
 * so a host sees its own and its neighbours' edits as before, and the
 * common request makes no Redis round trip for the registry. */
#ifndef AIPROXY_REGWATCH_H
#define AIPROXY_REGWATCH_H

#define REGWATCH_TICK_MS 1000

typedef struct regwatch regwatch_t;

/* Starts the watcher thread for the registry at `url` under `prefix`
 * (copied). It connects in the background and keeps reconnecting (every
 * 200 ms) while Redis is away. NULL on ENOMEM or when the thread cannot
 * start; callers then refresh per request as without a watcher. */
regwatch_t *regwatch_start(const char *url, const char *prefix);

/* Stops the thread (at once: it is woken) and frees w. NULL is a no-op. */
void regwatch_stop(regwatch_t *w);

/* The current generation (see above). Thread-safe, lock-free. */
unsigned long regwatch_gen(const regwatch_t *w);

/* 1 when the generation cannot be trusted alone: the watcher is not
 * subscribed (connecting, or Redis is down), or bytes wait unread on its
 * socket (a change message not yet counted). 0 otherwise. One poll(2). */
int regwatch_pending(const regwatch_t *w);

/* Moves the generation: this process wrote the registry (its other threads
 * re-read without waiting for the message). */
void regwatch_bump(regwatch_t *w);

#endif
