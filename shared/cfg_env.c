/* cfg_env — ${VAR} / ${VAR:-default} expansion for config scalars. No I/O
 * beyond getenv. */
#include "shared/cfg.h"
#include "shared/buf.h"
#include "shared/caps.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cfg__is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int cfg__is_name_char(char c)
{
    return cfg__is_name_start(c) || (c >= '0' && c <= '9');
}

int cfg_expand_env(const char *in, char **out, int *had_ref, char *err, size_t errlen)
{
    buf_t b;
    const char *p = in;
    int rc = 0, ref = 0;

    buf_init(&b, CAP_CFG_SCALAR);
    *out = NULL;
    while (*p) {
        const char *dollar = strchr(p, '$');
        if (!dollar) {
            rc = buf_puts(&b, p);
            break;
        }
        rc = buf_append(&b, p, (size_t)(dollar - p));
        if (rc < 0)
            goto out;
        if (dollar[1] == '$') {               /* "$$": a literal dollar */
            ref = 1;
            rc = buf_append(&b, "$", 1);
            p = dollar + 2;
        } else if (dollar[1] == '{') {
            const char *name = dollar + 2, *end = name, *close, *val;
            char var[256];
            size_t nlen;

            ref = 1;
            close = strchr(name, '}');
            if (!close) {
                snprintf(err, errlen, "unterminated '${' in \"%s\" (write $$ for a literal $)", in);
                rc = -EINVAL;
                goto out;
            }
            while (end < close && cfg__is_name_char(*end))
                end++;
            nlen = (size_t)(end - name);
            if (nlen == 0 || !cfg__is_name_start(*name) || nlen >= sizeof var ||
                (end != close && !(end[0] == ':' && end[1] == '-'))) {
                snprintf(err, errlen,
                         "bad reference '%.*s' (use ${NAME} or ${NAME:-default}; $$ for a literal $)",
                         (int)(close - dollar + 1), dollar);
                rc = -EINVAL;
                goto out;
            }
            memcpy(var, name, nlen);
            var[nlen] = '\0';
            val = getenv(var);
            if (end != close && (!val || !*val))   /* ${VAR:-def}: unset or empty */
                rc = buf_append(&b, end + 2, (size_t)(close - (end + 2)));
            else if (val)
                rc = buf_puts(&b, val);
            p = close + 1;
        } else {                              /* a lone '$' stays as it is */
            rc = buf_append(&b, "$", 1);
            p = dollar + 1;
        }
        if (rc < 0)
            goto out;
    }
    if (rc < 0)
        goto out;
    *out = buf_detach(&b);
    if (!*out)
        rc = -ENOMEM;
out:
    if (rc == -ENOSPC) {
        snprintf(err, errlen, "value too long after ${} expansion");
        rc = -EINVAL;
    } else if (rc == -ENOMEM) {
        snprintf(err, errlen, "out of memory expanding a value");
    }
    buf_free(&b);
    if (rc == 0 && had_ref)
        *had_ref = ref;
    return rc;
}

int cfg_has_ref(const char *s)
{
    while (*s) {
        if (s[0] == '$' && s[1] == '$')
            s += 2;
        else if (s[0] == '$' && s[1] == '{')
            return 1;
        else
            s++;
    }
    return 0;
}
