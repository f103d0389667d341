/* auth_conf — see auth_conf.h. */
#include "fcgi/auth/auth_conf.h"
#include "shared/jget.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define AUTH_CONF_DEFAULT_TIMEOUT_MS 5000
#define AUTH_CONF_DEFAULT_TTL        60

static const char *auth_conf__str(json_object *o, const char *field)
{
    const char *s = jget_str(o, field);
    return s && *s ? s : NULL;
}

/* A number field in seconds; `def` when absent or null. -1 when present but
 * not a non-negative number. */
static double auth_conf__secs(json_object *o, const char *field, double def)
{
    json_object *v;
    if (!json_object_object_get_ex(o, field, &v) || !v)
        return def;
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
        return -1;
    double d = json_object_get_double(v);
    return (isfinite(d) && d >= 0) ? d : -1;
}

int auth_conf_probe_api_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    int segs = 1;
    size_t seglen = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '/') {
            if (seglen == 0)
                return 0;
            segs++;
            seglen = 0;
        } else {
            seglen++;
        }
    }
    return segs == 3 && seglen > 0;
}

static int auth_conf__apiman(json_object *am, auth_conf_t *c, char *err, size_t errlen)
{
    int rc = -EINVAL;
    const char *mode = auth_conf__str(am, "mode");
    json_object *en;
    if (json_object_object_get_ex(am, "enabled", &en) && en &&
        json_object_is_type(en, json_type_boolean) && !json_object_get_boolean(en)) {
        rc = 0;   /* configured but switched off: no apiman provider */
        goto out;
    }
    c->plan = auth_conf__str(am, "plan");
    c->plan_header = auth_conf__str(am, "plan_header");
    c->client_header = auth_conf__str(am, "client_header");
    if (!mode) {
        snprintf(err, errlen, "apiman.mode: required (gateway_probe or trusted_header)");
        goto out;
    }
    if (strcmp(mode, "trusted_header") == 0) {
        c->header = auth_conf__str(am, "header");
        c->secret = auth_conf__str(am, "secret");
        if (!c->header) {
            snprintf(err, errlen, "apiman.header: required for trusted_header");
            goto out;
        }
        if (!c->secret) {
            snprintf(err, errlen, "apiman.secret: required for trusted_header");
            goto out;
        }
        c->apiman = AUTH_APIMAN_TRUSTED;
        rc = 0;
        goto out;
    }
    if (strcmp(mode, "gateway_probe") != 0) {
        snprintf(err, errlen, "apiman.mode: must be gateway_probe or trusted_header");
        goto out;
    }
    c->gateway_url = auth_conf__str(am, "gateway_url");
    c->probe_api = auth_conf__str(am, "probe_api");
    c->probe_path = auth_conf__str(am, "probe_path");
    c->api_key_header = auth_conf__str(am, "api_key_header");
    if (!c->probe_path)
        c->probe_path = "";
    if (!c->api_key_header)
        c->api_key_header = "X-API-Key";
    if (!c->gateway_url) {
        snprintf(err, errlen, "apiman.gateway_url: required for gateway_probe");
        goto out;
    }
    if (!auth_conf_probe_api_ok(c->probe_api)) {
        snprintf(err, errlen, "apiman.probe_api: required, as {org}/{api}/{version}");
        goto out;
    }
    double t = auth_conf__secs(am, "timeout", AUTH_CONF_DEFAULT_TIMEOUT_MS / 1000.0);
    double ttl = auth_conf__secs(am, "cache_ttl", AUTH_CONF_DEFAULT_TTL);
    if (t <= 0 || t > 600) {
        snprintf(err, errlen, "apiman.timeout: must be a number of seconds in (0, 600]");
        goto out;
    }
    if (ttl < 0 || ttl > 86400) {
        snprintf(err, errlen, "apiman.cache_ttl: must be a number of seconds in [0, 86400]");
        goto out;
    }
    c->timeout_ms = (long)(t * 1000.0);
    if (c->timeout_ms < 1)
        c->timeout_ms = 1;
    c->cache_ttl = (long)ttl;
    c->apiman = AUTH_APIMAN_PROBE;
    rc = 0;
out:
    return rc;
}

int auth_conf_from_settings(json_object *settings, auth_conf_t *conf, char *err, size_t errlen)
{
    int rc = 0;
    memset(conf, 0, sizeof(*conf));
    if (err && errlen)
        err[0] = '\0';
    if (!settings)
        goto out;
    json_object *keys, *am;
    if (json_object_object_get_ex(settings, "proxy_api_keys", &keys) &&
        json_object_is_type(keys, json_type_array)) {
        size_t n = json_object_array_length(keys), good = 0;
        for (size_t i = 0; i < n; i++) {
            json_object *k = json_object_array_get_idx(keys, i);
            if (json_object_is_type(k, json_type_string) && json_object_get_string_len(k) > 0)
                good++;
        }
        if (good > 0) {
            conf->keys = keys;
            conf->nkeys = good;
        }
    }
    if (json_object_object_get_ex(settings, "apiman", &am) && am &&
        json_object_is_type(am, json_type_object)) {
        auth_conf_t tmp = *conf;
        rc = auth_conf__apiman(am, &tmp, err, errlen);
        if (rc == 0)
            *conf = tmp;
    }
out:
    return rc;
}

int auth_conf_open(const auth_conf_t *conf)
{
    return conf->nkeys == 0 && conf->apiman == AUTH_APIMAN_NONE;
}

json_object *auth_conf_describe(const auth_conf_t *conf)
{
    json_object *arr = json_object_new_array();
    if (!arr)
        return NULL;
    if (conf->nkeys > 0) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "type", json_object_new_string("static"));
        json_object_object_add(p, "keys", json_object_new_int64((int64_t)conf->nkeys));
        json_object_array_add(arr, p);
    }
    if (conf->apiman == AUTH_APIMAN_PROBE) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "type", json_object_new_string("apiman"));
        json_object_object_add(p, "mode", json_object_new_string("gateway_probe"));
        json_object_object_add(p, "gateway_url", json_object_new_string(conf->gateway_url));
        json_object_object_add(p, "probe_api", json_object_new_string(conf->probe_api));
        json_object_object_add(p, "probe_path", json_object_new_string(conf->probe_path));
        json_object_object_add(p, "api_key_header",
                               json_object_new_string(conf->api_key_header));
        json_object_object_add(p, "timeout", json_object_new_double(conf->timeout_ms / 1000.0));
        json_object_object_add(p, "cache_ttl", json_object_new_int64(conf->cache_ttl));
        json_object_array_add(arr, p);
    } else if (conf->apiman == AUTH_APIMAN_TRUSTED) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "type", json_object_new_string("apiman"));
        json_object_object_add(p, "mode", json_object_new_string("trusted_header"));
        json_object_object_add(p, "header", json_object_new_string(conf->header));
        json_object_array_add(arr, p);
    }
    return arr;
}
