/* keypol — see keypol.h. */
#include "shared/keypol.h"

#include "shared/caps.h"
#include "shared/sha256.h"
#include "shared/toolsel.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define KEYPOL_MAX_NUM (1LL << 53)

/* n random bytes, all of them, or a negative errno. */
static int keypol__random(unsigned char *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)r;
    }
    return 0;
}

int keypol_secret(char out[KEYPOL_SECRET_LEN + 1])
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[33] = {0};   /* 32 random bytes + a zero pad for the last group */
    size_t o = sizeof(KEYPOL_SECRET_PREFIX) - 1;
    int rc = keypol__random(raw, 32);

    out[0] = '\0';
    if (rc < 0)
        return rc;
    memcpy(out, KEYPOL_SECRET_PREFIX, o);
    for (size_t i = 0; i < 33; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)(i + 1 < 33 ? raw[i + 1] : 0) << 8 |
                     (uint32_t)(i + 2 < 33 ? raw[i + 2] : 0);
        for (int k = 3; k >= 0 && o < KEYPOL_SECRET_LEN; k--)
            out[o++] = b64[(v >> (6 * k)) & 63];
    }
    out[KEYPOL_SECRET_LEN] = '\0';
    memset(raw, 0, sizeof(raw));
    return 0;
}

int keypol_new_id(char out[KEYPOL_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[8];
    int rc = keypol__random(raw, sizeof(raw));

    out[0] = '\0';
    if (rc < 0)
        return rc;
    memcpy(out, "key_", 4);
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[4 + 2 * i] = hex[raw[i] >> 4];
        out[5 + 2 * i] = hex[raw[i] & 15];
    }
    out[KEYPOL_ID_LEN] = '\0';
    return 0;
}

int keypol_id_valid(const char *s)
{
    if (!s || strncmp(s, "key_", 4) != 0 || strlen(s) != KEYPOL_ID_LEN)
        return 0;
    for (s += 4; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

int keypol_is_secret(const char *s, size_t len)
{
    size_t pl = sizeof(KEYPOL_SECRET_PREFIX) - 1;
    return s && len > pl && memcmp(s, KEYPOL_SECRET_PREFIX, pl) == 0;
}

void keypol_hash(const char *s, size_t len, char out[KEYPOL_HASH_LEN + 1])
{
    sha256_hex(s, len, out);
}

void keypol_display(const char *secret, char out[KEYPOL_DISPLAY_LEN + 1])
{
    size_t n = secret ? strnlen(secret, KEYPOL_DISPLAY_LEN) : 0;
    if (n)
        memcpy(out, secret, n);
    out[n] = '\0';
}

/* --- validation -------------------------------------------------------------- */

static int keypol__fail(char *err, size_t errlen, const char *field, const char *what)
{
    snprintf(err, errlen, "%s: %s", field, what);
    return -EINVAL;
}

/* A positive integer <= 2^53 (a JSON integer, or a double with no fraction). */
static int keypol__num(json_object *v, const char *field, char *err, size_t errlen)
{
    if (json_object_is_type(v, json_type_int)) {
        int64_t n = json_object_get_int64(v);
        if (n >= 1 && n <= KEYPOL_MAX_NUM)
            return 0;
    } else if (json_object_is_type(v, json_type_double)) {
        double d = json_object_get_double(v);
        if (d >= 1 && d <= (double)KEYPOL_MAX_NUM && d == (double)(int64_t)d)
            return 0;
    }
    return keypol__fail(err, errlen, field, "must be a positive whole number (at most 2^53)");
}

static int keypol__globs(json_object *v, const char *field, char *err, size_t errlen)
{
    char path[64];
    size_t n;

    if (!json_object_is_type(v, json_type_array))
        return keypol__fail(err, errlen, field, "must be a list of glob strings");
    n = json_object_array_length(v);
    for (size_t i = 0; i < n; i++) {
        json_object *g = json_object_array_get_idx(v, i);
        int len = json_object_is_type(g, json_type_string) ? json_object_get_string_len(g) : -1;
        snprintf(path, sizeof(path), "%s[%zu]", field, i);
        if (len < 1 || len > CAP_TOOL_GLOB ||
            strlen(json_object_get_string(g)) != (size_t)len)
        {
            snprintf(err, errlen, "%s: must be a glob string of 1 to %d bytes with no NUL",
                     path, CAP_TOOL_GLOB);
            return -EINVAL;
        }
    }
    return 0;
}

/* Each member of `o` is one of `fields`, and the check of its index passes. */
static int keypol__unknown(json_object *o, const char *where, const char *const *fields,
                           const char *list, char *err, size_t errlen)
{
    json_object_object_foreach(o, k, v) {
        int known = 0;
        (void)v;
        for (size_t i = 0; fields[i]; i++)
            known |= strcmp(k, fields[i]) == 0;
        if (!known) {
            char path[96];
            snprintf(path, sizeof(path), "%s%s%.48s", where, *where ? "." : "", k);
            snprintf(err, errlen, "%s: unknown field (known: %s)", path, list);
            return -EINVAL;
        }
    }
    return 0;
}

int keypol_check(json_object *policy, char *err, size_t errlen)
{
    static const char *const top[] = {"assistants", "tools", "rpm", "tpm", "max_concurrent",
                                      "budget", NULL};
    static const char *const tools[] = {"allow", "deny", NULL};
    static const char *const budget[] = {"tokens_per_day", "tokens_per_month", NULL};
    int rc;

    if (!json_object_is_type(policy, json_type_object))
        return keypol__fail(err, errlen, "policy", "must be a JSON object");
    if ((rc = keypol__unknown(policy, "", top,
                              "assistants, tools, rpm, tpm, max_concurrent, budget", err,
                              errlen)) < 0)
        return rc;
    json_object_object_foreach(policy, k, v) {
        if (strcmp(k, "assistants") == 0) {
            rc = keypol__globs(v, k, err, errlen);
        } else if (strcmp(k, "tools") == 0) {
            if (!json_object_is_type(v, json_type_object))
                return keypol__fail(err, errlen, k, "must be an object {allow: [...], deny: [...]}");
            if ((rc = keypol__unknown(v, "tools", tools, "allow, deny", err, errlen)) < 0)
                return rc;
            json_object_object_foreach(v, tk, tv) {
                char path[32];
                snprintf(path, sizeof(path), "tools.%s", tk);
                if ((rc = keypol__globs(tv, path, err, errlen)) < 0)
                    return rc;
            }
        } else if (strcmp(k, "budget") == 0) {
            if (!json_object_is_type(v, json_type_object))
                return keypol__fail(err, errlen, k,
                                    "must be an object {tokens_per_day, tokens_per_month}");
            if ((rc = keypol__unknown(v, "budget", budget, "tokens_per_day, tokens_per_month",
                                      err, errlen)) < 0)
                return rc;
            json_object_object_foreach(v, bk, bv) {
                char path[32];
                snprintf(path, sizeof(path), "budget.%s", bk);
                if ((rc = keypol__num(bv, path, err, errlen)) < 0)
                    return rc;
            }
        } else {
            rc = keypol__num(v, k, err, errlen);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* --- merge and visibility ---------------------------------------------------- */

/* Copies every member of `from` (an object, or nothing) into `to`, over what
 * is there; `budget` objects are merged one level down. */
static int keypol__over(json_object *to, json_object *from)
{
    if (!json_object_is_type(from, json_type_object))
        return 0;
    json_object_object_foreach(from, k, v) {
        json_object *copy = NULL, *have = NULL;
        if (strcmp(k, "budget") == 0 && json_object_is_type(v, json_type_object) &&
            json_object_object_get_ex(to, k, &have) &&
            json_object_is_type(have, json_type_object)) {
            json_object_object_foreach(v, bk, bv) {
                json_object *bc = NULL;
                if (json_object_deep_copy(bv, &bc, NULL) != 0 ||
                    json_object_object_add(have, bk, bc) != 0) {
                    json_object_put(bc);
                    return -ENOMEM;
                }
            }
            continue;
        }
        if (json_object_deep_copy(v, &copy, NULL) != 0 ||
            json_object_object_add(to, k, copy) != 0) {
            json_object_put(copy);
            return -ENOMEM;
        }
    }
    return 0;
}

int keypol_merge(json_object *plan, json_object *key, json_object **out)
{
    json_object *m = json_object_new_object();
    int rc = -ENOMEM;

    *out = NULL;
    if (!m)
        goto out;
    if ((rc = keypol__over(m, plan)) < 0 || (rc = keypol__over(m, key)) < 0)
        goto out;
    if (json_object_object_length(m) > 0) {
        *out = m;
        m = NULL;
    }
    rc = 0;
out:
    json_object_put(m);
    return rc;
}

int keypol_assistant_ok(json_object *policy, const char *name)
{
    json_object *globs = NULL;
    size_t n;

    if (!policy || !json_object_object_get_ex(policy, "assistants", &globs) || !globs)
        return 1;
    if (!name || !json_object_is_type(globs, json_type_array))
        return 0;
    n = json_object_array_length(globs);
    for (size_t i = 0; i < n; i++) {
        json_object *g = json_object_array_get_idx(globs, i);
        if (json_object_is_type(g, json_type_string) &&
            fnmatch(json_object_get_string(g), name, 0) == 0)
            return 1;
    }
    return 0;
}

int keypol_tool_ok(json_object *policy, const char *server, const char *tool)
{
    return !policy || tsel_why(policy, server, tool) == TSEL_OFFERED;
}

/* --- time -------------------------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's). */
static long long keypol__days(long long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

/* `n` digits at s as a number, or -1. */
static int keypol__digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int keypol__rfc3339(const char *s, long long *out)
{
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;
    const char *p;

    if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' &&
        s[10] != ' ') || s[13] != ':' || s[16] != ':')
        return -EINVAL;
    y = keypol__digits(s, 4);
    mo = keypol__digits(s + 5, 2);
    d = keypol__digits(s + 8, 2);
    h = keypol__digits(s + 11, 2);
    mi = keypol__digits(s + 14, 2);
    se = keypol__digits(s + 17, 2);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || (unsigned)d > mdays[mo - 1] || h < 0 ||
        h > 23 || mi < 0 || mi > 59 || se < 0 || se > 60)
        return -EINVAL;
    p = s + 19;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return -EINVAL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        oh = keypol__digits(p + 1, 2);
        om = oh >= 0 && p[3] == ':' ? keypol__digits(p + 4, 2) : -1;
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -EINVAL;
        p += 6;
    } else {
        return -EINVAL;
    }
    if (*p)
        return -EINVAL;
    *out = keypol__days(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se -
           sign * (oh * 3600 + om * 60);
    return 0;
}

int keypol_time(json_object *v, long long *out)
{
    *out = 0;
    if (!v)
        return 0;
    if (json_object_is_type(v, json_type_int)) {
        int64_t n = json_object_get_int64(v);
        if (n < 0 || n > KEYPOL_MAX_NUM)
            return -EINVAL;
        *out = n;
        return 0;
    }
    if (json_object_is_type(v, json_type_string))
        return keypol__rfc3339(json_object_get_string(v), out);
    return -EINVAL;
}
