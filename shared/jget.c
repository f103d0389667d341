/* jget — typed getters for one member of a json-c object. */
#include "shared/jget.h"

#include <string.h>

json_object *jget(json_object *o, const char *key)
{
    json_object *v = NULL;

    if (!o || !key || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

json_object *jget_typed(json_object *o, const char *key, json_type type)
{
    json_object *v = jget(o, key);

    return v && json_object_is_type(v, type) ? v : NULL;
}

json_object *jget_obj(json_object *o, const char *key)
{
    return jget_typed(o, key, json_type_object);
}

json_object *jget_arr(json_object *o, const char *key)
{
    return jget_typed(o, key, json_type_array);
}

const char *jget_str(json_object *o, const char *key)
{
    json_object *v = jget_typed(o, key, json_type_string);

    return v ? json_object_get_string(v) : NULL;
}

const char *jget_strn(json_object *o, const char *key, size_t *len)
{
    json_object *v = jget_typed(o, key, json_type_string);
    int n = v ? json_object_get_string_len(v) : 0;

    if (len)
        *len = n > 0 ? (size_t)n : 0;
    return v ? json_object_get_string(v) : NULL;
}

const char *jget_cstr(json_object *o, const char *key)
{
    size_t n = 0;
    const char *s = jget_strn(o, key, &n);

    return s && memchr(s, '\0', n) == NULL ? s : NULL;
}

int64_t jget_int64(json_object *o, const char *key, int64_t def)
{
    json_object *v = jget_typed(o, key, json_type_int);

    return v ? json_object_get_int64(v) : def;
}

int jget_bool(json_object *o, const char *key, int def)
{
    json_object *v = jget_typed(o, key, json_type_boolean);

    return v ? (json_object_get_boolean(v) ? 1 : 0) : def;
}
