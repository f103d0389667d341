#include "shared/url.h"

#include <string.h>

/* Length of a valid scheme before "://" at the start of s, or 0. */
static size_t url__scheme(const char *s)
{
    size_t i = 0;

    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    while (s[i] && strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-",
                          s[i]))
        i++;
    return strncmp(s + i, "://", 3) == 0 ? i : 0;
}

/* Appends s[0..n) to dst at *o, cutting at the cap (one byte kept for NUL). */
static void url__put(char *dst, size_t dcap, size_t *o, const char *s, size_t n)
{
    size_t room = dcap - 1 - *o;

    if (n > room)
        n = room;
    memcpy(dst + *o, s, n);
    *o += n;
}

const char *url_redact(const char *url, char *dst, size_t dcap)
{
    size_t o = 0, sl, auth, end, at;
    const char *p;

    if (!dst || dcap == 0)
        return dst;
    if (!url) {
        url__put(dst, dcap, &o, "?", 1);
        dst[o] = '\0';
        return dst;
    }
    sl = url__scheme(url);
    auth = sl ? sl + 3 : 0;
    /* the authority ends at the path, the query or the fragment */
    end = auth + strcspn(url + auth, "/?#");
    /* userinfo: up to the last '@' of the authority (a password may hold '@'
     * only percent-encoded, but be generous with what others send) */
    at = auth;
    for (p = url + auth; p < url + end; p++)
        if (*p == '@')
            at = (size_t)(p - url) + 1;
    url__put(dst, dcap, &o, url, auth);
    url__put(dst, dcap, &o, url + at, end - at);
    /* the path, without "?query" or "#fragment" */
    url__put(dst, dcap, &o, url + end, strcspn(url + end, "?#"));
    dst[o] = '\0';
    return dst;
}
