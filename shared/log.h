/* log — one line per event on stderr (or a file), safe from any thread.
 *
 * Lines look like `2026-11-25T04:50:00.123Z aiproxy-fcgi[123] warn: text`,
 * with ` rid=<request id>` at the end while the thread serves a request
 * (log_set_request). With AIPROXY_LOG_FORMAT=json every line is one JSON
 * object instead: {"time","level","msg","component","pid"} and "request_id"
 * when known (docs/observability.md, "Request ids and logs").
 * The level comes from log_init or AIPROXY_LOG_LEVEL (error|warn|info|debug).
 * Never log a secret: callers pass redacted values. */
#ifndef AIPROXY_LOG_H
#define AIPROXY_LOG_H

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Sets the program name shown on every line and the level; AIPROXY_LOG_LEVEL
 * in the environment overrides `level`, AIPROXY_LOG_FORMAT (text|json) sets
 * the format (text when unset or unknown). Call once, before threads start. */
void log_init(const char *prog, enum log_level level);

/* Sends further lines to `path` (appending), or back to stderr when NULL.
 * Used for SIGHUP log rotation. The first call that opens a file must come
 * before threads start; later ones are safe while other threads log (the
 * log's fd number never changes: the new file is dup3()'d onto it). Returns
 * 0 or -errno; on error the old destination stays. */
int log_reopen(const char *path);

/* True when lines of this level are written (to skip costly formatting). */
int log_enabled(enum log_level level);

/* 1 when lines are JSON (AIPROXY_LOG_FORMAT=json), else 0. */
int log_json(void);

/* The request the calling thread serves from now on: its id goes on every
 * line the thread logs (text: " rid=<id>"; JSON: "request_id") until
 * log_set_request(NULL). `rid` is borrowed: it must stay valid until then.
 * Only ids that are safe as they are (shared/reqid.h) belong here. */
void log_set_request(const char *rid);

/* One JSON log line with the usual members ("time", "level", "msg",
 * "component", "pid") followed by the members of `fields`, the text of a
 * JSON object the caller built (e.g. json-c's, with every string valid
 * UTF-8), which must not repeat those names; no "request_id" is added (put
 * it in fields). In text mode, or when `fields` is not an object's text,
 * writes msg as log_msg would. Lines of any length are written whole. */
void log_fields(enum log_level level, const char *msg, const char *fields);

/* Makes the calling thread hold its held lines (log_held, log_fields_held:
 * a responder thread's access line per request) instead of one write(2)
 * each (on: 1), or stop (0). Held lines are written whole, in order, a run
 * at a time: when the thread's buffer (8 KB) is full, every 100 ms by a
 * flusher thread of the process (started by the first hold), before any
 * line written unheld (every other line, from any thread: a later warning
 * never comes before an earlier access line), before a log_reopen (a
 * rotated file gets the lines of its time), and at log_hold(0), which a
 * holding thread must call before it exits. A process ending by signal
 * loses at most the last 100 ms of held lines. Returns 0, or -errno (the
 * lines then go out at once). */
int log_hold(int on);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* log_msg and log_fields for a held line (log_hold): written with the
 * thread's next run when it holds, at once when it does not. */
void log_held(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_fields_held(enum log_level level, const char *msg, const char *fields);

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LOG_LVL_DEBUG)) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#endif
