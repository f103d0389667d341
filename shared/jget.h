/* jget — typed getters for one member of a json-c object.
 *
 * Every getter takes any json_object (NULL, a non-object, an object without
 * the key, a member of another type or JSON null all mean "absent") and never
 * copies: a returned object or string is borrowed from `o` and lives as long
 * as `o` holds it. Nothing here allocates or fails otherwise, so callers
 * chain them: jget_str(jget_obj(call, "function"), "name"). */
#ifndef AIPROXY_JGET_H
#define AIPROXY_JGET_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

/* o[key] of any type; NULL when absent, null, or `o` is not an object. */
json_object *jget(json_object *o, const char *key);

/* o[key] when it is of json type `type`, else NULL. */
json_object *jget_typed(json_object *o, const char *key, json_type type);

/* o[key] when it is an object, else NULL. */
json_object *jget_obj(json_object *o, const char *key);

/* o[key] when it is an array, else NULL. */
json_object *jget_arr(json_object *o, const char *key);

/* o[key] when it is a string, else NULL. As a C string the text ends at its
 * first NUL: use jget_strn where a "\u0000" inside must not cut it. */
const char *jget_str(json_object *o, const char *key);

/* As jget_str, and *len (when len is not NULL) gets the string's full length,
 * NULs included; *len is 0 when the result is NULL. */
const char *jget_strn(json_object *o, const char *key, size_t *len);

/* As jget_str, but NULL also when the string holds a NUL: for names and ids,
 * where a cut C string would silently mean another thing. */
const char *jget_cstr(json_object *o, const char *key);

/* o[key] when it is a JSON integer, else `def`. json-c clamps an integer
 * beyond int64 to INT64_MIN/INT64_MAX. Doubles and numeric strings are not
 * integers here. */
int64_t jget_int64(json_object *o, const char *key, int64_t def);

/* 1 or 0 when o[key] is a JSON boolean, else `def`. */
int jget_bool(json_object *o, const char *key, int def);

#endif
