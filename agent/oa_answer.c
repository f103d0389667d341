/* oa_answer — see oa_answer.h. A strict JSON reader over the answer's
 * bytes: every value is checked (RFC 8259 grammar) whether it is kept or
 * skipped, so a malformed answer never passes here; it goes to json-c. */
#include "agent/oa_answer.h"

#include <string.h>

/* Nesting a skipped value may have here; json-c's default is 32 levels, and
 * anything near it goes to json-c, which refuses it the same way. */
#define OAA_DEPTH 24
/* Digits of an integer read as a count: 18 always fit 63 bits. */
#define OAA_DIGITS 18

typedef struct oaa {
    const char *p, *end;
} oaa_t;

/* A string's bytes between its quotes: `esc` when it holds a simple escape
 * (\" \\ \/ \b \f \n \r \t), which oaa__unescape decodes. */
typedef struct oaa_str {
    const char *s;
    size_t n;
    int esc;
} oaa_str_t;

/* What the common shape yields; turn is filled from it only at the end. */
typedef struct oaa_out {
    oaa_str_t content, finish;
    int has_content, has_finish, has_usage;
    long long pt, ct;
} oaa_out_t;

static void oaa__ws(oaa_t *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
        r->p++;
}

/* Takes `c` after optional white space. 0 or -1. */
static int oaa__take(oaa_t *r, char c)
{
    oaa__ws(r);
    if (r->p >= r->end || *r->p != c)
        return -1;
    r->p++;
    return 0;
}

static int oaa__peek(oaa_t *r)
{
    oaa__ws(r);
    return r->p < r->end ? (unsigned char)*r->p : -1;
}

/* A string; a \u escape or a raw control byte is for json-c. 0 or -1. */
static int oaa__str(oaa_t *r, oaa_str_t *out)
{
    if (oaa__take(r, '"') != 0)
        return -1;
    out->s = r->p;
    out->esc = 0;
    while (r->p < r->end) {
        unsigned char c = (unsigned char)*r->p;
        if (c == '"') {
            out->n = (size_t)(r->p - out->s);
            r->p++;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (r->p + 1 >= r->end || !strchr("\"\\/bfnrt", r->p[1]) || !r->p[1])
                return -1;
            out->esc = 1;
            r->p++;
        }
        r->p++;
    }
    return -1;
}

/* A number by JSON's grammar; *val set for an integer of at most
 * OAA_DIGITS digits, else *is_int 0. 0 or -1. */
static int oaa__num(oaa_t *r, long long *val, int *is_int)
{
    const char *p = r->p, *d;
    long long v = 0;
    int neg = 0;

    *is_int = 1;
    if (p < r->end && *p == '-') {
        neg = 1;
        p++;
    }
    d = p;
    if (p >= r->end || *p < '0' || *p > '9')
        return -1;
    if (*p == '0')
        p++;
    else
        for (; p < r->end && *p >= '0' && *p <= '9'; p++)
            if (p - d < OAA_DIGITS)
                v = v * 10 + (*p - '0');
    if (p - d > OAA_DIGITS)
        *is_int = 0;
    if (p < r->end && *p == '.') {
        *is_int = 0;
        if (++p >= r->end || *p < '0' || *p > '9')
            return -1;
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        *is_int = 0;
        p++;
        if (p < r->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= r->end || *p < '0' || *p > '9')
            return -1;
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    *val = neg ? -v : v;
    r->p = p;
    return 0;
}

static int oaa__lit(oaa_t *r, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(r->end - r->p) < n || memcmp(r->p, lit, n) != 0)
        return -1;
    r->p += n;
    return 0;
}

/* Calls `member` for each member of the object at r (its key's bytes).
 * A key with an escape is for json-c ("cho\u0069ces" is "choices"). */
typedef int (*oaa_member_fn)(oaa_t *r, const oaa_str_t *key, void *ud, int depth);

static int oaa__object(oaa_t *r, oaa_member_fn member, void *ud, int depth)
{
    oaa_str_t key;

    if (depth > OAA_DEPTH || oaa__take(r, '{') != 0)
        return -1;
    if (oaa__peek(r) == '}') {
        r->p++;
        return 0;
    }
    for (;;) {
        if (oaa__str(r, &key) != 0 || key.esc || oaa__take(r, ':') != 0 ||
            member(r, &key, ud, depth + 1) != 0)
            return -1;
        if (oaa__peek(r) == ',') {
            r->p++;
            continue;
        }
        return oaa__take(r, '}');
    }
}

static int oaa__skip(oaa_t *r, int depth);

static int oaa__skip_member(oaa_t *r, const oaa_str_t *key, void *ud, int depth)
{
    (void)key;
    (void)ud;
    return oaa__skip(r, depth);
}

/* The elements after an array's first (or all of them: first = 1). */
static int oaa__elements(oaa_t *r, int depth, int first)
{
    if (first && oaa__peek(r) == ']') {
        r->p++;
        return 0;
    }
    for (;;) {
        if (!first) {
            if (oaa__peek(r) == ']') {
                r->p++;
                return 0;
            }
            if (oaa__take(r, ',') != 0)
                return -1;
        }
        first = 0;
        if (oaa__skip(r, depth) != 0)
            return -1;
    }
}

/* Any value, checked and passed over. */
static int oaa__skip(oaa_t *r, int depth)
{
    oaa_str_t s;
    long long v;
    int is_int;

    if (depth > OAA_DEPTH)
        return -1;
    switch (oaa__peek(r)) {
    case '"':
        return oaa__str(r, &s);
    case '{':
        return oaa__object(r, oaa__skip_member, NULL, depth);
    case '[':
        r->p++;
        return oaa__elements(r, depth + 1, 1);
    case 't':
        return oaa__lit(r, "true");
    case 'f':
        return oaa__lit(r, "false");
    case 'n':
        return oaa__lit(r, "null");
    default:
        return oaa__num(r, &v, &is_int);
    }
}

static int oaa__is(const oaa_str_t *k, const char *lit)
{
    size_t n = strlen(lit);

    return k->n == n && memcmp(k->s, lit, n) == 0;
}

/* A member of choices[0].message: content (a string or null); tool_calls
 * (any value) is for json-c. */
static int oaa__message(oaa_t *r, const oaa_str_t *key, void *ud, int depth)
{
    oaa_out_t *o = ud;

    if (oaa__is(key, "tool_calls"))
        return -1;
    if (!oaa__is(key, "content"))
        return oaa__skip(r, depth);
    if (o->has_content)
        return -1;   /* a duplicate: json-c keeps the last */
    o->has_content = 1;
    if (oaa__peek(r) == 'n')
        return oaa__lit(r, "null");
    return oaa__str(r, &o->content);
}

/* A member of choices[0]: message (an object), finish_reason (a string or
 * null). */
static int oaa__choice(oaa_t *r, const oaa_str_t *key, void *ud, int depth)
{
    oaa_out_t *o = ud;

    if (oaa__is(key, "message")) {
        if (o->content.s || o->has_content || oaa__peek(r) != '{')
            return -1;
        o->content.s = "";   /* the message was seen */
        return oaa__object(r, oaa__message, o, depth);
    }
    if (!oaa__is(key, "finish_reason"))
        return oaa__skip(r, depth);
    if (o->has_finish)
        return -1;
    o->has_finish = 1;
    if (oaa__peek(r) == 'n') {
        o->has_finish = 2;   /* null: none */
        return oaa__lit(r, "null");
    }
    return oaa__str(r, &o->finish);
}

/* A member of usage: the two counts, integers. */
static int oaa__usage(oaa_t *r, const oaa_str_t *key, void *ud, int depth)
{
    oaa_out_t *o = ud;
    long long *v = oaa__is(key, "prompt_tokens")       ? &o->pt
                   : oaa__is(key, "completion_tokens") ? &o->ct
                                                       : NULL;
    int is_int;

    if (!v)
        return oaa__skip(r, depth);
    if (*v != -1)
        return -1;
    oaa__ws(r);
    return oaa__num(r, v, &is_int) == 0 && is_int && *v >= 0 ? 0 : -1;
}

/* A member of the answer: choices (its first element read, the rest
 * skipped), usage (an object or null). */
static int oaa__top(oaa_t *r, const oaa_str_t *key, void *ud, int depth)
{
    oaa_out_t *o = ud;

    if (oaa__is(key, "choices")) {
        if (o->content.s || oaa__take(r, '[') != 0 || oaa__peek(r) != '{' ||
            oaa__object(r, oaa__choice, o, depth + 1) != 0 || !o->content.s)
            return -1;
        return oaa__elements(r, depth + 1, 0);
    }
    if (!oaa__is(key, "usage"))
        return oaa__skip(r, depth);
    if (o->has_usage)
        return -1;
    o->has_usage = 1;
    if (oaa__peek(r) == 'n') {
        o->has_usage = 2;   /* null: none */
        return oaa__lit(r, "null");
    }
    if (oaa__peek(r) != '{' || oaa__object(r, oaa__usage, o, depth) != 0)
        return -1;
    if (o->pt == -1)
        o->pt = 0;
    if (o->ct == -1)
        o->ct = 0;
    return 0;
}

static char oaa__decode(char e)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";

    return to[strchr(from, e) - from];
}

/* s[0..n) with its simple escapes decoded, appended to b. */
static int oaa__unescape(buf_t *b, const char *s, size_t n)
{
    size_t i = 0, run = 0;
    int rc = 0;

    while (rc == 0 && i < n) {
        if (s[i] != '\\') {
            i++;
            run++;
            continue;
        }
        if (run)
            rc = buf_append(b, s + i - run, run);
        if (rc == 0) {
            char c = oaa__decode(s[i + 1]);
            rc = buf_append(b, &c, 1);
        }
        i += 2;
        run = 0;
    }
    if (rc == 0 && run)
        rc = buf_append(b, s + n - run, run);
    return rc;
}

/* The string decoded into out[cap], cut to cap - 1 bytes as snprintf cuts. */
static void oaa__copy(const oaa_str_t *s, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < s->n && o + 1 < cap; i++) {
        if (s->s[i] == '\\')
            out[o++] = oaa__decode(s->s[++i]);
        else
            out[o++] = s->s[i];
    }
    out[o] = '\0';
}

int oa_answer_read(const char *body, size_t len, be_turn_t *turn)
{
    oaa_t r = { body, body + len };
    oaa_out_t o;
    size_t had = turn->content.len;
    int rc;

    memset(&o, 0, sizeof(o));
    o.pt = o.ct = -1;
    if (!body || oaa__object(&r, oaa__top, &o, 1) != 0 || !o.content.s)
        return 1;
    oaa__ws(&r);
    if (r.p != r.end)
        return 1;   /* what follows the answer: json-c's call */
    if (o.has_content && o.content.n) {
        rc = o.content.esc ? oaa__unescape(&turn->content, o.content.s, o.content.n)
                           : buf_append(&turn->content, o.content.s, o.content.n);
        if (rc != 0) {
            /* a cap or no memory: json-c's parse says which, from scratch */
            turn->content.len = had;
            if (turn->content.data)
                turn->content.data[had] = '\0';
            return 1;
        }
    }
    if (o.has_finish == 1)
        oaa__copy(&o.finish, turn->finish_reason, sizeof(turn->finish_reason));
    if (o.has_usage == 1) {
        turn->prompt_tokens = (long)o.pt;
        turn->completion_tokens = (long)o.ct;
        turn->has_usage = 1;
    }
    return 0;
}
