/* admin — the /admin API (docs/admin.md): read and edit the registry in
 * Redis. Validation is cfg's (the same checks config.yaml gets); writes are
 * reg's (atomic, versioned, announced on <prefix>reg:changed, so every
 * responder and broker of the fleet sees them). Pure parts: admin_route.c
 * (paths), admin_doc.c (redaction, references, bodies). */
#include "fcgi/admin/admin.h"
#include "shared/caps.h"

#include "agent/mcpc.h"
#include "fcgi/admin/admin_doc.h"
#include "fcgi/admin/admin_keys.h"
#include "fcgi/admin/admin_route.h"
#include "fcgi/admin/admin_tools.h"
#include "fcgi/auth/auth.h"
#include "fcgi/auth/auth_cred.h"
#include "fcgi/usage/usage.h"
#include "shared/cfg.h"
#include "shared/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A write races other writers through reg's version check; a few retries
 * against a refreshed snapshot settle any realistic contention. */
#define ADMIN_WRITE_TRIES 5
#define ADMIN_TOOLS_TIMEOUT_MS 30000

int admin_send_owned(http_req_t *req, int status, json_object *obj)
{
    int rc;
    if (!obj)
        return http_send_error(req, 500, "api_error", NULL, NULL, "out of memory");
    rc = http_send_json(req, status, obj, NULL);
    json_object_put(obj);
    return rc;
}

int admin_send_list(http_req_t *req, json_object *data)
{
    json_object *out = data ? json_object_new_object() : NULL;

    if (!out) {
        json_object_put(data);
        return admin_send_owned(req, 200, NULL);
    }
    json_object_object_add(out, "object", json_object_new_string("list"));
    json_object_object_add(out, "data", data);
    return admin_send_owned(req, 200, out);
}

int admin_store_down(http_req_t *req, const char *what, redisContext *c, const redisReply *rep)
{
    log_warn("admin: %s: %s", what, rep && rep->type == REDIS_REPLY_ERROR ? rep->str
                                    : c && c->errstr[0] ? c->errstr : "no Redis connection");
    return http_send_error(req, 503, "api_error", "registry_unavailable", NULL,
                           "The key store (Redis) did not answer; try again.");
}

/* 0 when the request may use the admin API; otherwise answers (*sent_rc is
 * the send's result) and returns -EACCES. */
static int admin__gate(http_req_t *req, int *sent_rc)
{
    const char *key = getenv("ADMIN_API_KEY");
    if (!key || !*key) {
        *sent_rc = http_send_error(req, 403, "permission_error", "admin_disabled", NULL,
                                   "The admin API is disabled: set ADMIN_API_KEY in the "
                                   "responders' environment to enable it.");
        return -EACCES;
    }
    auth_cred_t tok = auth_cred_bearer(http_header(req, "Authorization"));
    if (tok.p && auth_cred_equal(tok.p, tok.len, key, strlen(key)))
        return 0;
    json_object *e = json_object_new_object(), *o = json_object_new_object();
    if (!e || !o) {
        json_object_put(e);
        json_object_put(o);
        *sent_rc = http_send_error(req, 500, "api_error", NULL, NULL, "out of memory");
        return -EACCES;
    }
    json_object_object_add(e, "message",
                           json_object_new_string(http_err_msg(req, tok.p ? "Invalid admin API key."
                                                        : "Missing admin API key: send "
                                                          "'Authorization: Bearer <ADMIN_API_KEY>'.")));
    json_object_object_add(e, "type", json_object_new_string("authentication_error"));
    json_object_object_add(e, "param", NULL);
    json_object_object_add(e, "code", json_object_new_string("invalid_api_key"));
    json_object_object_add(o, "error", e);
    *sent_rc = http_send_json(req, 401, o, "WWW-Authenticate: Bearer\r\n");
    json_object_put(o);
    return -EACCES;
}

static int admin__config(http_req_t *req, svc_t *svc)
{
    int rc;
    json_object *doc = reg_doc(svc->reg), *red = NULL;
    const char *format = http_query_param(req, "format");
    char *yaml = NULL;
    int want_yaml = format && strcmp(format, "yaml") == 0;
    if (!doc) {
        rc = http_send_error(req, 503, "api_error", "registry_unavailable", NULL,
                             "The registry is not loaded (Redis: %s).", reg_errstr(svc->reg));
        goto out;
    }
    if (!want_yaml && format && *format && strcmp(format, "json") != 0) {
        rc = http_send_error(req, 400, "invalid_request_error", "invalid_value", "format",
                             "format: must be json or yaml");
        goto out;
    }
    red = admin_doc_redact(doc, want_yaml ? ADMIN_REDACT_YAML : ADMIN_REDACT_JSON);
    if (!red) {
        rc = http_send_error(req, 500, "api_error", NULL, NULL, "out of memory");
        goto out;
    }
    if (want_yaml) {
        yaml = cfg_dump_yaml(red);
        rc = yaml ? http_send(req, 200, "application/yaml; charset=utf-8", NULL, yaml,
                              strlen(yaml))
                  : http_send_error(req, 500, "api_error", NULL, NULL,
                                    "could not write the registry as YAML (out of memory)");
        goto out;
    }
    json_object_object_add(red, "version", json_object_new_int64(reg_version(svc->reg)));
    json_object_object_add(red, "auth", auth_describe(svc->reg));
    rc = http_send_json(req, 200, red, NULL);
out:
    free(yaml);
    json_object_put(red);
    return rc;
}

static int admin__list(http_req_t *req, svc_t *svc, const admin_route_t *r)
{
    json_object *all = reg_all(svc->reg, r->kind);
    json_object *out = json_object_new_object();
    if (out && all) {
        json_object_object_foreach(all, k, v)
            json_object_object_add(out, k, admin_doc_redact_one(r->kind, v, ADMIN_REDACT_JSON));
    }
    return admin_send_owned(req, 200, out);
}

static int admin__not_found(http_req_t *req, const admin_route_t *r)
{
    return http_send_error(req, 404, "invalid_request_error", "not_found", "name",
                           "No %s named '%s' (GET /admin/%s lists them).", r->kind, r->name,
                           strcmp(r->kind, "mcp_servers") == 0 ? "mcp" : r->kind);
}

static int admin__get(http_req_t *req, svc_t *svc, const admin_route_t *r)
{
    json_object *obj = reg_get(svc->reg, r->kind, r->name);
    return obj ? admin_send_owned(req, 200, admin_doc_redact_one(r->kind, obj, ADMIN_REDACT_JSON))
               : admin__not_found(req, r);
}

/* Validates obj (in place) against the current snapshot, as a config file is
 * validated, plus what only the admin API is held to: an MCP server's command
 * must be on the operator's allow-list. 0, or -EINVAL with err "field: problem". */
static int admin__validate(http_req_t *req, svc_t *svc, const char *kind, const char *name, json_object *obj,
                           char *err, size_t errlen)
{
    if (strcmp(kind, "assistants") == 0)
        return cfg_check_assistant(name, obj, reg_doc(svc->reg), err, errlen);
    if (strcmp(kind, "backends") == 0)
        return cfg_check_backend(name, obj, err, errlen);
    int rc = cfg_check_mcp_server(name, obj, err, errlen);
    json_object *cmd = NULL;
    if (rc == 0 && json_object_object_get_ex(obj, "command", &cmd) &&
        json_object_is_type(cmd, json_type_string) && json_object_get_string_len(cmd) > 0 &&
        !admin_doc_command_allowed(getenv(ADMIN_MCP_COMMANDS_ENV),
                                   json_object_get_string(cmd))) {
        /* The broker runs what this names: without the operator's say-so the
         * admin key would be a shell on every broker host (docs/security.md). */
        snprintf(err, errlen, "command: '%s' is not one the admin API may run: the operator "
                 "lists allowed commands in %s on the responders (globs, ':'-separated; "
                 "config-file servers are not restricted)", json_object_get_string(cmd),
                 ADMIN_MCP_COMMANDS_ENV);
        rc = -EINVAL;
    }
    return rc;
}

/* The tool cap of an assistant about to be written (validated `obj`): its
 * MCP servers' catalogs are learned from Redis or by asking the broker to
 * start them, ADMIN_TOOLS_BUDGET_MS in all. Past the cap: answers 422 (*sent
 * is the send's result) and returns -E2BIG. A catalog that cannot be learned
 * does not refuse the write (the server may come up later): it is logged,
 * and the count is checked when a request is built. */
static int admin__tool_cap(http_req_t *req, svc_t *svc, const char *name, json_object *obj,
                           int *sent)
{
    char msg[AIP_ERR_MSG_MAX];
    int rc;

    if (!svc->mcpc)
        return 0;
    rc = admin_tools_check(svc->mcpc, reg_all(svc->reg, "mcp_servers"), name, obj, 1,
                           ADMIN_TOOLS_BUDGET_MS, msg, sizeof(msg));
    if (rc == -E2BIG) {
        *sent = http_send_error(req, 422, "invalid_request_error", "too_many_tools", "tools",
                                "%s", msg);
        return rc;
    }
    if (rc < 0)
        log_warn("admin: %s; writing it anyway", msg);
    return 0;
}

static int admin__assistant_tools(http_req_t *req, svc_t *svc, const admin_route_t *r)
{
    json_object *a = reg_get(svc->reg, "assistants", r->name);

    if (!a)
        return admin__not_found(req, r);
    if (!svc->mcpc)
        return http_send_error(req, 500, "api_error", NULL, NULL, "out of memory");
    return admin_send_owned(req, 200,
                             admin_tools_list(svc->mcpc, reg_all(svc->reg, "mcp_servers"),
                                              r->name, a, ADMIN_TOOLS_BUDGET_MS));
}

static int admin__put(http_req_t *req, svc_t *svc, const admin_route_t *r)
{
    int rc;
    char err[512], param[128];
    const char *bparam = NULL;
    json_object *obj = NULL;
    int existed = 0, wrc = -EAGAIN;

    int brc = admin_doc_body(r->kind, r->name, req->body, req->body_len, &obj, err, sizeof(err),
                             &bparam);
    if (brc != 0) {
        rc = http_send_error(req, brc == -EINVAL ? 422 : 400, "invalid_request_error",
                             brc == -EINVAL ? "invalid_value" : "invalid_json", bparam, "%s", err);
        goto out;
    }
    for (int i = 0; i < ADMIN_WRITE_TRIES && wrc == -EAGAIN; i++) {
        /* each try validates a fresh copy against the snapshot it writes over */
        json_object *tryobj = NULL;
        if (i > 0 && reg_refresh(svc->reg) != 0)
            break;
        if (json_object_deep_copy(obj, &tryobj, NULL) != 0) {
            wrc = -ENOMEM;
            break;
        }
        admin_doc_keep_secrets(r->kind, tryobj, reg_get(svc->reg, r->kind, r->name));
        if (admin__validate(req, svc, r->kind, r->name, tryobj, err, sizeof(err)) != 0) {
            admin_doc_err_param(err, param, sizeof(param));
            rc = http_send_error(req, 422, "invalid_request_error", "invalid_value",
                                 param[0] ? param : NULL, "%s", err);
            json_object_put(tryobj);
            goto out;
        }
        if (i == 0 && strcmp(r->kind, "assistants") == 0 &&
            admin__tool_cap(req, svc, r->name, tryobj, &rc) != 0) {
            json_object_put(tryobj);
            goto out;
        }
        existed = reg_get(svc->reg, r->kind, r->name) != NULL;
        wrc = reg_put(svc->reg, r->kind, r->name, tryobj, reg_version(svc->reg));
        json_object_put(tryobj);
    }
    if (wrc == -EAGAIN) {
        rc = http_send_error(req, 409, "invalid_request_error", "conflict", NULL,
                             "The registry kept changing during the write; try again.");
        goto out;
    }
    if (wrc != 0) {
        rc = http_send_error(req, 503, "api_error", "registry_unavailable", NULL,
                             "Could not write %s '%s' to Redis: %s", r->kind, r->name,
                             reg_errstr(svc->reg));
        goto out;
    }
    log_info("admin: %s %s '%s'", existed ? "replaced" : "created", r->kind, r->name);
    reg_refresh(svc->reg);
    json_object *stored = reg_get(svc->reg, r->kind, r->name);
    rc = admin_send_owned(req, existed ? 200 : 201,
                           admin_doc_redact_one(r->kind, stored ? stored : obj,
                                                ADMIN_REDACT_JSON));
out:
    json_object_put(obj);
    return rc;
}

static int admin__delete(http_req_t *req, svc_t *svc, const admin_route_t *r)
{
    int rc, wrc = -EAGAIN;
    json_object *users = NULL, *out = NULL;
    for (int i = 0; i < ADMIN_WRITE_TRIES && wrc == -EAGAIN; i++) {
        if (i > 0 && reg_refresh(svc->reg) != 0)
            break;
        if (!reg_get(svc->reg, r->kind, r->name)) {
            wrc = -ENOENT;
            break;
        }
        json_object_put(users);
        users = admin_doc_users(reg_doc(svc->reg), r->kind, r->name);
        if (users && json_object_array_length(users) > 0) {
            size_t nu = json_object_array_length(users);
            rc = http_send_error(req, 409, "invalid_request_error", "in_use", "name",
                                 "%s '%s' is still used by assistant%s %s: change or delete "
                                 "them first.", r->kind, r->name, nu > 1 ? "s" : "",
                                 json_object_to_json_string_ext(users, JSON_C_TO_STRING_PLAIN));
            goto out;
        }
        wrc = reg_del(svc->reg, r->kind, r->name, reg_version(svc->reg));
    }
    if (wrc == -ENOENT) {
        rc = admin__not_found(req, r);
    } else if (wrc == -EAGAIN) {
        rc = http_send_error(req, 409, "invalid_request_error", "conflict", NULL,
                             "The registry kept changing during the delete; try again.");
    } else if (wrc != 0) {
        rc = http_send_error(req, 503, "api_error", "registry_unavailable", NULL,
                             "Could not delete %s '%s' in Redis: %s", r->kind, r->name,
                             reg_errstr(svc->reg));
    } else {
        log_info("admin: deleted %s '%s'", r->kind, r->name);
        out = json_object_new_object();
        if (out) {
            json_object_object_add(out, "id", json_object_new_string(r->name));
            json_object_object_add(out, "object", json_object_new_string(r->kind));
            json_object_object_add(out, "deleted", json_object_new_boolean(1));
        }
        rc = admin_send_owned(req, 200, out);
        out = NULL;
    }
out:
    json_object_put(users);
    return rc;
}

static int admin__tools(http_req_t *req, svc_t *svc, const admin_route_t *r)
{
    int rc;
    aip_err_t err;
    json_object *tools = NULL, *out = NULL;
    mcpc_t *c = svc->mcpc;
    if (!reg_get(svc->reg, "mcp_servers", r->name)) {
        rc = admin__not_found(req, r);
        goto out;
    }
    out = json_object_new_object();
    if (!c || !out) {
        rc = http_send_error(req, 500, "api_error", NULL, NULL, "out of memory");
        goto out;
    }
    if (mcpc_tools(c, r->name, ADMIN_TOOLS_TIMEOUT_MS, &tools, &err) != 0) {
        rc = http_send_err(req, &err);
        goto out;
    }
    json_object_object_add(out, "object", json_object_new_string("list"));
    json_object_object_add(out, "server", json_object_new_string(r->name));
    admin_tools_mark(tools);
    json_object_object_add(out, "data", tools);
    tools = NULL;
    rc = admin_send_owned(req, 200, out);
    out = NULL;
out:
    json_object_put(tools);
    json_object_put(out);
    return rc;
}

int admin_authorize(http_req_t *req, svc_t *svc)
{
    int rc = 0;

    return admin__gate(req, &rc);
}

const route_surface_t admin_surface = { "admin", admin_authorize, NULL, NULL };

int admin_handle(http_req_t *req, svc_t *svc)
{
    int rc = 0;
    admin_route_t r;
    if (admin__gate(req, &rc) != 0)
        goto out;
    if (admin_keys_owns(req->path)) {   /* issue 18: keys and plans (docs/keys.md) */
        rc = admin_keys_handle(req, svc);
        goto out;
    }
    int prc = admin_route_parse(req->path, &r);
    if (prc == -EINVAL) {
        rc = http_send_error(req, 422, "invalid_request_error", "invalid_value", "name",
                             "name: must be 1 to %d characters of A-Z a-z 0-9 . _ -, starting "
                             "with a letter or digit (no '/', no percent escapes, not '.' or '..')",
                             CAP_NAME);
    } else if (prc != 0 || r.target == ADMIN_T_NONE) {
        rc = http_send_error(req, 404, "invalid_request_error", "not_found", NULL,
                             "Unknown admin route %s %s: see docs/admin.md.", req->method,
                             req->path);
    } else if (!admin_route_allows(&r, req->method)) {
        rc = http_send_error(req, 405, "invalid_request_error", "method_not_allowed", NULL,
                             "%s is not allowed on %s (allowed: %s).", req->method, req->path,
                             r.allow);
    } else if (r.target == ADMIN_T_CONFIG) {
        rc = admin__config(req, svc);
    } else if (r.target == ADMIN_T_LIST) {
        rc = admin__list(req, svc, &r);
    } else if (r.target == ADMIN_T_TOOLS) {
        rc = admin__tools(req, svc, &r);
    } else if (r.target == ADMIN_T_ASSISTANT_TOOLS) {
        rc = admin__assistant_tools(req, svc, &r);
    } else if (r.target == ADMIN_T_USAGE) {
        rc = usage_admin(req, svc);
    } else if (strcmp(req->method, "PUT") == 0) {
        rc = admin__put(req, svc, &r);
    } else if (strcmp(req->method, "DELETE") == 0) {
        rc = admin__delete(req, svc, &r);
    } else {
        rc = admin__get(req, svc, &r);
    }
out:
    return rc;
}
