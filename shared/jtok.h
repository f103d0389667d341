/* jtok — the thread's json-c tokeners, made once and reset for each parse.
 *
 * json_tokener_new allocates the tokener, its parse stack (one entry per
 * level of depth) and a print buffer, and json_tokener_free frees them: on
 * the responder's path that was done twice per request (the client's body,
 * the upstream's answer). A thread keeps one tokener per depth it asks for
 * (two slots) and frees them when it exits. A tokener's buffer grows to the
 * longest string it read, so one that read more than JTOK_KEEP_MAX bytes is
 * freed instead of kept (jtok_put). */
#ifndef AIPROXY_JTOK_H
#define AIPROXY_JTOK_H

#include <json-c/json.h>
#include <stddef.h>

#define JTOK_KEEP_MAX (64u << 10)

/* The thread's tokener for `depth`, reset, with `flags` set
 * (json_tokener_set_flags). Owned by the thread: give it back with jtok_put
 * before the next jtok_get of the same thread. NULL on ENOMEM. */
json_tokener *jtok_get(int depth, int flags);

/* Gives back a tokener from jtok_get that read `len` bytes: kept for the
 * thread's next parse, or freed when len > JTOK_KEEP_MAX. NULL is a no-op. */
void jtok_put(json_tokener *tok, size_t len);

#endif
