/* otel_env — the settings half of otel.h: the OTEL_* environment read once
 * per process (otel_init), and the sampler that follows them. The values
 * live in otel_cfg (otel_cfg.h), read by the exporter. */
#include "shared/otel.h"
#include "shared/otel_cfg.h"

#include "shared/pct.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

otel_cfg_t otel_cfg;

/* --- configuration -------------------------------------------------------- */

static const char *otel__env(const char *name)
{
    const char *v = getenv(name);

    return v && *v ? v : NULL;
}

/* Trims spaces at both ends of s[0..*n), in place: returns the start. */
static const char *otel__trim(const char *s, size_t *n)
{
    while (*n && (*s == ' ' || *s == '\t')) {
        s++;
        (*n)--;
    }
    while (*n && (s[*n - 1] == ' ' || s[*n - 1] == '\t'))
        (*n)--;
    return s;
}

/* OTEL_EXPORTER_OTLP_HEADERS: "k=v,k=v", values percent-encoded (W3C
 * baggage format). The values are secrets: an error names the key only. */
static int otel__headers(const char *env, const char *text, char *err, size_t errlen)
{
    const char *p = text;

    while (*p) {
        const char *comma = strchr(p, ','), *eq, *k, *v;
        size_t len = comma ? (size_t)(comma - p) : strlen(p), kl, vl;
        char val[CAP_OTEL_SETTING], *line;
        long dl;

        kl = len;
        if (otel__trim(p, &kl) && kl == 0)
            goto next;   /* an empty entry: "a=b,,c=d" */
        if (!(eq = memchr(p, '=', len))) {
            snprintf(err, errlen, "%s: an entry is not key=value", env);
            return -EINVAL;
        }
        kl = (size_t)(eq - p);
        k = otel__trim(p, &kl);
        vl = len - (size_t)(eq + 1 - p);
        v = otel__trim(eq + 1, &vl);
        dl = pct_decode(v, vl, val, sizeof(val), PCT_STRICT);
        if (kl == 0 || strcspn(k, ":\r\n \t") < kl || dl < 0 || strpbrk(val, "\r\n")) {
            snprintf(err, errlen, "%s: entry '%.*s' is not a valid header", env,
                     (int)(kl < 64 ? kl : 64), k);
            return -EINVAL;
        }
        if (otel_cfg.nheaders >= OTEL_CFG_HEADERS) {
            snprintf(err, errlen, "%s: more than %d headers", env, OTEL_CFG_HEADERS);
            return -EINVAL;
        }
        if (!(line = malloc(kl + (size_t)dl + 3)))
            return -ENOMEM;
        memcpy(line, k, kl);
        memcpy(line + kl, ": ", 2);
        memcpy(line + kl + 2, val, (size_t)dl + 1);
        otel_cfg.headers[otel_cfg.nheaders++] = line;
next:
        p = comma ? comma + 1 : p + len;
    }
    return 0;
}

static int otel__sampler(char *err, size_t errlen)
{
    const char *s = otel__env("OTEL_TRACES_SAMPLER"), *arg = otel__env("OTEL_TRACES_SAMPLER_ARG");
    double ratio = 1.0;
    char *end;

    otel_cfg.parentbased = 1;
    otel_cfg.root = OTEL_ROOT_ON;
    if (!s)
        return 0;
    if (strncmp(s, "parentbased_", 12) == 0)
        s += 12;
    else
        otel_cfg.parentbased = 0;
    if (strcmp(s, "always_on") == 0)
        otel_cfg.root = OTEL_ROOT_ON;
    else if (strcmp(s, "always_off") == 0)
        otel_cfg.root = OTEL_ROOT_OFF;
    else if (strcmp(s, "traceidratio") == 0)
        otel_cfg.root = OTEL_ROOT_RATIO;
    else {
        snprintf(err, errlen, "OTEL_TRACES_SAMPLER=%s: want always_on, always_off, traceidratio "
                 "or parentbased_ one of them", getenv("OTEL_TRACES_SAMPLER"));
        return -EINVAL;
    }
    if (otel_cfg.root == OTEL_ROOT_RATIO && arg) {
        errno = 0;
        ratio = strtod(arg, &end);
        if (errno || end == arg || *end || !(ratio >= 0.0 && ratio <= 1.0)) {
            snprintf(err, errlen, "OTEL_TRACES_SAMPLER_ARG=%s: want a ratio 0..1", arg);
            return -EINVAL;
        }
    }
    otel_cfg.threshold = ratio >= 1.0 ? UINT64_MAX : (uint64_t)(ratio * 72057594037927936.0);
    return 0;
}

static int otel__endpoint(char *err, size_t errlen)
{
    const char *t = otel__env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    const char *b = otel__env("OTEL_EXPORTER_OTLP_ENDPOINT");
    int n;

    if (t) {
        n = snprintf(otel_cfg.url, sizeof(otel_cfg.url), "%s", t);
    } else if (b) {
        size_t l = strlen(b);
        while (l && b[l - 1] == '/')
            l--;
        n = snprintf(otel_cfg.url, sizeof(otel_cfg.url), "%.*s/v1/traces", (int)l, b);
    } else {
        return 0;
    }
    if (n < 0 || (size_t)n >= sizeof(otel_cfg.url) ||
        (strncmp(otel_cfg.url, "http://", 7) != 0 && strncmp(otel_cfg.url, "https://", 8) != 0) ||
        strpbrk(otel_cfg.url, " \r\n")) {
        snprintf(err, errlen, "%s: want an http:// or https:// URL",
                 t ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT");
        otel_cfg.url[0] = '\0';
        return -EINVAL;
    }
    return 1;
}

int otel_init(const char *service, char *err, size_t errlen)
{
    const char *exp = otel__env("OTEL_TRACES_EXPORTER"), *proto, *h, *off;
    int rc;

    otel_cfg.on = 0;
    while (otel_cfg.nheaders)
        free(otel_cfg.headers[--otel_cfg.nheaders]);
    off = otel__env("OTEL_SDK_DISABLED");
    if ((off && strcmp(off, "true") == 0) || (exp && strcmp(exp, "none") == 0))
        return 0;
    if (exp && strcmp(exp, "otlp") != 0) {
        snprintf(err, errlen, "OTEL_TRACES_EXPORTER=%s: want otlp or none", exp);
        return -EINVAL;
    }
    proto = otel__env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
    if (!proto)
        proto = otel__env("OTEL_EXPORTER_OTLP_PROTOCOL");
    if (proto && strcmp(proto, "http/json") != 0 && strcmp(proto, "http/protobuf") != 0) {
        snprintf(err, errlen, "OTEL_EXPORTER_OTLP_PROTOCOL=%s: only http/json is spoken "
                 "(an OTLP/HTTP collector takes it on the same port)", proto);
        return -EINVAL;
    }
    if ((rc = otel__endpoint(err, errlen)) <= 0)
        return rc;
    if ((rc = otel__sampler(err, errlen)) < 0)
        return rc;
    h = otel__env("OTEL_EXPORTER_OTLP_TRACES_HEADERS");
    if (h && (rc = otel__headers("OTEL_EXPORTER_OTLP_TRACES_HEADERS", h, err, errlen)) < 0)
        return rc;
    h = h ? NULL : otel__env("OTEL_EXPORTER_OTLP_HEADERS");
    if (h && (rc = otel__headers("OTEL_EXPORTER_OTLP_HEADERS", h, err, errlen)) < 0)
        return rc;
    snprintf(otel_cfg.service, sizeof(otel_cfg.service), "%s",
             otel__env("OTEL_SERVICE_NAME") ? otel__env("OTEL_SERVICE_NAME") : service);
    otel_cfg.on = 1;
    return 1;
}

int otel_enabled(void)
{
    return otel_cfg.on;
}

int otel_sample(const otel_ctx_t *parent, const uint8_t trace_id[16])
{
    uint64_t low = 0;

    if (!otel_cfg.on)
        return 0;
    if (parent && otel_cfg.parentbased)
        return parent->flags & 1;
    if (otel_cfg.root != OTEL_ROOT_RATIO)
        return otel_cfg.root == OTEL_ROOT_ON;
    for (int i = 9; i < 16; i++)   /* the low 56 bits: the random part (W3C level 2) */
        low = low << 8 | trace_id[i];
    return otel_cfg.threshold == UINT64_MAX || low < otel_cfg.threshold;
}
