/* redisuv — hiredis's async context on a libuv loop (the hooks table
 * ac->ev), in place of hiredis 0.14's adapters/libuv.h.
 *
 * Why not the shipped adapter: when the peer resets the connection, libuv
 * reports the poll as failed (status UV_EBADF on POLLERR) and stops it; the
 * shipped adapter ignores a failed poll, so hiredis never reads the error and
 * the context hangs for good: no connect or disconnect callback ever fires
 * (seen when Redis is SIGKILLed while the broker reconnects). Here a failed
 * poll is handed to hiredis as "readable": its read then meets the error and
 * the context is closed with the usual callbacks. */
#ifndef AIPROXY_REDISUV_H
#define AIPROXY_REDISUV_H

#include <hiredis/async.h>
#include <uv.h>

/* Attaches `ac` (fresh, not attached yet) to `loop`. The hooks free
 * themselves once hiredis calls cleanup (the poll handle is closed first).
 * Returns 0, -EEXIST when ac is attached already, -ENOMEM or a uv error. */
int redisuv_attach(redisAsyncContext *ac, uv_loop_t *loop);

/* Writes at once what is queued on `ac` (normally written at the end of the
 * loop iteration that queued it). A no-op when nothing is queued, when `ac`
 * is not attached, or while `ac` runs one of its own reply callbacks or is
 * disconnecting (there the end of the iteration writes it). A failed write
 * closes `ac` before this returns: its disconnect callback has run, and the
 * caller must not use `ac` again without checking its own pointer to it. */
void redisuv_flush(redisAsyncContext *ac);

/* Queues `len` bytes of one RESP command (from redisFormatCommand; copied)
 * on `ac` with no reply callback: only for a connection that sent CLIENT
 * REPLY OFF the same way, so Redis sends nothing back (hiredis treats a
 * reply nobody waits for as an error, or aborts). Written like any command
 * (at the end of the iteration, or now with redisuv_flush). Returns 0,
 * -ENOTCONN (not attached, closing) or -ENOMEM. */
int redisuv_send_noreply(redisAsyncContext *ac, const char *cmd, size_t len);

#endif
