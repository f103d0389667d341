/* usage_q — see usage_q.h. Calendar arithmetic is done here (days from and to
 * a civil date, H. Hinnant's algorithms) rather than with timegm, so parsing
 * and naming never depend on the process's time zone. */
#include "fcgi/usage/usage_q.h"

#include "shared/cfg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Year 10000: the largest time a query may name. */
#define USAGE__T_MAX 253402300800LL

static long long usage__days_from_civil(long long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

static void usage__civil(long long t, int *y, int *m, int *d, int *hh, int *mi, int *ss)
{
    long long z = (t >= 0 ? t / 86400 : (t - 86399) / 86400), s = t - z * 86400;
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
    *hh = (int)(s / 3600);
    *mi = (int)(s % 3600 / 60);
    *ss = (int)(s % 60);
}

long long usage_bucket_start(long long t, int gran)
{
    long long w = gran == USAGE_DAY ? 86400 : 3600;
    return (t >= 0 ? t / w : (t - w + 1) / w) * w;
}

void usage_bucket_name(long long t, int gran, char *out)
{
    int y, m, d, hh, mi, ss;
    usage__civil(t, &y, &m, &d, &hh, &mi, &ss);
    if (gran == USAGE_DAY)
        snprintf(out, USAGE_BUCKET_MAX, "%04d%02d%02d", y, m, d);
    else
        snprintf(out, USAGE_BUCKET_MAX, "%04d%02d%02d%02d", y, m, d, hh);
}

void usage_bucket_label(long long t, int gran, char *out)
{
    int y, m, d, hh, mi, ss;
    usage__civil(t, &y, &m, &d, &hh, &mi, &ss);
    if (gran == USAGE_DAY)
        snprintf(out, USAGE_TIME_MAX, "%04d-%02d-%02d", y, m, d);
    else
        snprintf(out, USAGE_TIME_MAX, "%04d-%02d-%02dT%02d:00:00Z", y, m, d, hh);
}

void usage_time_format(long long t, char *out)
{
    int y, m, d, hh, mi, ss;
    usage__civil(t, &y, &m, &d, &hh, &mi, &ss);
    snprintf(out, USAGE_TIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, hh, mi, ss);
}

/* n decimal digits at s into *v; 0 or -EINVAL. */
static int usage__digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        *v = *v * 10 + (s[i] - '0');
    }
    return 0;
}

static int usage__mdays(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

int usage_time_parse(const char *s, int is_to, long long *out)
{
    int y, mo, d, hh = 0, mi = 0, ss = 0, oh = 0, om = 0, sign = 0;
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > 40)
        return -EINVAL;
    if (strspn(s, "0123456789") == n) {
        if (n > 12)
            return -EINVAL;
        long long v = 0;
        for (size_t i = 0; i < n; i++)
            v = v * 10 + (s[i] - '0');
        if (v > USAGE__T_MAX)
            return -EINVAL;
        *out = v;
        return 0;
    }
    if (n < 10 || usage__digits(s, 4, &y) || s[4] != '-' || usage__digits(s + 5, 2, &mo) ||
        s[7] != '-' || usage__digits(s + 8, 2, &d) || y < 1970 || mo < 1 || mo > 12 || d < 1 ||
        d > usage__mdays(y, mo))
        return -EINVAL;
    if (n == 10) {
        *out = (usage__days_from_civil(y, (unsigned)mo, (unsigned)d) + (is_to ? 1 : 0)) * 86400;
        return 0;
    }
    const char *p = s + 10;
    if ((*p != 'T' && *p != 't') || strlen(p) < 10 || usage__digits(p + 1, 2, &hh) ||
        p[3] != ':' || usage__digits(p + 4, 2, &mi) || p[6] != ':' ||
        usage__digits(p + 7, 2, &ss) || hh > 23 || mi > 59 || ss > 60)
        return -EINVAL;
    p += 9;
    if (*p == '.') {
        size_t f = strspn(p + 1, "0123456789");
        if (f == 0)
            return -EINVAL;
        p += 1 + f;   /* fractions of a second are dropped */
    }
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        sign = 0;
    } else if ((*p == '+' || *p == ' ' || *p == '-') && strlen(p) == 6 &&
               !usage__digits(p + 1, 2, &oh) && p[3] == ':' && !usage__digits(p + 4, 2, &om) &&
               oh <= 23 && om <= 59) {
        sign = *p == '-' ? -1 : 1;
    } else {
        return -EINVAL;
    }
    long long t = usage__days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + hh * 3600 +
                  mi * 60 + (ss > 59 ? 59 : ss);
    t -= sign * (oh * 3600 + om * 60);
    if (t < 0 || t > USAGE__T_MAX)
        return -EINVAL;
    *out = t;
    return 0;
}

static int usage__id_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-' || c == ':';
}

void usage_id_clean(const char *s, char *out)
{
    size_t i = 0;
    if (!s || !*s) {
        memcpy(out, "-", 2);
        return;
    }
    for (; s[i] && i < USAGE_ID_MAX; i++)
        out[i] = usage__id_char((unsigned char)s[i]) ? s[i] : '_';
    out[i] = '\0';
}

int usage_field(char *out, size_t len, const char *principal, const char *assistant,
                const char *metric)
{
    int n = snprintf(out, len, "%s|%s|%s", principal, assistant, metric);
    return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

int usage_field_split(const char *field, char *p, char *a, const char **metric)
{
    const char *b1 = strchr(field, '|'), *b2 = b1 ? strchr(b1 + 1, '|') : NULL;
    size_t lp, la;

    if (!b2 || !b2[1])
        return -EINVAL;
    lp = (size_t)(b1 - field);
    la = (size_t)(b2 - b1 - 1);
    if (lp == 0 || la == 0 || lp > USAGE_ID_MAX || la > USAGE_ID_MAX)
        return -EINVAL;
    memcpy(p, field, lp);
    p[lp] = '\0';
    memcpy(a, b1 + 1, la);
    a[la] = '\0';
    *metric = b2 + 1;
    return 0;
}

static int usage__fail(char *err, size_t errlen, const char **param, const char *which,
                       const char *msg)
{
    snprintf(err, errlen, "%s: %s", which, msg);
    *param = which;
    return -EINVAL;
}

static int usage__group(const char *s, unsigned *out)
{
    *out = 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        if (n == 3 && strncmp(s, "key", 3) == 0)
            *out |= USAGE_G_KEY;
        else if (n == 9 && strncmp(s, "assistant", 9) == 0)
            *out |= USAGE_G_ASSISTANT;
        else if (n == 4 && strncmp(s, "time", 4) == 0)
            *out |= USAGE_G_TIME;
        else if (n != 0)
            return -EINVAL;
        s += n;
        if (*s == ',')
            s++;
    }
    return 0;
}

static int usage__filter_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > USAGE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!usage__id_char((unsigned char)s[i]))
            return 0;
    return 1;
}

int usage_query_parse(const usage_params_t *p, long long now, usage_query_t *q, char *err,
                      size_t errlen, const char **param)
{
    memset(q, 0, sizeof(*q));
    q->to = now;
    if (p->to && *p->to && usage_time_parse(p->to, 1, &q->to) < 0)
        return usage__fail(err, errlen, param, "to", "must be unix seconds, YYYY-MM-DD or "
                           "RFC 3339 (2026-12-07T21:00:00Z)");
    q->from = q->to - 86400;
    if (p->from && *p->from && usage_time_parse(p->from, 0, &q->from) < 0)
        return usage__fail(err, errlen, param, "from", "must be unix seconds, YYYY-MM-DD or "
                           "RFC 3339 (2026-12-07T21:00:00Z)");
    if (q->from >= q->to)
        return usage__fail(err, errlen, param, "from", "must be before to");
    if (!p->granularity || !*p->granularity)
        q->gran = q->to - q->from <= 48 * 3600 ? USAGE_HOUR : USAGE_DAY;
    else if (strcmp(p->granularity, "hour") == 0)
        q->gran = USAGE_HOUR;
    else if (strcmp(p->granularity, "day") == 0)
        q->gran = USAGE_DAY;
    else
        return usage__fail(err, errlen, param, "granularity", "must be hour or day");
    q->first = usage_bucket_start(q->from, q->gran);
    long long w = q->gran == USAGE_DAY ? 86400 : 3600;
    long long nb = (usage_bucket_start(q->to - 1, q->gran) - q->first) / w + 1;
    if (nb > CAP_USAGE_BUCKETS) {
        snprintf(err, errlen, "from: the range spans %lld %ss; one query reads at most %d "
                 "buckets (narrow the range or use granularity=day)", nb,
                 q->gran == USAGE_DAY ? "day" : "hour", CAP_USAGE_BUCKETS);
        *param = "from";
        return -EINVAL;
    }
    q->nbuckets = (long)nb;
    q->group = USAGE_G_KEY | USAGE_G_ASSISTANT | USAGE_G_TIME;
    if (p->group_by && usage__group(p->group_by, &q->group) < 0)
        return usage__fail(err, errlen, param, "group_by",
                           "a comma list of key, assistant, time (or empty for one total)");
    if (p->key && *p->key) {
        if (!usage__filter_ok(p->key))
            return usage__fail(err, errlen, param, "key", "must be a principal id "
                               "(key_<hex>, static:<hex>, apiman:<name>, or - for none)");
        q->key = p->key;
    }
    if (p->assistant && *p->assistant) {
        if (strcmp(p->assistant, "-") != 0 && !cfg_name_valid(p->assistant))
            return usage__fail(err, errlen, param, "assistant",
                               "must be an assistant name (or - for none)");
        q->assistant = p->assistant;
    }
    if (p->format && *p->format) {
        if (strcmp(p->format, "csv") == 0)
            q->csv = 1;
        else if (strcmp(p->format, "json") != 0)
            return usage__fail(err, errlen, param, "format", "must be json or csv");
    } else if (p->accept && strstr(p->accept, "text/csv")) {
        q->csv = 1;
    }
    return 0;
}
