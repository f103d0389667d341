/* otel — OpenTelemetry traces (docs/traces.md): W3C trace
 * context (traceparent), span records, a sampler, and an exporter that
 * batches finished spans off the request path and POSTs them as OTLP/HTTP
 * JSON to a collector.
 *
 * Configured from the standard environment once per process (otel_init):
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is) or OTEL_EXPORTER_OTLP_ENDPOINT
 * (+ "/v1/traces"), OTEL_TRACES_EXPORTER ("none" turns it off),
 * OTEL_EXPORTER_OTLP_HEADERS (k=v,k=v; never logged), OTEL_SERVICE_NAME,
 * OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG.
 *
 * Threads: the parsers, ids and span setters touch no shared state; ids come
 * from the thread's own generator (shared/rid.h). otel_span_end hands a copy
 * to a bounded per-process queue (a mutex, never a wait); one exporter
 * thread per process, started with otel_start *after* any fork, drains it.
 * When tracing is off every entry point returns at its first branch. */
#ifndef AIPROXY_OTEL_H
#define AIPROXY_OTEL_H

#include "shared/caps.h"

#include <stddef.h>
#include <stdint.h>

#define OTEL_TP_LEN 55              /* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define OTEL_ATTRS CAP_OTEL_ATTRS
#define OTEL_SPAN_TEXT CAP_OTEL_SPAN_TEXT

/* A span context: what traceparent carries. */
typedef struct otel_ctx {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t flags;                  /* bit 0: sampled */
} otel_ctx_t;

enum otel_kind { OTEL_KIND_INTERNAL = 1, OTEL_KIND_SERVER = 2, OTEL_KIND_CLIENT = 3 };
enum otel_status { OTEL_STATUS_UNSET = 0, OTEL_STATUS_OK = 1, OTEL_STATUS_ERROR = 2 };
enum otel_atype { OTEL_A_STR = 1, OTEL_A_INT, OTEL_A_DOUBLE, OTEL_A_BOOL };

typedef struct otel_attr {
    const char *key;                /* static: attribute names are literals */
    enum otel_atype type;
    union {
        size_t s;                   /* STR: offset of the value in the span's text */
        long long i;
        double d;
        int b;
    } v;
} otel_attr_t;

/* One span, plain data (a caller may keep it on its stack or in its
 * per-request state between start and end). Strings are copied into `text`:
 * past its room, or past OTEL_ATTRS attributes, setters drop the attribute
 * (the span still goes out). */
typedef struct otel_span {
    otel_ctx_t ctx;                 /* its own ids (flags from its parent) */
    uint8_t parent_id[8];           /* all zero: a root span */
    enum otel_kind kind;
    enum otel_status status;
    long long start_ns, end_ns;     /* unix ns */
    size_t name;                    /* offset of the name in text */
    size_t status_msg;              /* offset, or (size_t)-1 when none */
    otel_attr_t attrs[OTEL_ATTRS];
    size_t nattrs;
    char text[OTEL_SPAN_TEXT];
    size_t text_len;
} otel_span_t;

/* --- trace context (pure) ----------------------------------------------- */

/* Parses a traceparent header value (W3C Trace Context level 1): version 00
 * exactly as "00-<32 hex>-<16 hex>-<2 hex>"; a higher version (not ff) is
 * read by its first four fields when what follows them starts with '-';
 * version ff, upper-case hex, all-zero ids or a bad shape are refused.
 * Leading/trailing spaces and tabs are ignored. 0 and *out, or -EINVAL. */
int otel_tp_parse(const char *s, otel_ctx_t *out);

/* Writes `c` as a version-00 traceparent and a NUL: out holds
 * OTEL_TP_LEN + 1 bytes. */
void otel_tp_format(const otel_ctx_t *c, char *out);

/* Lowercase hex of n bytes and a NUL into out (2n + 1 bytes). */
void otel_hex(const uint8_t *b, size_t n, char *out);

/* --- configuration and sampling ------------------------------------------ */

/* Reads the OTEL_* environment (see the top); `service` names this process
 * when OTEL_SERVICE_NAME is unset. Returns 1 when tracing is on, 0 when off,
 * -EINVAL with err set for a setting that does not parse (tracing then stays
 * off; the caller says so and goes on or stops). Call once, before threads. */
int otel_init(const char *service, char *err, size_t errlen);

/* 1 when tracing is on in this process. A load and a branch. */
int otel_enabled(void);

/* The sampler's decision for a new span: `parent` (NULL for a root) is the
 * remote or local parent; `trace_id` the trace it will belong to. 1 to
 * record, 0 not to. */
int otel_sample(const otel_ctx_t *parent, const uint8_t trace_id[16]);

/* --- spans ---------------------------------------------------------------- */

/* Starts a span named `name` (copied) of `kind` now, child of `parent` (its
 * trace; NULL: a new trace). New span id from the thread's generator;
 * flags: the parent's, or sampled for a root. */
void otel_span_start(otel_span_t *sp, const otel_ctx_t *parent, const char *name,
                     enum otel_kind kind);

/* Attributes: `key` must outlive the span (a literal); `val` is copied.
 * NULL val: nothing is set. */
void otel_span_str(otel_span_t *sp, const char *key, const char *val);
void otel_span_int(otel_span_t *sp, const char *key, long long val);
void otel_span_double(otel_span_t *sp, const char *key, double val);
void otel_span_bool(otel_span_t *sp, const char *key, int val);

/* The span's status; msg (copied) only for an error, may be NULL. */
void otel_span_status(otel_span_t *sp, enum otel_status st, const char *msg);

/* Ends the span (end_ns now, unless set) and queues a copy for export.
 * Never blocks: when the queue is full, or the exporter is not running, the
 * span is dropped and counted (otel_dropped). */
void otel_span_end(otel_span_t *sp);

/* Unix ns now (CLOCK_REALTIME). */
long long otel_now_ns(void);

/* --- the exporter --------------------------------------------------------- */

/* Starts this process's exporter thread (after fork: a forked child has no
 * thread of its parent). 0, -EALREADY when running in this process, -ENOTSUP
 * when tracing is off, or -errno. */
int otel_start(void);

/* Flushes what is queued (trying for at most bound_ms) and stops the
 * thread. Spans ended later are dropped. Safe when never started. */
void otel_stop(int bound_ms);

/* Spans dropped so far in this process (queue full, exporter down, a batch
 * the collector refused or never took). */
unsigned long long otel_dropped(void);

/* Spans the collector accepted so far in this process. */
unsigned long long otel_exported(void);

/* The OTLP/HTTP JSON body (ExportTraceServiceRequest) for n spans of
 * `service`: lowerCamelCase, hex ids, int64 values and times as strings,
 * enums as integers. malloc'd NUL-terminated text, NULL on ENOMEM. Pure. */
char *otel_encode(const otel_span_t *const *spans, size_t n, const char *service);

#endif
