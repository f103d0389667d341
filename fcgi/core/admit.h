/* admit — admission control for one worker process: long requests (chat,
 * messages) may hold at most `threads - reserve` of its threads, so `reserve`
 * threads always stay free for short routes (/health, /v1/models, /admin),
 * and a long request past that waits at most `wait_ms` for a slot before it
 * is refused (503 overloaded) instead of queueing behind streams for minutes.
 *
 * libfcgi queues requests in the listen backlog and the web server, where a
 * worker cannot see them; what it can see is its own busy threads. The check
 * runs in the thread that accepted the request, after routing and auth and
 * before the body is read. Thread-safe. */
#ifndef AIPROXY_ADMIT_H
#define AIPROXY_ADMIT_H

typedef struct admit admit_t;

/* A worker's admission state for `threads` threads of which `reserve` (0..
 * threads-1; clamped) never take long requests; a long request waits up to
 * `wait_ms` (>= 0) for a slot. NULL on ENOMEM. Free with admit_free after
 * every thread stopped. */
admit_t *admit_new(int threads, int reserve, int wait_ms);
void admit_free(admit_t *a);

/* Takes a long-request slot: 0 when granted (call admit_leave when the
 * request ends), -EBUSY when none freed up within the wait. A waiter holds a
 * thread, so at most reserve/2 requests wait at once (the other reserve
 * threads stay free for short routes): the others are refused at once. A NULL `a`
 * always grants (no admission control). */
int admit_enter(admit_t *a);
void admit_leave(admit_t *a);

#endif
