/* models — GET /v1/models and /v1/models/{id}: the assistants as OpenAI models. */
#include "fcgi/openai/openai.h"
#include "fcgi/openai/oai.h"

#include "fcgi/auth/principal.h"
#include "shared/keypol.h"

#include <string.h>

/* Written once by main before any thread starts, read-only afterwards: the
 * registry has no creation time, and a stable stamp per process is what
 * clients that sort or cache models need. */
static long long models__created;

/* The caller's policy (a managed key's or a plan's), NULL when none. */
static json_object *models__policy(const http_req_t *req)
{
    return req->info.auth ? ((const auth_principal_t *)req->info.auth)->policy : NULL;
}

void models_set_created(long long created)
{
    models__created = created;
}

int models_list(http_req_t *req, reg_t *reg)
{
    json_object *all = reg_all(reg, "assistants");
    json_object *o = json_object_new_object(), *data = json_object_new_array();
    int rc;

    if (!o || !data) {
        json_object_put(o);
        json_object_put(data);
        return http_send_error(req, 500, NULL, NULL, NULL, "out of memory");
    }
    if (all && json_object_is_type(all, json_type_object)) {
        json_object_object_foreach(all, name, a) {
            json_object *m;
            if (!keypol_assistant_ok(models__policy(req), name))
                continue;   /* outside the key's assistants: absent */
            m = oai_model(name, a, models__created);
            if (m)
                json_object_array_add(data, m);
        }
    }
    json_object_object_add(o, "object", json_object_new_string("list"));
    json_object_object_add(o, "data", data);
    rc = http_send_json(req, 200, o, NULL);
    json_object_put(o);
    return rc;
}

static int models__hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int models_get(http_req_t *req, reg_t *reg, const char *id, size_t len)
{
    char *name = arena_alloc(req->arena, len + 1);
    json_object *a, *m;
    size_t i, o = 0;
    int rc;

    if (!name)
        return http_send_error(req, 500, NULL, NULL, NULL, "out of memory");
    for (i = 0; i < len; i++) {
        int hi, lo;
        if (id[i] == '%' && i + 2 < len && (hi = models__hex((unsigned char)id[i + 1])) >= 0 &&
            (lo = models__hex((unsigned char)id[i + 2])) >= 0) {
            name[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            name[o++] = id[i];
        }
    }
    name[o] = '\0';
    a = strlen(name) == o ? reg_get(reg, "assistants", name) : NULL;
    if (a && !keypol_assistant_ok(models__policy(req), name))
        a = NULL;   /* hidden from this key: exactly as missing */
    if (!a)
        return http_send_error(req, 404, "invalid_request_error", "model_not_found", "model",
                               "The model '%s' does not exist: no assistant has that name. "
                               "GET /v1/models lists the assistants.", name);
    m = oai_model(name, a, models__created);
    if (!m)
        return http_send_error(req, 500, NULL, NULL, NULL, "out of memory");
    rc = http_send_json(req, 200, m, NULL);
    json_object_put(m);
    return rc;
}
