/* otel_cfg — the trace settings otel_env.c reads from the OTEL_* environment
 * and otel_export.c sends with. Internal to shared/otel*.c. */
#ifndef AIPROXY_OTEL_CFG_H
#define AIPROXY_OTEL_CFG_H

#include "shared/caps.h"

#include <stddef.h>
#include <stdint.h>

#define OTEL_CFG_HEADERS 16          /* OTEL_EXPORTER_OTLP_HEADERS entries */

enum otel_root { OTEL_ROOT_ON = 0, OTEL_ROOT_OFF, OTEL_ROOT_RATIO };

typedef struct otel_cfg {
    int on;
    char url[CAP_OTEL_SETTING];
    char service[256];
    char *headers[OTEL_CFG_HEADERS];  /* "Name: value", malloc'd at init */
    size_t nheaders;
    enum otel_root root;               /* the sampler for a trace's root */
    int parentbased;
    uint64_t threshold;                /* ratio: sample when the id's low 56 bits are below */
} otel_cfg_t;

/* Written by otel_init before any thread of ours runs; read-only after. */
extern otel_cfg_t otel_cfg;

#endif
