#include "shared/jtext.h"
#include "shared/buf.h"
#include "shared/jtok.h"
#include "shared/utf8.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *jtext_take(json_object *o)
{
    char *s = NULL;

    if (o) {
        const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE);
        if (t)
            s = strdup(t);
        json_object_put(o);
    }
    return s;
}

json_object *jtext_new_echo(const char *text, size_t len)
{
    json_object *o = NULL;
    size_t n = 0;
    char *clean;

    if (!text || utf8_valid(text, len))
        return json_object_new_string_len(text ? text : "", text ? (int)len : 0);
    clean = utf8_clean_dup(text, len, &n);
    if (clean)
        o = json_object_new_string_len(clean, (int)n);
    free(clean);
    return o;
}

/* What a scan of the text found (see jtext__scan). */
typedef struct jtext_scan {
    size_t nbig;      /* integer literals that do not fit 64 bits */
    size_t zeros;     /* longest all-zero fraction after a big integer part */
    size_t bad;       /* byte offset of a refused literal */
    const char *why;  /* why it was refused, NULL when nothing was */
} jtext_scan_t;

/* 1 when the integer literal s[0..n) (an optional '-' and digits, JSON form)
 * is outside int64 (negative) or uint64 (positive): json-c would clamp it. */
static int jtext__big(const char *s, size_t n)
{
    static const char umax[] = "18446744073709551615", nmin[] = "9223372036854775808";
    const char *lim = umax;

    if (*s == '-') {
        s++;
        n--;
        lim = nmin;
    }
    if (n != strlen(lim))
        return n > strlen(lim);
    return memcmp(s, lim, n) > 0;
}

/* Length of the JSON number at s[0..n) (RFC 8259 grammar), 0 if there is none.
 * *is_int: no fraction and no exponent; *fzeros: the fraction's length when it
 * is all zeros and there is no exponent, else 0. */
static size_t jtext__number(const char *s, size_t n, int *is_int, size_t *fzeros)
{
    size_t i = 0, f;

    *is_int = 1;
    *fzeros = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n || s[i] < '0' || s[i] > '9')
        return 0;
    if (s[i] == '0')
        i++;
    else
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    if (i < n && s[i] == '.') {
        f = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f)
            return 0;
        *is_int = 0;
        *fzeros = i - f;   /* the text is not terminated: no strspn */
        for (size_t z = f; z < i; z++)
            if (s[z] != '0')
                *fzeros = 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        f = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f)
            return 0;
        *is_int = 0;
        *fzeros = 0;
    }
    return i;
}

/* Walks the text as JSON tokens, outside strings only, and checks what json-c
 * would read differently from RFC 8259: numbers it takes that JSON does not
 * ("1.", "01E": json-c reads 1) and words other than true, false, null
 * (NaN, Infinity). With `rw`, copies the text there with ".0…0" (k zeros)
 * after each integer literal past 64 bits, so json-c keeps it as a double with
 * its text (jtext__unmark takes the suffix off again). 0, or -ENOSPC/-ENOMEM
 * from `rw`; a refusal is st->why. */
static int jtext__scan(const char *t, size_t n, buf_t *rw, size_t k, jtext_scan_t *st)
{
    size_t i = 0, from = 0;
    int rc = 0;

    while (i < n && !st->why) {
        char c = t[i];
        if (c == '"') {
            for (i++; i < n && t[i] != '"'; i++)
                if (t[i] == '\\')
                    i++;
            i++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            int is_int;
            size_t fz, len = jtext__number(t + i, n - i, &is_int, &fz);
            size_t end = i + len;
            if (!len || (end < n && strchr("0123456789+-.eE", t[end]))) {
                st->why = "not a JSON number";
                st->bad = i;
                break;
            }
            if (is_int && jtext__big(t + i, len)) {
                st->nbig++;
                if (rw) {
                    if ((rc = buf_append(rw, t + from, end - from)) < 0 ||
                        (rc = buf_append(rw, ".", 1)) < 0)
                        goto out;
                    for (size_t z = 0; z < k; z++)
                        if ((rc = buf_append(rw, "0", 1)) < 0)
                            goto out;
                    from = end;
                }
            } else if (fz > st->zeros && jtext__big(t + i, len - fz - 1)) {
                st->zeros = fz;   /* "<big>.000": what a mark would look like */
            }
            i = end;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            size_t w = i;
            while (w < n && ((t[w] >= 'a' && t[w] <= 'z') || (t[w] >= 'A' && t[w] <= 'Z')))
                w++;
            if (!((w - i == 4 && (!memcmp(t + i, "true", 4) || !memcmp(t + i, "null", 4))) ||
                  (w - i == 5 && !memcmp(t + i, "false", 5)))) {
                st->why = "unexpected word (JSON has only true, false and null)";
                st->bad = i;
                break;
            }
            i = w;
        } else {
            i++;
        }
    }
    if (rw && from < n)
        rc = buf_append(rw, t + from, n - from);
out:
    return rc;
}

/* Takes the ".0…0" (exactly k zeros) that jtext__scan added off every double's
 * text under `o`: the number prints as the client wrote it. Only a marked
 * literal has a big integer part and exactly k zeros, since k is longer than
 * any such fraction in the text. The text is the double's userdata (json_object_new_double_s), a
 * malloc'd string: cutting it in place keeps the free right. */
static void jtext__unmark(json_object *o, size_t k)
{
    if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, key, v) {
            (void)key;
            jtext__unmark(v, k);
        }
    } else if (json_object_is_type(o, json_type_array)) {
        size_t n = json_object_array_length(o);
        for (size_t i = 0; i < n; i++)
            jtext__unmark(json_object_array_get_idx(o, i), k);
    } else if (json_object_is_type(o, json_type_double)) {
        char *s = json_object_get_userdata(o), *dot;
        if (s && (dot = strchr(s, '.')) && strspn(dot + 1, "0") == k && dot[k + 1] == '\0' &&
            jtext__big(s, (size_t)(dot - s)))
            *dot = '\0';
    }
}

/* The parse behind jtext_parse and jtext_parse_strict; `what` starts each
 * refusal ("the request body"). */
static int jtext__parse(const char *text, size_t len, int max_depth, json_object **out,
                        char *err, size_t errlen, const char *what)
{
    json_tokener *tok = NULL;
    json_object *v = NULL;
    enum json_tokener_error jerr;
    jtext_scan_t st = { 0 };
    buf_t rw;
    int rc = -EINVAL, ended = 0;
    size_t off, k = 0;

    /* the marks grow the text; a body of big integers and a long "<big>.000…"
     * could multiply it, so the copy may at most double it */
    buf_init(&rw, len * 2 + 4096);
    *out = NULL;
    if (len > (size_t)0x7fffffff) {
        snprintf(err, errlen, "%s is too large", what);
        goto out;
    }
    jtext__scan(text, len, NULL, 0, &st);
    if (st.nbig && !st.why) {
        /* integers past 64 bits: json-c would clamp them (1e23 written out
         * in digits reached an MCP server as 18446744073709551615) */
        k = st.zeros + 1;
        st.nbig = 0;
        if ((rc = jtext__scan(text, len, &rw, k, &st)) < 0) {
            snprintf(err, errlen, rc == -ENOSPC ? "%s has too many integers past 64 bits"
                                                : "out of memory reading %s", what);
            rc = rc == -ENOSPC ? -EINVAL : rc;
            goto out;
        }
        rc = -EINVAL;
        text = buf_str(&rw);
        len = rw.len;
    }
    tok = jtok_get(max_depth, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
    if (!tok) {
        snprintf(err, errlen, "out of memory reading %s", what);
        rc = -ENOMEM;
        goto out;
    }
    v = json_tokener_parse_ex(tok, text, (int)len);
    jerr = json_tokener_get_error(tok);
    if (!v && jerr == json_tokener_continue) {
        /* a number at the very end may go on: a NUL tells json-c it does not */
        v = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        ended = 1;
    }
    if (!v || jerr != json_tokener_success) {
        snprintf(err, errlen, "%s is not valid JSON: %s", what,
                 jerr == json_tokener_continue || ended ? "unexpected end of input"
                                               : json_tokener_error_desc(jerr));
        goto out;
    }
    for (off = ended ? len : json_tokener_get_parse_end(tok); off < len; off++) {
        if (text[off] != ' ' && text[off] != '\t' && text[off] != '\r' && text[off] != '\n') {
            snprintf(err, errlen, "%s is not valid JSON: "
                     "unexpected data after the value at byte %zu", what, off);
            goto out;
        }
    }
    /* json-c's own refusals first (they say more), then what only JSON refuses */
    if (st.why) {
        snprintf(err, errlen, "%s is not valid JSON: %s at byte %zu", what, st.why, st.bad);
        goto out;
    }
    if (k)
        jtext__unmark(v, k);
    *out = v;
    v = NULL;
    rc = 0;
out:
    json_object_put(v);
    jtok_put(tok, len);
    buf_free(&rw);
    return rc;
}

int jtext_parse(const char *text, size_t len, int max_depth, json_object **out, char *err,
                size_t errlen)
{
    return jtext__parse(text, len, max_depth, out, err, errlen, "the text");
}

json_object *jtext_parse_peer(const char *text, size_t len)
{
    json_tokener *tok;
    json_object *o = NULL;
    char err[160];

    if (jtext_parse(text, len, JSON_TOKENER_DEFAULT_DEPTH, &o, err, sizeof err) != -EINVAL)
        return o;
    if (len > (size_t)0x7fffffff || !(tok = json_tokener_new()))
        return NULL;
    o = json_tokener_parse_ex(tok, text, (int)len);
    if (o && json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

int jtext_parse_strict(const char *text, size_t len, int max_depth, json_object **out, char *err,
                       size_t errlen)
{
    return jtext__parse(text, len, max_depth, out, err, errlen, "the request body");
}
