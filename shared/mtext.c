/* mtext — Prometheus text format 0.0.4 (see mtext.h). */
#include "shared/mtext.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Appends s with each byte of `special` escaped as a backslash and the
 * byte, '\n' as "\\n". */
static int mtext__escaped(buf_t *b, const char *s, const char *special)
{
    const char *run = s;
    int rc = 0;

    for (; *s && rc == 0; s++) {
        if (*s != '\n' && !strchr(special, *s))
            continue;
        rc = buf_append(b, run, (size_t)(s - run));
        if (rc == 0)
            rc = buf_puts(b, *s == '\n' ? "\\n" : *s == '"' ? "\\\"" : "\\\\");
        run = s + 1;
    }
    return rc ? rc : buf_append(b, run, strlen(run));
}

int mtext_label_value(buf_t *b, const char *v)
{
    return mtext__escaped(b, v ? v : "", "\\\"");
}

int mtext_family(buf_t *b, const char *name, const char *type, const char *help)
{
    int rc = buf_printf(b, "# HELP %s ", name);

    if (rc == 0)
        rc = mtext__escaped(b, help, "\\");
    if (rc == 0)
        rc = buf_printf(b, "\n# TYPE %s %s\n", name, type);
    return rc;
}

/* name{labels[,le="x"]} value\n */
static int mtext__line(buf_t *b, const char *name, const char *suffix, const char *const *lnames,
                       const char *const *lvals, int n, const char *le, const char *value)
{
    int rc = buf_printf(b, "%s%s", name, suffix);

    if (rc == 0 && (n > 0 || le))
        rc = buf_puts(b, "{");
    for (int i = 0; i < n && rc == 0; i++) {
        rc = buf_printf(b, "%s%s=\"", i ? "," : "", lnames[i]);
        if (rc == 0)
            rc = mtext_label_value(b, lvals[i]);
        if (rc == 0)
            rc = buf_puts(b, "\"");
    }
    if (rc == 0 && le)
        rc = buf_printf(b, "%sle=\"%s\"", n > 0 ? "," : "", le);
    if (rc == 0 && (n > 0 || le))
        rc = buf_puts(b, "}");
    if (rc == 0)
        rc = buf_printf(b, " %s\n", value);
    return rc;
}

int mtext_sample(buf_t *b, const char *name, const char *const *lnames,
                 const char *const *lvals, int n, const char *value)
{
    return mtext__line(b, name, "", lnames, lvals, n, NULL, value);
}

int mtext_histogram(buf_t *b, const char *name, const char *const *lnames,
                    const char *const *lvals, int n, const double *bounds, int nb,
                    const uint64_t *counts, double sum)
{
    char le[32], v[32];
    uint64_t cum = 0;
    int rc = 0;

    for (int i = 0; i <= nb && rc == 0; i++) {
        cum += counts[i];
        rc = mtext__line(b, name, "_bucket", lnames, lvals, n,
                         i < nb ? mtext_f(bounds[i], le, sizeof le) : "+Inf",
                         mtext_u64(cum, v, sizeof v));
    }
    if (rc == 0)
        rc = mtext__line(b, name, "_sum", lnames, lvals, n, NULL, mtext_f(sum, v, sizeof v));
    if (rc == 0)
        rc = mtext__line(b, name, "_count", lnames, lvals, n, NULL, mtext_u64(cum, v, sizeof v));
    return rc;
}

const char *mtext_u64(uint64_t v, char *out, size_t len)
{
    snprintf(out, len, "%" PRIu64, v);
    return out;
}

const char *mtext_f(double v, char *out, size_t len)
{
    if (isnan(v))
        snprintf(out, len, "NaN");
    else if (isinf(v))
        snprintf(out, len, "%s", v > 0 ? "+Inf" : "-Inf");
    else
        snprintf(out, len, "%.9g", v);
    return out;
}
