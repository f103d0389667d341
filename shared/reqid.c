/* reqid — request ids (reqid.h). */
#include "shared/reqid.h"
#include "shared/rid.h"

#include <string.h>

static int reqid__char_ok(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("._:@/+=-", c) != NULL;
}

int reqid_valid(const char *s)
{
    size_t i;

    if (!s || !*s)
        return 0;
    for (i = 0; s[i]; i++)
        if (i >= REQID_MAX || !reqid__char_ok((unsigned char)s[i]))
            return 0;
    return 1;
}

void reqid_new(char out[REQID_MAX + 1])
{
    memcpy(out, REQID_PREFIX, sizeof(REQID_PREFIX) - 1);
    rid_alnum(out + sizeof(REQID_PREFIX) - 1, REQID_RANDOM);
}

int reqid_take(const char *client, char out[REQID_MAX + 1])
{
    if (reqid_valid(client)) {
        memcpy(out, client, strlen(client) + 1);
        return 1;
    }
    reqid_new(out);
    return 0;
}
