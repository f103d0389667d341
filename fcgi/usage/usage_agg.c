/* usage_agg — see usage_agg.h. Rows are json-c objects from the start (the
 * answer's own shape), found again through an index keyed by their group. */
#include "fcgi/usage/usage_agg.h"

#include "shared/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct usage_agg {
    const usage_query_t *q;
    json_object *index;    /* group key -> row (a reference of rows') */
    json_object *rows;     /* array of rows */
    json_object *totals;   /* a row without dimensions */
    json_object *servers;  /* server -> true, every server seen */
    int sorted;
    int final;             /* upstream time turned from µs (as stored) into ms */
};

/* The counters of a row, in the order answers show them. */
static const char *const usage_agg__counts[] = {
    "requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens",
    "upstream_ms", "tool_calls_total", NULL,
};

static json_object *usage_agg__row(const char *key, const char *assistant, const char *time)
{
    json_object *r = json_object_new_object();
    if (!r)
        return NULL;
    if (key)
        json_object_object_add(r, "key", json_object_new_string(key));
    if (assistant)
        json_object_object_add(r, "assistant", json_object_new_string(assistant));
    if (time)
        json_object_object_add(r, "time", json_object_new_string(time));
    for (const char *const *c = usage_agg__counts; *c; c++)
        json_object_object_add(r, *c, json_object_new_int64(0));
    json_object_object_add(r, "tool_calls", json_object_new_object());
    if (json_object_object_length(r) != (key ? 1 : 0) + (assistant ? 1 : 0) + (time ? 1 : 0) + 8) {
        json_object_put(r);
        return NULL;
    }
    return r;
}

usage_agg_t *usage_agg_new(const usage_query_t *q)
{
    usage_agg_t *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->q = q;
    g->index = json_object_new_object();
    g->rows = json_object_new_array();
    g->totals = usage_agg__row(NULL, NULL, NULL);
    g->servers = json_object_new_object();
    if (!g->index || !g->rows || !g->totals || !g->servers) {
        usage_agg_free(g);
        return NULL;
    }
    return g;
}

void usage_agg_free(usage_agg_t *g)
{
    if (!g)
        return;
    json_object_put(g->index);
    json_object_put(g->rows);
    json_object_put(g->totals);
    json_object_put(g->servers);
    free(g);
}

/* Adds v to counter `name` of `obj` (created at 0 when absent). */
static int usage_agg__inc(json_object *obj, const char *name, long long v)
{
    json_object *c = NULL;
    if (json_object_object_get_ex(obj, name, &c) && c)
        return json_object_set_int64(c, json_object_get_int64(c) + v) ? 0 : -ENOMEM;
    c = json_object_new_int64(v);
    if (!c || json_object_object_add(obj, name, c) != 0) {
        json_object_put(c);
        return -ENOMEM;
    }
    return 0;
}

/* Applies metric m = v to a row. 0, or -ENOMEM. */
static int usage_agg__apply(json_object *row, const char *m, long long v)
{
    static const struct { const char *m, *name; } map[] = {
        {"req", "requests"}, {"err", "errors"}, {"pt", "prompt_tokens"},
        {"ct", "completion_tokens"}, {"uus", "upstream_ms"}, {"tc", "tool_calls_total"},
    };
    if (strncmp(m, "t:", 2) == 0)
        return usage_agg__inc(json_object_object_get(row, "tool_calls"), m + 2, v);
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(m, map[i].m) == 0) {
            int rc = usage_agg__inc(row, map[i].name, v);
            if (rc == 0 && (i == 2 || i == 3))
                rc = usage_agg__inc(row, "total_tokens", v);
            return rc;
        }
    return 0;
}

static int usage_agg__known(const char *m)
{
    static const char *const known[] = {"req", "err", "pt", "ct", "uus", "tc", NULL};
    if (strncmp(m, "t:", 2) == 0)
        return m[2] != '\0';
    for (const char *const *k = known; *k; k++)
        if (strcmp(m, *k) == 0)
            return 1;
    return 0;
}

int usage_agg_add(usage_agg_t *g, long long bucket_t, const char *field, const char *value)
{
    char p[USAGE_ID_MAX + 1], a[USAGE_ID_MAX + 1], label[USAGE_TIME_MAX];
    char gk[USAGE_FIELD_MAX + USAGE_TIME_MAX + 4];
    const char *m;
    char *end = NULL;
    long long v;
    json_object *row = NULL;
    unsigned grp = g->q->group;
    int rc;

    if (g->final)
        return -EALREADY;
    if (!field || !value || usage_field_split(field, p, a, &m) < 0 || !usage_agg__known(m))
        return 0;
    errno = 0;
    v = strtoll(value, &end, 10);
    if (errno || end == value || *end || v < 0)
        return 0;
    if ((g->q->key && strcmp(g->q->key, p) != 0) ||
        (g->q->assistant && strcmp(g->q->assistant, a) != 0))
        return 0;
    usage_bucket_label(bucket_t, g->q->gran, label);
    /* '|' never occurs in ids (usage_id_clean) nor labels: a safe joint */
    snprintf(gk, sizeof(gk), "%s|%s|%s", grp & USAGE_G_KEY ? p : "",
             grp & USAGE_G_ASSISTANT ? a : "", grp & USAGE_G_TIME ? label : "");
    if (!json_object_object_get_ex(g->index, gk, &row)) {
        if (json_object_array_length(g->rows) >= CAP_USAGE_ROWS)
            return -ENOSPC;
        row = usage_agg__row(grp & USAGE_G_KEY ? p : NULL, grp & USAGE_G_ASSISTANT ? a : NULL,
                             grp & USAGE_G_TIME ? label : NULL);
        if (!row)
            return -ENOMEM;
        if (json_object_array_add(g->rows, row) != 0) {
            json_object_put(row);
            return -ENOMEM;
        }
        if (json_object_object_add(g->index, gk, json_object_get(row)) != 0) {
            json_object_put(row);
            return -ENOMEM;
        }
        g->sorted = 0;
    }
    if ((rc = usage_agg__apply(row, m, v)) < 0 || (rc = usage_agg__apply(g->totals, m, v)) < 0)
        return rc;
    if (strncmp(m, "t:", 2) == 0 && !json_object_object_get_ex(g->servers, m + 2, NULL))
        json_object_object_add(g->servers, m + 2, json_object_new_boolean(1));
    return 0;
}

static const char *usage_agg__s(json_object *row, const char *f)
{
    json_object *v = NULL;
    return json_object_object_get_ex(row, f, &v) && v ? json_object_get_string(v) : "";
}

static int usage_agg__cmp(const void *x, const void *y)
{
    json_object *a = *(json_object *const *)x, *b = *(json_object *const *)y;
    int c = strcmp(usage_agg__s(a, "time"), usage_agg__s(b, "time"));
    if (!c)
        c = strcmp(usage_agg__s(a, "key"), usage_agg__s(b, "key"));
    if (!c)
        c = strcmp(usage_agg__s(a, "assistant"), usage_agg__s(b, "assistant"));
    return c;
}

/* Upstream time is summed in µs (as stored) and shown in ms, rounded once. */
static void usage_agg__ms(json_object *row)
{
    json_object *v = json_object_object_get(row, "upstream_ms");
    if (v)
        json_object_set_int64(v, (json_object_get_int64(v) + 500) / 1000);
}

/* Sorts the rows and makes upstream time ms: before the first rendering. */
static void usage_agg__finish(usage_agg_t *g)
{
    if (!g->sorted)
        json_object_array_sort(g->rows, usage_agg__cmp);
    g->sorted = 1;
    if (g->final)
        return;
    for (size_t i = 0; i < json_object_array_length(g->rows); i++)
        usage_agg__ms(json_object_array_get_idx(g->rows, i));
    usage_agg__ms(g->totals);
    g->final = 1;
}

json_object *usage_agg_json(usage_agg_t *g, const char *note)
{
    char t[USAGE_TIME_MAX];
    json_object *o = json_object_new_object(), *rows = NULL, *tot = NULL;

    usage_agg__finish(g);
    if (!o || json_object_deep_copy(g->rows, &rows, NULL) != 0 ||
        json_object_deep_copy(g->totals, &tot, NULL) != 0)
        goto fail;
    json_object_object_add(o, "object", json_object_new_string("usage"));
    usage_time_format(g->q->from, t);
    json_object_object_add(o, "from", json_object_new_string(t));
    usage_time_format(g->q->to, t);
    json_object_object_add(o, "to", json_object_new_string(t));
    json_object_object_add(o, "granularity",
                           json_object_new_string(g->q->gran == USAGE_DAY ? "day" : "hour"));
    if (note)
        json_object_object_add(o, "note", json_object_new_string(note));
    json_object_object_add(o, "rows", rows);
    json_object_object_add(o, "totals", tot);
    return o;
fail:
    json_object_put(rows);
    json_object_put(tot);
    json_object_put(o);
    return NULL;
}

/* One CSV cell: quoted when it holds a comma, a quote or a line break. */
static int usage_agg__cell(buf_t *b, const char *s, int first)
{
    int rc = first ? 0 : buf_puts(b, ",");
    if (rc == 0 && !strpbrk(s, ",\"\r\n"))
        return buf_puts(b, s);
    if (rc == 0)
        rc = buf_puts(b, "\"");
    for (; rc == 0 && *s; s++)
        rc = *s == '"' ? buf_puts(b, "\"\"") : buf_append(b, s, 1);
    return rc == 0 ? buf_puts(b, "\"") : rc;
}

static int usage_agg__cmpstr(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

char *usage_agg_csv(usage_agg_t *g, size_t *len)
{
    static const char *const dims[] = {"key", "assistant", "time"};
    static const unsigned bits[] = {USAGE_G_KEY, USAGE_G_ASSISTANT, USAGE_G_TIME};
    size_t ns = (size_t)json_object_object_length(g->servers), i = 0, r, nr;
    const char **srv = calloc(ns ? ns : 1, sizeof(*srv));
    char *out = NULL, num[32];
    buf_t b;
    int rc = 0, first = 1;

    buf_init(&b, CAP_USAGE_CSV);
    if (!srv)
        goto out;
    json_object_object_foreach(g->servers, name, unused) {
        (void)unused;
        srv[i++] = name;
    }
    qsort(srv, ns, sizeof(*srv), usage_agg__cmpstr);
    usage_agg__finish(g);
    for (i = 0; rc == 0 && i < 3; i++)
        if (g->q->group & bits[i]) {
            rc = usage_agg__cell(&b, dims[i], first);
            first = 0;
        }
    for (const char *const *c = usage_agg__counts; rc == 0 && *c; c++) {
        rc = usage_agg__cell(&b, *c, first);
        first = 0;
    }
    for (i = 0; rc == 0 && i < ns; i++)
        rc = buf_printf(&b, ",tool_calls.%s", srv[i]);
    if (rc == 0)
        rc = buf_puts(&b, "\r\n");
    nr = json_object_array_length(g->rows);
    for (r = 0; rc == 0 && r < nr; r++) {
        json_object *row = json_object_array_get_idx(g->rows, r), *tc;
        first = 1;
        for (i = 0; rc == 0 && i < 3; i++)
            if (g->q->group & bits[i]) {
                rc = usage_agg__cell(&b, usage_agg__s(row, dims[i]), first);
                first = 0;
            }
        for (const char *const *c = usage_agg__counts; rc == 0 && *c; c++) {
            rc = usage_agg__cell(&b, usage_agg__s(row, *c), first);
            first = 0;
        }
        tc = json_object_object_get(row, "tool_calls");
        for (i = 0; rc == 0 && i < ns; i++) {
            json_object *v = json_object_object_get(tc, srv[i]);
            snprintf(num, sizeof(num), "%lld", v ? (long long)json_object_get_int64(v) : 0LL);
            rc = usage_agg__cell(&b, num, 0);
        }
        if (rc == 0)
            rc = buf_puts(&b, "\r\n");
    }
    if (rc == 0) {
        *len = b.len;
        out = buf_detach(&b);
    }
out:
    buf_free(&b);
    free(srv);
    return out;
}
