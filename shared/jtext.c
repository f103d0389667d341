#include "shared/jtext.h"

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
