/* mcphub — one subscriber per process for the broker's replies (issue 20).
 *
 * Every responder thread's tool calls name the same reply channel,
 * `<prefix>mcp:reply:<host>:<pid>` (docs/broker-protocol.md), which one
 * connection per process (CLIENT SETNAME aiproxy-rsp:<pid>:sub) SUBSCRIBEs
 * to. One of the threads waiting for replies reads it (the hub's own thread
 * between rounds; mcphub.c), decodes each reply and hands it to the waiter
 * that expects its call id; a reply nobody expects is dropped. So a
 * process holds one subscribed connection however many threads wait for
 * tools.
 *
 * The connection is opened by the first mcphub_ready and kept up: lost, or
 * the Sentinel epoch moved (rconn_epoch), it is re-opened and re-subscribed
 * every 200 ms until Redis answers. A reply published while the hub was not
 * subscribed is lost, so a waiter whose wait began before a loss is told
 * (mcphub_next returns -ECONNREFUSED) rather than left to its deadline. */
#ifndef AIPROXY_MCPHUB_H
#define AIPROXY_MCPHUB_H

#include "shared/wire.h"

typedef struct mcphub mcphub_t;
typedef struct mcphub_waiter mcphub_waiter_t;

/* The process's hub for Redis at `url` under key `prefix` (both copied),
 * made on the first call (a forked child makes its own); connects nothing
 * yet. NULL on ENOMEM. Lives until the process exits. Thread-safe. */
mcphub_t *mcphub_for(const char *url, const char *prefix);

/* The reply channel the hub subscribes to (borrowed, as long as the hub). */
const char *mcphub_channel(const mcphub_t *h);

/* A waiter for one thread's calls (one at a time: its owner's). NULL on
 * ENOMEM. mcphub_waiter_free forgets its ids and frees it (NULL: no-op). */
mcphub_waiter_t *mcphub_waiter_new(mcphub_t *h);
void mcphub_waiter_free(mcphub_waiter_t *w);

/* Before a round of calls: waits (at most wait_ms) until the hub is
 * subscribed, starting it on first use, and marks the subscription this
 * round relies on. 0, or -ECONNREFUSED when Redis cannot be reached in time
 * (the hub keeps trying in the background). */
int mcphub_ready(mcphub_waiter_t *w, int wait_ms);

/* Replies for call `id` (WIRE_ID_LEN hex) go to w from now on: call before
 * the call is published. 0 or -ENOMEM. */
int mcphub_expect(mcphub_waiter_t *w, const char *id);

/* w expects nothing any more; replies queued for it are dropped. */
void mcphub_forget(mcphub_waiter_t *w);

/* The next reply for one of w's ids, waiting at most wait_ms: 1 with *out
 * (the caller clears it with wire_reply_clear), 0 when none came,
 * -ECONNREFUSED when the subscription marked by mcphub_ready was lost (its
 * replies may be lost with it; replies queued before are given first). */
int mcphub_next(mcphub_waiter_t *w, int wait_ms, wire_reply_t *out);

#endif
